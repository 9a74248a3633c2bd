"""The AWS path under Lambda's concurrency, on moto: interleavings forced with a barrier between a handler's
reads and its commit, so both calls read the same state before either writes. Optimistic concurrency lets
exactly one commit; the other is reported as a batch item failure and, handled again, runs on fresh state.
And the outbox stays at least once: a crash between publishing and clearing the outbox publishes again,
and the republished events change nothing downstream."""

import json
import subprocess
import sys
import threading
import uuid

import pytest

from yafdp.backends.aws.deployment import deploy
from yafdp.backends.aws.dynamo_state import TRACE, DynamoState, scan
from yafdp.backends.aws.function import CONFLICT, FunctionConfig, ServiceFunction
from yafdp.backends.aws.poller import sqs_record
from yafdp.backends.aws.teardown import destroy
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.runs.workload import planned_requests
from yafdp.services.order import validate_order

CATALOG = load_catalog()
WORLD = load_marketplace()


@pytest.fixture(scope="module")
def plan(clients):
    plan = deploy(clients, CATALOG, backend="moto", prefix="cc", echo=lambda line: None, point_in_time_recovery=False)
    yield plan
    destroy(clients, "cc", echo=lambda line: None)


class BarrierState(DynamoState):
    """A service table whose commits wait until ``parties`` calls have read what they read."""

    def __init__(self, client, table, parties):
        super().__init__(client, table)
        self.barrier = threading.Barrier(parties, timeout=600)  # against a hang only: a busy machine is slow

    def commit(self, *args, **kwargs):
        self.barrier.wait()
        return super().commit(*args, **kwargs)


def _function(plan, clients, service, state=None):
    function = ServiceFunction(FunctionConfig.for_service(plan, service), CATALOG, plan, WORLD, clients.events,
                               clients.dynamodb)
    if state is not None:
        function.state = state
    return function


def _order(n):
    return planned_requests(CATALOG, n, seed=23, rates={"payment_failure": 0, "restaurant_reject": 0, "delivery_failure": 0})[-1].request


def _record(plan, rule, detail_type, source, detail, event_id=None, message_id=None):
    """An SQS record as Lambda hands it over: the rule's input template around an EventBridge event."""
    event = {"version": "0", "id": event_id or str(uuid.uuid4()), "detail-type": detail_type, "source": source,
             "account": plan.account, "time": "2026-01-01T00:00:00Z", "region": plan.region, "resources": [],
             "detail": detail}
    message = {"MessageId": message_id or str(uuid.uuid4()), "ReceiptHandle": "r",
               "Body": json.dumps({"rule": plan.rule(rule).name, "event": event}),
               "Attributes": {"ApproximateReceiveCount": "1"}}
    return sqs_record(message, plan.queue_arn(plan.rule(rule).target.queue), plan.region)


def _together(function, records):
    """Handle each record as its own SQS batch, all at once, each in a thread (as Lambda runs invocations)."""
    answers = [None] * len(records)

    def handle(i):
        answers[i] = function.handle_batch({"Records": [records[i]]})

    threads = [threading.Thread(target=handle, args=(i,)) for i in range(len(records))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _trace(clients, plan, service):
    return [json.loads(item["row"]["S"]) for pk, _, item in scan(clients.dynamodb, plan.service(service).table)
            if pk == TRACE]


def _published(clients, plan, service, order_id):
    return [r for r in _trace(clients, plan, service) if r["kind"] == "event" and r["order_id"] == order_id]


def _failed_ids(answers):
    return [f["itemIdentifier"] for a in answers for f in a["batchItemFailures"]]


def _charge_records(plan, order, same_event):
    detail = validate_order(order, WORLD)
    first = _record(plan, "payment-charges-order", "Order_Initiated", "yafdp.order", detail)
    event_id = json.loads(first["body"])["event"]["id"] if same_event else None
    second = _record(plan, "payment-charges-order", "Order_Initiated", "yafdp.order", detail, event_id=event_id)
    return first, second


@pytest.mark.parametrize("same_event", [False, True], ids=["republished-event", "duplicate-delivery"])
def test_two_concurrent_order_initiated_give_one_charge_and_one_payment_success(plan, clients, same_event):
    order = _order(1 if same_event else 2)
    records = _charge_records(plan, order, same_event)
    payment = _function(plan, clients, "payment", BarrierState(clients.dynamodb, plan.service("payment").table, 2))
    answers = _together(payment, records)
    if same_event:  # the same event twice: the processed marker makes the loser a duplicate, nothing to retry
        assert _failed_ids(answers) == []
    else:  # two events: the loser read a charge that was not there; it is reported back and comes again
        [failed] = _failed_ids(answers)
        retry = next(r for r in records if r["messageId"] == failed)
        _function(plan, clients, "payment").handle_message(retry)
    state = DynamoState(clients.dynamodb, plan.service("payment").table)
    assert state.get("charge", order["order_id"])["amount"] == pytest.approx(validate_order(order, WORLD)["amount"])
    assert [e["detail_type"] for e in _published(clients, plan, "payment", order["order_id"])] == ["Payment_Success"]
    event_ids = {json.loads(r["body"])["event"]["id"] for r in records}
    outcomes = sorted(r["outcome"] for r in _trace(clients, plan, "payment")
                      if r["kind"] == "delivery" and r["event_id"] in event_ids)
    assert outcomes == (["duplicate", "ok"] if same_event else ["failed", "ok", "ok"])


def test_concurrent_payment_success_and_delivery_scheduled_both_land_in_the_order_history(plan, clients):
    order = _order(3)
    _function(plan, clients, "order").call("place_order", order)
    order_id = order["order_id"]
    paid = _record(plan, "order-tracks-status", "Payment_Success", "yafdp.payment", {"order_id": order_id})
    scheduled = _record(plan, "order-tracks-status", "Delivery_Scheduled", "yafdp.delivery", {"order_id": order_id})
    tracker = _function(plan, clients, "order", BarrierState(clients.dynamodb, plan.service("order").table, 2))
    answers = _together(tracker, [paid, scheduled])
    [failed] = _failed_ids(answers)
    conflicts = [r for r in _trace(clients, plan, "order")
                 if r["kind"] == "delivery" and r["outcome"] == "failed" and r["event_id"] in
                 {json.loads(paid["body"])["event"]["id"], json.loads(scheduled["body"])["event"]["id"]}]
    assert [c["error"].split(":")[0] for c in conflicts] == [CONFLICT]
    _function(plan, clients, "order").handle_message(paid if failed == paid["messageId"] else scheduled)
    stored = DynamoState(clients.dynamodb, plan.service("order").table).get("order", order_id)
    assert sorted(h[0] for h in stored["history"]) == ["Delivery_Scheduled", "Payment_Success"]
    assert stored["status"] == "DELIVERY_SCHEDULED"


def test_a_conflict_writes_nothing_and_names_the_items_that_changed(plan, clients):
    state = DynamoState(clients.dynamodb, plan.service("loyalty").table)
    mine, theirs = state.snapshot(), state.snapshot()
    assert mine.get("points", "cus-x") is None and theirs.get("points", "cus-x") is None
    assert mine.get("tier", "cus-x") is None  # read, not written: checked with a ConditionCheck
    assert state.commit({("points", "cus-x"): {"points": 5}}, reads=theirs.versions, marker=None, outbox_key="k1",
                        outbox=[], trace=[])
    state.commit({("tier", "cus-x"): {"tier": "gold"}}, reads={}, marker=None, outbox_key="k0", outbox=[], trace=[])
    from yafdp.backends.aws.dynamo_state import ConflictError

    with pytest.raises(ConflictError, match=r"points/cus-x, tier/cus-x"):
        state.commit({("points", "cus-x"): {"points": 7}}, reads=mine.versions, marker="rule#ev-x", outbox_key="k2",
                     outbox=["{}"], trace=[{"kind": "delivery"}])
    assert state.get("points", "cus-x") == {"points": 5} and not state.processed("rule#ev-x")
    assert state.pending_outbox("k2") == []
    assert state.read("points", "cus-x") == ({"points": 5}, 1)


def test_a_crash_between_publishing_and_clearing_the_outbox_republishes_and_changes_nothing(plan, clients):
    order = _order(4)
    order_id = order["order_id"]
    _function(plan, clients, "order").call("place_order", order)
    [charge] = _charge_records(plan, order, same_event=True)[:1]

    class CrashBeforeClearing(DynamoState):
        crashed = False

        def clear_outbox(self, outbox_key):
            if not self.crashed:
                self.crashed = True
                raise ConnectionError("the function died after PutEvents, before clearing its outbox")
            super().clear_outbox(outbox_key)

    payment = _function(plan, clients, "payment", CrashBeforeClearing(clients.dynamodb, plan.service("payment").table))
    with pytest.raises(ConnectionError):
        payment.handle_message(charge)
    assert payment.handle_message(charge) == "duplicate"  # redelivered: the outbox is still there, so again
    successes = _published(clients, plan, "payment", order_id)
    assert [e["detail_type"] for e in successes] == ["Payment_Success", "Payment_Success"]
    assert len({e["event_id"] for e in successes}) == 2  # two events on the bus, as EventBridge numbers them
    assert payment.state.pending_outbox(f"{plan.rule('payment-charges-order').name}#"
                                        f"{json.loads(charge['body'])['event']['id']}") == []

    # Both reach the restaurant (moto routes them through the rule to its queue): the second changes nothing.
    url = clients.sqs.get_queue_url(QueueName=plan.service("restaurant").queue)["QueueUrl"]
    mine = []
    for _ in range(10):
        messages = clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                               AttributeNames=["All"]).get("Messages", [])
        mine += [m for m in messages if json.loads(m["Body"])["event"]["detail"]["order_id"] == order_id]
        if len(mine) == 2:
            break
    assert sorted(json.loads(m["Body"])["event"]["id"] for m in mine) == sorted(e["event_id"] for e in successes)
    restaurant = _function(plan, clients, "restaurant")
    for message in sorted(mine, key=lambda m: [e["event_id"] for e in successes].index(json.loads(m["Body"])["event"]["id"])):
        assert restaurant.handle_message(sqs_record(message, plan.queue_arn(plan.service("restaurant").queue),
                                                    plan.region)) == "ok"
    deliveries = [r for r in _trace(clients, plan, "restaurant")
                  if r["kind"] == "delivery" and r["event_id"] in {e["event_id"] for e in successes}]
    by_event = {d["event_id"]: d["writes"] for d in deliveries}
    assert [by_event[e["event_id"]] for e in successes] == [1, 0]  # the republished one wrote nothing
    assert len(_published(clients, plan, "restaurant", order_id)) == 1  # and published nothing


def _most_handled_at_once(run_db) -> int:
    """The most deliveries one service's function was handling at the same moment (from start to commit)."""
    import sqlite3

    with sqlite3.connect(run_db) as db:
        rows = db.execute("SELECT target, delivered_at, finished_at FROM deliveries").fetchall()
    most = 0
    for target in {row[0] for row in rows}:
        moments = sorted([(start, 1) for t, start, _ in rows if t == target]
                         + [(end, -1) for t, _, end in rows if t == target])
        running = 0
        for _, step in moments:
            running += step
            most = max(most, running)
    return most


@pytest.mark.slow
def test_a_heavy_fault_run_at_the_documented_maximum_concurrency_passes_the_checks(tmp_path):
    """At --concurrency 50 moto's SQS server raised (`list.remove(x): x not in list`: it is not thread-safe) and
    the run never settled: 300 pollers took turns on 50 connections and their idle long polls starved the rest."""
    from yafdp.analysis.check import check_run
    from yafdp.runs.options import MAX_CONCURRENCY

    out = tmp_path / "run"
    run = subprocess.run([sys.executable, "-m", "yafdp", "run", "--backend", "moto", "--concurrency",
                          str(MAX_CONCURRENCY), "--duplicate-rate", "0.3", "--orders", "6", "--out", str(out), "--json"],
                         capture_output=True, text=True, timeout=600)
    assert "Traceback" not in run.stderr and "Error on request" not in run.stderr, run.stderr[-2000:]
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(run.stdout)
    assert summary["orders"]["placed"] == 6 and summary["orders"]["not_terminal"] == 0
    assert summary["deliveries"]["duplicate"] > 0  # the duplicates were really delivered
    assert _most_handled_at_once(out / "run.db") > 1  # and a function really handled several at once
    assert [i.name for i in check_run(out) if not i.passed] == []


def test_a_concurrency_below_one_is_refused_in_one_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "yafdp", "run", "--backend", "moto", "--concurrency", "0",
                          "--out", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "yafdp run: argument --concurrency: must be a whole number from 1 to 50, got '0' (see `yafdp run --help`)"]
