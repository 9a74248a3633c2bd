"""The Lambda package as Lambda runs it: extracted alone, in an isolated interpreter whose only libraries are the
Python runtime's own (boto3 and what it needs: "Your code runs in an environment that includes the SDK for Python
(Boto3)", https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html), one process per function, each
driven with the SQS batches of its queue on a moto server until an order placed through the Order function
reaches its end. Nothing of the repository or the project's environment is importable there, so a module or a
data file the functions need and the package lacks fails the saga; and every file the package carries must be
opened by some function, so it carries exactly what they need."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from yafdp.backends.aws.deployment import deploy
from yafdp.backends.aws.dynamo_state import DynamoState
from yafdp.backends.aws.package import build_package
from yafdp.backends.aws.poller import sqs_record
from yafdp.backends.aws.teardown import destroy
from yafdp.catalog import load_catalog
from yafdp.runs.workload import planned_requests

PREFIX = "pkg"
ENVIRONMENT = Path(__file__).with_name("lambda_environment.py")


def runtime_site(folder: Path, distribution: str = "boto3") -> Path:
    """A site folder holding ``distribution`` and every distribution it requires (no extras), as links to this
    environment's copies: what Lambda's Python runtime provides besides the standard library."""
    folder.mkdir()
    wanted, pending = set(), [distribution]
    while pending:
        name = pending.pop().lower()
        if name in wanted:
            continue
        wanted.add(name)
        for requirement in metadata.distribution(name).requires or []:
            if "extra ==" not in requirement:
                pending.append(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].replace("_", "-"))
    for top, owners in metadata.packages_distributions().items():
        if {o.lower().replace("_", "-") for o in owners} & wanted:
            found = [p for p in map(Path, sys.path) if (p / top).is_dir() or (p / f"{top}.py").is_file()]
            source = found[0] / top if (found[0] / top).is_dir() else found[0] / f"{top}.py"
            (folder / source.name).symlink_to(source)
    return folder


class Function:
    """One function's execution environment: the package in an isolated interpreter, invoked a line at a time."""

    def __init__(self, task_root: Path, site: Path, environment: dict[str, str]):
        self.process = subprocess.Popen([sys.executable, "-I", "-S", "-B", str(ENVIRONMENT), str(task_root), str(site)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=environment, cwd=task_root)

    def invoke(self, event: dict) -> dict:
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, self.process.stderr.read()
        answer = json.loads(line)
        assert "raised" not in answer, answer["raised"]
        return answer["result"]

    def opened(self) -> set[str]:
        out, err = self.process.communicate(timeout=600)
        assert self.process.returncode == 0, err
        return set(json.loads(out.splitlines()[-1])["opened"])


@pytest.fixture(scope="module")
def plan(clients):
    plan = deploy(clients, load_catalog(), backend="moto", prefix=PREFIX, echo=lambda line: None)
    yield plan
    destroy(clients, PREFIX, echo=lambda line: None)


@pytest.fixture(scope="module")
def functions(plan, clients, moto_url, tmp_path_factory):
    """One execution environment per deployed function, from the package alone."""
    root = tmp_path_factory.mktemp("lambda")
    zipfile.ZipFile(io.BytesIO(build_package())).extractall(root / "task")
    site = runtime_site(root / "runtime")
    started = {}
    for service in plan.services:
        variables = clients.lambda_.get_function(FunctionName=service.function)["Configuration"]["Environment"]["Variables"]
        environment = {**variables, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_REGION": clients.region, "AWS_DEFAULT_REGION": clients.region,
                       "AWS_ENDPOINT_URL": moto_url, "HOME": str(root), "LAMBDA_TASK_ROOT": str(root / "task")}
        started[service.name] = Function(root / "task", site, environment)
    yield started
    for function in started.values():
        if function.process.poll() is None:
            function.process.kill()
            function.process.wait()


def test_the_package_alone_carries_an_order_to_its_end_and_holds_only_what_its_functions_open(plan, clients, functions):
    no_failure = {"payment_failure": 0, "restaurant_reject": 0, "delivery_failure": 0}
    order = planned_requests(load_catalog(), 1, seed=27, rates=no_failure)[0].request
    assert functions["order"].invoke({"entrypoint": "place_order", "payload": order}) == {"result": order["order_id"]}
    queues = {s.name: (clients.sqs.get_queue_url(QueueName=s.queue)["QueueUrl"], plan.queue_arn(s.queue))
              for s in plan.services}
    handled = dict.fromkeys(queues, 0)
    quiet_rounds = 0
    while quiet_rounds < 2:  # moto puts an event on its queues before PutEvents returns: two quiet rounds, done
        quiet_rounds += 1
        for service, (url, arn) in queues.items():
            messages = clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                                   WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                continue
            quiet_rounds = 0
            batch = {"Records": [sqs_record(m, arn, clients.region) for m in messages]}
            assert functions[service].invoke(batch) == {"batchItemFailures": []}
            for message in messages:  # what the event source mapping does with a batch that succeeded
                clients.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            handled[service] += len(messages)
    status = DynamoState(clients.dynamodb, plan.service("order").table).get("order", order["order_id"])["status"]
    assert status == "DELIVERY_SCHEDULED"
    assert DynamoState(clients.dynamodb, plan.service("loyalty").table).get("order", order["order_id"])["points"] > 0
    assert all(handled[s] for s in queues if s != "order" or handled[s]), handled

    opened = set().union(*(f.opened() for f in functions.values()))
    carried = set(zipfile.ZipFile(io.BytesIO(build_package())).namelist())
    assert carried - opened == set(), "carried but never opened by any function"
    assert "yafdp/data/quotas.json" in opened
