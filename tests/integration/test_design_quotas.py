"""AWS's quotas as design checks, through the real command line: a design that AWS would refuse halfway through
(PutRule's LimitExceededException at the 301st rule, a template CloudFormation rejects whole) is reported by
`yafdp lint` and refused by `yafdp plan` and `yafdp deploy` before anything is printed or deployed."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from yafdp.catalog import DEFAULT_DATA_DIR

pytestmark = pytest.mark.slow


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yafdp.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


def catalog_with(tmp_path: Path, change) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(DEFAULT_DATA_DIR, root)
    file = root / "services" / "notification.json"
    document = json.loads(file.read_text())
    change(document["subscriptions"])
    file.write_text(json.dumps(document))
    return root


def more_rules(count: int, pattern=None):
    """``count`` more rules of the Notification service, each a copy of its own (or with ``pattern``)."""
    def change(subscriptions):
        first = subscriptions[0]
        subscriptions += [{**first, "rule": f"notification-copy-{n}", "pattern": pattern or first["pattern"]}
                          for n in range(count)]
    return change


@pytest.fixture(scope="module")
def crowded(tmp_path_factory) -> Path:
    """The issue's case: 2,010 rules on one bus, a 6,080-resource template."""
    return catalog_with(tmp_path_factory.mktemp("crowded"), more_rules(2000))


def test_lint_reports_the_quotas_a_design_exceeds(crowded):
    result = cli("lint", "--catalog", crowded)
    assert result.returncode == 1, result.stderr
    findings = [line for line in result.stdout.splitlines() if "[aws-quota]" in line]
    assert findings == [
        "bus yafdp-saga: [aws-quota] 2,010 rules on the bus, more than AWS allows (300, eventbridge_rules_per_bus: a "
        "default quota, adjustable through Service Quotas; https://docs.aws.amazon.com/eventbridge/latest/userguide/"
        "eb-quota.html)",
        "the CloudFormation template: [aws-quota] 6,080 resources in the CloudFormation template, more than AWS allows "
        "(500, cloudformation_resources_per_stack: not adjustable; https://docs.aws.amazon.com/AWSCloudFormation/"
        "latest/UserGuide/cloudformation-limits.html)"]


@pytest.mark.parametrize("arguments", [["plan"], ["plan", "--json"], ["plan", "--format", "cloudformation"],
                                       ["deploy", "--backend", "moto", "--endpoint-url", "http://127.0.0.1:9"]],
                         ids=["plan", "plan-json", "plan-cloudformation", "deploy"])
def test_plan_and_deploy_refuse_what_cannot_deploy(crowded, arguments):
    """Refused in one line before anything is printed (or AWS asked: the endpoint is not even listening)."""
    result = cli(*arguments, "--catalog", crowded)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "cannot deploy as designed: bus yafdp-saga: 2,010 rules on the bus, more than AWS allows (300" in result.stderr


def test_a_template_over_500_resources_is_refused_though_the_bus_takes_its_rules(tmp_path):
    """140 more rules: 150 on the bus (within EventBridge's 300), 500 resources in the template is the most."""
    at_the_limit = catalog_with(tmp_path / "a", more_rules(140))
    assert cli("plan", "--catalog", at_the_limit).returncode == 0
    template = cli("plan", "--format", "cloudformation", "--catalog", at_the_limit)
    assert template.returncode == 0 and len(json.loads(template.stdout)["Resources"]) == 500
    over = catalog_with(tmp_path / "b", more_rules(141))
    assert cli("plan", "--catalog", over).returncode == 0
    refused = cli("plan", "--format", "cloudformation", "--catalog", over)
    assert refused.returncode == 2 and "503 resources in the CloudFormation template" in refused.stderr


def test_more_than_30_wildcard_rules_on_a_bus_cannot_deploy(tmp_path):
    """30 rules with a wildcard fit on a Classic bus (the shipped catalog has none), a 31st does not. (`yafdp lint`
    refuses any wildcard rule already: the Custom Event Bus takes none.)"""
    wildcard = {"source": [{"wildcard": "yafdp.*"}], "detail-type": ["Order_Initiated"]}
    assert cli("plan", "--bus", "classic", "--catalog", catalog_with(tmp_path / "w30", more_rules(30, wildcard))).returncode == 0
    result = cli("plan", "--bus", "classic", "--catalog", catalog_with(tmp_path / "w31", more_rules(31, wildcard)))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert ("bus yafdp-saga: 31 rules with a wildcard filter on the bus, more than AWS allows (30, "
            "eventbridge_wildcard_rules_per_bus: not adjustable") in result.stderr
