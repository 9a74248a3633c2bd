"""The deployer against a moto server: the plan's resources exist as planned with least-privilege
policies, applying twice changes nothing, destroy leaves nothing with the prefix, and a run on the moto
backend whose orders take every path of the saga ends with every order terminal and every invariant holding."""

import json
from pathlib import Path

import pytest

from yafdp.backends.aws.deployment import deploy
from yafdp.backends.aws.deployer import apply, input_template
from yafdp.backends.aws.package import build_package
from yafdp.plan.model import HANDLER
from yafdp.backends.aws.teardown import destroy, inventory
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.analysis.check import check_run
from yafdp.runs import RunOptions, run_saga
from yafdp.runs.workload import planned_requests

CATALOG = load_catalog()


def _quiet(line):
    pass


@pytest.fixture(scope="module")
def plan(clients):
    plan = deploy(clients, load_catalog(), backend="moto", prefix="dep", echo=_quiet)
    yield plan
    destroy(clients, "dep", echo=_quiet)


def test_apply_twice_changes_nothing(plan, clients):
    assert apply(plan, clients, build_package(), run_functions=False, echo=_quiet) == []


def test_every_rule_targets_its_service_queue_with_retry_policy_dead_letter_queue_and_rule_name(plan, clients):
    for rule in plan.rules:
        described = clients.events.describe_rule(Name=rule.name, EventBusName=plan.bus)
        assert json.loads(described["EventPattern"]) == rule.pattern
        [target] = clients.events.list_targets_by_rule(Rule=rule.name, EventBusName=plan.bus)["Targets"]
        assert target["Arn"] == plan.queue_arn(f"dep-{rule.service}")
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 3600}
        assert target["DeadLetterConfig"]["Arn"] == plan.queue_arn(rule.target.dead_letter_queue)
        assert target["InputTransformer"]["InputTemplate"] == input_template(rule)


def test_every_service_has_queue_with_redrive_table_function_and_disabled_mapping_on_moto(plan, clients):
    tables = clients.dynamodb.list_tables()["TableNames"]
    for service in plan.services:
        url = clients.sqs.get_queue_url(QueueName=service.queue)["QueueUrl"]
        attributes = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == plan.queue_arn(service.queue_dead_letter_queue)
        assert int(redrive["maxReceiveCount"]) == service.max_receive_count
        assert json.loads(attributes["Policy"]) == service.queue_policy
        assert service.table in tables
        function = clients.lambda_.get_function(FunctionName=service.function)["Configuration"]
        assert function["Handler"] == HANDLER and function["Role"].endswith(f"/{service.role}")
        assert function["Environment"]["Variables"]["YAFDP_SERVICE"] == service.name
        [mapping] = clients.lambda_.list_event_source_mappings(FunctionName=service.function)["EventSourceMappings"]
        assert mapping["EventSourceArn"] == plan.queue_arn(service.queue)
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and mapping["State"] == "Disabled"
    assert clients.events.describe_archive(ArchiveName=plan.archive)["EventSourceArn"] == plan.bus_arn()


def test_each_role_may_publish_only_its_own_source_and_events_on_this_bus(plan, clients):
    catalog = load_catalog()
    for service in plan.services:
        document = clients.iam.get_role_policy(RoleName=service.role, PolicyName="least-privilege")["PolicyDocument"]
        assert document == service.policy  # what is deployed is what the plan says; now check what it says
        publish = [s for s in document["Statement"] if "events:PutEvents" in _list(s["Action"])]
        if not service.may_emit:
            assert publish == []
            continue
        [statement] = publish
        assert statement["Resource"] == plan.bus_arn()
        # events:source is multivalued (one value per entry of the call): every entry must carry the service's
        assert statement["Condition"]["ForAllValues:StringEquals"]["events:source"] == [catalog.services[service.name].source]
        assert statement["Condition"]["Null"] == {"events:source": "false"}
        assert set(statement["Condition"]["StringEquals"]["events:detail-type"]) == catalog.services[service.name].may_emit()


def test_each_role_reads_only_its_own_queue_and_touches_only_its_own_table(plan):
    for service in plan.services:
        for statement in service.policy["Statement"]:
            actions, resources = _list(statement["Action"]), _list(statement["Resource"])
            assert statement["Effect"] == "Allow"
            assert not any("*" in action for action in actions), statement
            if any(a.startswith("sqs:") for a in actions):
                assert resources == [plan.queue_arn(service.queue)]
                assert "sqs:SendMessage" not in actions
            if any(a.startswith("dynamodb:") for a in actions):
                assert resources == [f"arn:aws:dynamodb:{plan.region}:{plan.account}:table/{service.table}"]
            if any(a.startswith("logs:") for a in actions):
                assert resources[0].endswith(f":log-group:/aws/lambda/{service.function}:*")
            assert {a.split(":")[0] for a in actions} <= {"events", "sqs", "dynamodb", "logs"}
            # granted only what the code calls (issue 12: these four were granted and never used)
            assert not {"dynamodb:Query", "dynamodb:DeleteItem", "sqs:ChangeMessageVisibility",
                        "logs:CreateLogGroup"} & set(actions)


def test_only_the_rules_that_target_a_queue_may_send_to_it(plan):
    for service in plan.services:
        [statement] = service.queue_policy["Statement"]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
        assert set(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == {
            plan.rule_arn(r.name) for r in plan.rules if r.service == service.name}


def test_every_resource_carries_the_prefix_and_the_tags(plan, clients):
    found = inventory(clients, "dep")
    assert {r.kind for r in found} == {"event bus", "archive", "rule", "target", "queue", "table", "function",
                                       "event source mapping", "log group", "role", "role policy"}
    assert len([r for r in found if r.kind == "queue"]) == 2 * len(plan.services) + len(plan.rules)
    assert all(r.name.removeprefix("/aws/lambda/").startswith("dep-") for r in found)


def test_destroy_removes_everything_with_the_prefix_and_is_safe_to_rerun(clients):
    catalog = load_catalog()
    deploy(clients, catalog, backend="moto", prefix="gone", echo=_quiet)
    deploy(clients, catalog, backend="moto", prefix="gone-too", echo=_quiet)  # another run: its names start alike
    assert destroy(clients, "gone", echo=_quiet)
    assert inventory(clients, "gone") == []
    assert destroy(clients, "gone", echo=_quiet) == []
    assert inventory(clients, "gone-too"), "destroy must only remove its own run's resources (RunId tag)"
    destroy(clients, "gone-too", echo=_quiet)
    buses = [b["Name"] for b in clients.events.list_event_buses()["EventBuses"]]
    assert not any(b.startswith("gone") for b in buses)


# The first 4 orders of seed 402 take every path of the saga, one each (a declined card, a rejecting restaurant,
# no courier, and delivered): the fewest orders that can, so the fewest deliveries, each a few HTTP calls on moto.
EVERY_PATH = {"orders": 4, "seed": 402}


@pytest.mark.slow
def test_orders_on_every_path_of_the_saga_on_the_moto_backend_reach_terminal_states_and_hold_the_invariants(
        tmp_path, clients):
    planned = planned_requests(CATALOG, EVERY_PATH["orders"], EVERY_PATH["seed"])
    assert {p.expected for p in planned} == {"DELIVERY_SCHEDULED", "CANCELLED: payment declined",
                                             "CANCELLED: restaurant rejected", "CANCELLED: no courier"}
    summary = run_saga(RunOptions(**EVERY_PATH, backend="moto", out=tmp_path))
    assert summary["orders"]["placed"] == len(planned) and summary["orders"]["not_terminal"] == 0
    assert summary["orders"]["by_status"]["CANCELLED"] == 3
    assert summary["backend"] == "moto" and summary["deliveries"]["ok"] > len(planned) * 5
    failed = [i for i in check_run(tmp_path) if not i.passed]
    assert failed == []
    info = json.loads(dict(_info(tmp_path / "run.db"))["prefix"])
    assert inventory(clients, info) == []  # run_saga started its own server: nothing left anywhere


def _info(path: Path):
    import sqlite3

    with sqlite3.connect(path) as db:
        return db.execute("SELECT key, value FROM run_info").fetchall()


def _list(value):
    return value if isinstance(value, list) else [value]
