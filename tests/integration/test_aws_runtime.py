"""A service function on the AWS side, against a moto server: the Lambda entry point handles an SQS
batch and reports partial failures, a duplicate is processed once, and events committed but not
published (a crash between the two) go out when the message or the call comes back. And the package
that Lambda runs holds the runtime core and the catalog, and nothing from the notebooks."""

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from yafdp.backends.aws import lambda_handler
from yafdp.backends.aws.deployment import deploy
from yafdp.backends.aws.dynamo_state import TRACE, DynamoState, scan
from yafdp.backends.aws.package import build_package, package_files
from yafdp.backends.aws.poller import sqs_record
from yafdp.backends.aws.function import FunctionConfig, PublishFailedError, ServiceFunction
from yafdp.backends.aws.teardown import destroy
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.runs.workload import planned_requests

CATALOG = load_catalog()
WORLD = load_marketplace()


@pytest.fixture(scope="module")
def plan(clients):
    plan = deploy(clients, CATALOG, backend="moto", prefix="rt", echo=lambda line: None)
    yield plan
    destroy(clients, "rt", echo=lambda line: None)


def _function(plan, clients, service, events=None):
    return ServiceFunction(FunctionConfig.for_service(plan, service), CATALOG, plan, WORLD,
                           events or clients.events, clients.dynamodb)


def _order(n):
    return planned_requests(CATALOG, n, seed=11, rates={"payment_failure": 0, "restaurant_reject": 0, "delivery_failure": 0})[-1].request


def _receive(clients, plan, service, order):
    """The messages about ``order`` on the service's queue (each test places its own order)."""
    url = clients.sqs.get_queue_url(QueueName=plan.service(service).queue)["QueueUrl"]
    messages = clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           AttributeNames=["All"], VisibilityTimeout=0)["Messages"]
    return [m for m in messages if json.loads(m["Body"])["event"]["detail"]["order_id"] == order["order_id"]]


def _trace(clients, plan, service):
    return [json.loads(item["row"]["S"]) for pk, _, item in scan(clients.dynamodb, plan.service(service).table)
            if pk == TRACE]


def test_the_lambda_entry_point_handles_an_sqs_batch_with_its_deployed_environment(plan, clients, moto_url, monkeypatch):
    _function(plan, clients, "order").call("place_order", _order(1))
    messages = _receive(clients, plan, "payment", _order(1))
    environment = clients.lambda_.get_function(FunctionName="rt-payment")["Configuration"]["Environment"]["Variables"]
    for key, value in {**environment, "AWS_ENDPOINT_URL": moto_url}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(lambda_handler, "_functions", {})  # a cold start
    event = {"Records": [sqs_record(m, plan.queue_arn("rt-payment"), "eu-west-1") for m in messages]}
    assert lambda_handler.lambda_handler(event, None) == {"batchItemFailures": []}
    assert DynamoState(clients.dynamodb, "rt-payment").get("charge", _order(1)["order_id"])["amount"] > 0
    assert lambda_handler.lambda_handler(event, None) == {"batchItemFailures": []}  # delivered again
    ours = {json.loads(m["Body"])["event"]["id"] for m in messages}  # the module's tests share one deployment
    outcomes = [r["outcome"] for r in _trace(clients, plan, "payment") if r["kind"] == "delivery" and r["event_id"] in ours]
    assert sorted(outcomes) == ["duplicate", "ok"]


def test_only_the_messages_that_failed_are_reported_back(plan, clients):
    _function(plan, clients, "order").call("place_order", _order(2))
    messages = _receive(clients, plan, "notification", _order(2))
    stranger = {**messages[0], "MessageId": "not-for-us", "Body": json.dumps({"rule": "rt-someone-elses-rule", "event": {}})}
    batch = {"Records": [sqs_record(m, "arn", "eu-west-1") for m in messages + [stranger]]}
    answer = _function(plan, clients, "notification").handle_batch(batch)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "not-for-us"}]}


class FlakyEvents:
    """EventBridge that is unreachable for the first PutEvents call, as after a crash."""

    def __init__(self, events):
        self.events, self.calls = events, 0

    def put_events(self, **kwargs):
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("the function died between its commit and PutEvents")
        return self.events.put_events(**kwargs)


def test_events_committed_but_not_published_go_out_when_the_message_comes_back(plan, clients):
    _function(plan, clients, "order").call("place_order", _order(3))
    messages = _receive(clients, plan, "payment", _order(3))
    record = sqs_record(messages[0], "arn", "eu-west-1")
    payment = _function(plan, clients, "payment", FlakyEvents(clients.events))
    with pytest.raises(ConnectionError):
        payment.handle_message(record)
    order_id = _order(3)["order_id"]
    assert DynamoState(clients.dynamodb, "rt-payment").get("charge", order_id) is not None  # committed
    assert payment.handle_message(record) == "duplicate"  # redelivered: already done, but its events go out now
    published = [r for r in _trace(clients, plan, "payment") if r["kind"] == "event" and r["order_id"] == order_id]
    assert [r["detail_type"] for r in published] == ["Payment_Success"]


def test_a_call_retried_after_a_crash_publishes_its_event_exactly_once(plan, clients):
    order = _order(4)
    flaky = _function(plan, clients, "order", FlakyEvents(clients.events))
    with pytest.raises(ConnectionError):
        flaky.call("place_order", order)
    flaky.call("place_order", order)  # the client retries
    published = [r for r in _trace(clients, plan, "order") if r["kind"] == "event" and r["order_id"] == order["order_id"]]
    assert [r["detail_type"] for r in published] == ["Order_Initiated"]


def test_a_refused_put_events_entry_keeps_the_outbox(plan, clients):
    class Refusing:
        def put_events(self, Entries):
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}

    with pytest.raises(PublishFailedError, match="InternalFailure"):
        _function(plan, clients, "order", Refusing()).call("place_order", _order(5))
    _function(plan, clients, "order").call("place_order", _order(5))
    published = [r for r in _trace(clients, plan, "order") if r["kind"] == "event" and r["order_id"] == _order(5)["order_id"]]
    assert len(published) == 1


def test_the_package_holds_the_runtime_core_and_the_catalog_but_no_notebook_libraries():
    names = set(package_files())
    assert {"yafdp/backends/aws/lambda_handler.py", "yafdp/services/payment.py", "yafdp/patterns/ruleset.py",
            "fastjsonschema/__init__.py", "yafdp/data/bus.json", "yafdp/data/services/order.json", "yafdp/data/marketplace.json"} <= names
    assert not {n for n in names if n.split("/")[0] in ("pandas", "matplotlib", "networkx", "boto3", "botocore")}
    assert not {n for n in names if n.startswith(("yafdp/analysis/", "yafdp/runs/", "yafdp/backends/local/",
                                                  "yafdp/cli.py", "yafdp/workbook.py"))}
    assert build_package() == build_package()


def test_the_package_holds_the_same_files_whatever_folder_it_is_built_from(tmp_path):
    """`make` installs yafdp in editable mode, found through an import hook, not on sys.path: the package built
    by the `yafdp` command (its sys.path starts with the venv's bin/) or from another folder held only the
    handler and the service modules, none of the runtime core they import."""
    code = "import json; from yafdp.backends.aws.package import package_files; print(json.dumps(sorted(package_files())))"
    elsewhere = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert json.loads(elsewhere.stdout) == sorted(package_files())


def test_the_package_imports_on_its_own(tmp_path):
    zipfile.ZipFile(io.BytesIO(build_package())).extractall(tmp_path)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import yafdp.backends.aws.lambda_handler as h; "
            "from yafdp.catalog import load_catalog; "
            "c = load_catalog(); [c.handler(s.service, s.handler) for s in c.subscriptions]; "
            "import yafdp.backends.aws.function; "
            "mods = [m.__file__ for n, m in sys.modules.items() if n.startswith(('yafdp', 'fastjsonschema'))]; "
            "assert all(f.startswith(sys.argv[1]) for f in mods), mods; "
            "assert str(c.path).startswith(sys.argv[1]), c.path; "
            "print(','.join(m for m in ('pandas', 'matplotlib', 'networkx') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_a_catalog_folders_package_carries_its_handlers_hooks_and_data_and_runs_them_from_the_zip(tmp_path):
    trip = Path(__file__).resolve().parents[2] / "examples" / "trip_booking"
    names = {n for n in package_files(trip) if n.startswith("yafdp/data/")}
    assert {"yafdp/data/bus.json", "yafdp/data/services/flight.py", "yafdp/data/services/booking.py", "yafdp/data/saga.py",
            "yafdp/data/inventory.json"} <= names
    assert "yafdp/data/invariants.py" not in names  # only the checker reads it
    zipfile.ZipFile(io.BytesIO(build_package(trip))).extractall(tmp_path)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from yafdp.catalog import load_catalog; "
            "c = load_catalog(); handlers = [c.handler(s.service, s.handler) for s in c.subscriptions]; "
            "assert all(sys.modules[h.__module__].__file__.startswith(sys.argv[1]) for h in handlers); "
            "print(c.bus.name, sorted(c.code.world()['hotels'])[0])")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["trip-saga", "BCN"]


class ThrottlingOnce:
    """EventBridge (moto) that answers ThrottlingException for one entry of the first PutEvents call, as
    PutEventsResultEntry lists it among the retryable errors."""

    def __init__(self, events, detail_type):
        self.events, self.detail_type, self.calls = events, detail_type, []

    def put_events(self, Entries):
        self.calls.append([e["DetailType"] for e in Entries])
        if len(self.calls) > 1:
            return self.events.put_events(Entries=Entries)
        answer = self.events.put_events(Entries=[e for e in Entries if e["DetailType"] != self.detail_type])
        accepted = iter(answer["Entries"])
        return {"FailedEntryCount": 1, "Entries": [
            {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"} if e["DetailType"] == self.detail_type
            else next(accepted) for e in Entries]}


def test_a_throttled_entry_of_a_batch_is_sent_again_and_published(plan, clients):
    from yafdp.backends.aws.function import publish_entries

    state = DynamoState(clients.dynamodb, plan.service("payment").table)
    order = _order(7)
    details = [{"order_id": order["order_id"], "payment_id": f"pay-{n}", "customer_id": order["customer_id"],
                "restaurant_id": order["restaurant_id"], "items": order["items"], "amount": order["amount"],
                "currency": "EUR", "delivery_zone": order["delivery_zone"]} for n in (1, 2)]
    entries = [{"Source": "yafdp.payment", "DetailType": "Payment_Success", "Detail": json.dumps(details[0]),
                "EventBusName": plan.bus},
               {"Source": "yafdp.payment", "DetailType": "Payment_Failed", "Detail": json.dumps(details[1]),
                "EventBusName": plan.bus}]
    events = ThrottlingOnce(clients.events, "Payment_Failed")
    ids = publish_entries(events, entries, lambda: 0.0, state, saga_id=CATALOG.saga.saga_id, sleep=lambda seconds: None)
    assert events.calls == [["Payment_Success", "Payment_Failed"], ["Payment_Failed"]]
    assert len(ids) == 2 and len(set(ids)) == 2
    published = [r for r in _trace(clients, plan, "payment") if r["kind"] == "event" and r["order_id"] == order["order_id"]]
    assert sorted(r["detail_type"] for r in published) == ["Payment_Failed", "Payment_Success"]


def test_the_package_holds_only_the_catalog_files_a_function_reads(catalog_copy):
    hidden = catalog_copy.root / ".private"
    hidden.mkdir()
    (hidden / "creds.json").write_text('{"secret": "do not ship"}')
    (catalog_copy.root / "services" / ".draft.json").write_text("{}")
    (catalog_copy.root / "notes.json").write_text("{}")
    names = [n for n in package_files(catalog_copy.root) if n.startswith("yafdp/data/")]
    services = sorted(f"yafdp/data/services/{p.name}" for p in (catalog_copy.root / "services").glob("[!.]*.json"))
    assert names == ["yafdp/data/bus.json", "yafdp/data/marketplace.json", "yafdp/data/quotas.json", "yafdp/data/saga.py",
                     *services]
    archive = zipfile.ZipFile(io.BytesIO(build_package(catalog_copy.root)))
    assert not [n for n in archive.namelist() if "creds" in n or "/." in n or n.startswith(".")]
