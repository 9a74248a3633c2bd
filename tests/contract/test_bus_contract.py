"""One contract for every backend's bus, run against the local bus and against a deployment on a moto
server: PutEvents answers per entry, what is published is recorded, routed to exactly the rules the catalog
subscribes to it, received again from the service queue when a handler fails, moved to the queue's dead-letter
queue after maxReceiveCount receives (with SQS's attributes, not EventBridge's), processed once when delivered
twice, and injected faults decided per (event, rule) the same way on both."""

import dataclasses
import json
import secrets

import pytest

from yafdp.runs import RunOptions, StuckSagasError, run_saga
from yafdp.runs.bootstrap import open_local
from yafdp.runtime import rundb
from yafdp.backends.aws.bus import AwsBus
from yafdp.backends.aws.deployer import apply
from yafdp.backends.aws.functions import InProcessFunctions
from yafdp.backends.aws.package import build_package
from yafdp.backends.aws.teardown import destroy
from yafdp.catalog import load_catalog
from yafdp.runtime.envelope import PublishError
from yafdp.runtime.faults import POISON, Faults, decide
from yafdp.runtime.interfaces import Bus
from yafdp.catalog.marketplace import load_marketplace
from yafdp.plan import build_plan
from yafdp.services.order import validate_order
from yafdp.runs.workload import planned_requests

# Two hops of the saga never end an order: without a deadline (saga_timeout_seconds 0), none fires at its end.
WORLD = dataclasses.replace(load_marketplace(), saga_timeout_seconds=0)
CATALOG = load_catalog()
SEED = 5
SAGA = ("order", "payment", "notification")  # two hops of the saga: enough, and quick on moto
ORDER = planned_requests(CATALOG, 1, seed=3, rates={"payment_failure": 0, "restaurant_reject": 0, "delivery_failure": 0})[0].request
PAID = validate_order(ORDER, WORLD)
PAYMENT_SUCCESS = {"order_id": PAID["order_id"], "payment_id": "pay-1", "customer_id": PAID["customer_id"],
                   "restaurant_id": PAID["restaurant_id"], "items": PAID["items"], "amount": PAID["amount"],
                   "currency": "EUR", "delivery_zone": PAID["delivery_zone"]}


# An entry of each kind PutEvents refuses, as the payment service would send it: (entry, error code, what the
# message says).
REFUSED_ENTRIES = {
    "foreign-source": ({"Source": "yafdp.order", "DetailType": "Payment_Success", "Detail": PAYMENT_SUCCESS},
                       "NotAuthorizedForSourceException", "events:source"),
    "foreign-event": ({"DetailType": "Order_Initiated", "Detail": PAID}, "NotAuthorizedForDetailTypeException",
                      "events:detail-type"),
    "broken-schema": ({"DetailType": "Payment_Success", "Detail": {**PAYMENT_SUCCESS, "amount": -1}},
                      "yafdp.SchemaViolation", "breaks its schema"),
    "detail-not-an-object": ({"DetailType": "Payment_Success", "Detail": "[1, 2]"}, "MalformedDetail",
                             "must be a JSON object"),
    "detail-not-json": ({"DetailType": "Payment_Success", "Detail": "{oops"}, "MalformedDetail", "Detail is malformed"),
    "no-detail": ({"DetailType": "Payment_Success"}, "InvalidArgument", "Detail is a required argument"),
    "no-detail-type": ({"Detail": PAYMENT_SUCCESS}, "InvalidArgument", "DetailType is a required argument"),
    "empty-source": ({"Source": "", "DetailType": "Payment_Success", "Detail": PAYMENT_SUCCESS}, "InvalidArgument",
                     "Source is a required argument"),
    "resources-not-strings": ({"DetailType": "Payment_Success", "Detail": PAYMENT_SUCCESS, "Resources": [1]},
                              "InvalidArgument", "Parameter Resources is not valid"),
}


def _catalog(services):
    catalog = load_catalog()
    return catalog.without(*(s for s in catalog.services if s not in services))


def _one_order(open_bus, faults=Faults()):
    """A bus for the first two hops of the saga, once it handled one order placed through the API."""
    bus = open_bus(SAGA, faults)
    bus.call("order", "place_order", ORDER)
    bus.run()
    return bus


def _processed_once(bus, other: str, expected) -> None:
    """Each (event, rule) of the one order was processed once (and ``expected`` holds for its deliveries with the
    outcome ``other``): one charge, two notifications."""
    outcomes = bus.db.execute("SELECT event_id, rule, SUM(outcome = 'ok'), SUM(outcome = ?)"
                              " FROM deliveries GROUP BY event_id, rule", (other,)).fetchall()
    assert len(outcomes) == 4 and all(ok == 1 and expected(n) for _, _, ok, n in outcomes)
    assert bus.db.execute("SELECT COUNT(*) FROM payments WHERE kind = 'charge'").fetchone()[0] == 1
    assert bus.db.execute("SELECT COUNT(*) FROM notifications").fetchone()[0] == 2


def _subscription(bus, rule: str) -> str:
    return rule.removeprefix(bus.plan.prefix + "-")


class BusContract:
    """Subclasses provide ``open_bus(services, faults)``: a bus for those services of the catalog, and
    ``fix_faults(bus)``: the faults stop (the cause of the dead letters was fixed)."""

    def test_the_bus_is_a_bus(self, open_bus):
        assert isinstance(open_bus(("payment", "notification")), Bus)

    def test_a_published_event_is_recorded_under_the_id_put_events_returned(self, open_bus):
        bus = open_bus(("payment", "notification"))
        response = bus.put_events([{"DetailType": "Payment_Success", "Detail": PAYMENT_SUCCESS}], sender="payment")
        assert response["FailedEntryCount"] == 0
        [event_id] = [e["EventId"] for e in response["Entries"]]
        bus.run()
        source, detail_type, detail = bus.db.execute(
            "SELECT source, detail_type, detail FROM events WHERE event_id = ?", (event_id,)).fetchone()
        assert (source, detail_type, json.loads(detail)) == ("yafdp.payment", "Payment_Success", PAYMENT_SUCCESS)
        delivered = bus.db.execute("SELECT rule, outcome FROM deliveries WHERE event_id = ?", (event_id,)).fetchall()
        assert [(_subscription(bus, r), o) for r, o in delivered] == [("notification-tells-customer", "ok")]

    def test_put_events_answers_per_entry_and_publishes_the_good_one(self, open_bus):
        """One request of a good entry and one entry of each kind PutEvents refuses (ten entries, the most a request
        may hold): each refused entry gets its own code and message in its place, the others are unaffected, and
        only the good one is published. (One request for all of them, not one deployment per refused entry: each
        entry is checked on its own, as the answers show.)"""
        bus = open_bus(SAGA)
        good = {"DetailType": "Payment_Success", "Detail": PAYMENT_SUCCESS}
        response = bus.put_events([good, *(entry for entry, _, _ in REFUSED_ENTRIES.values())], sender="payment")
        assert response["FailedEntryCount"] == len(REFUSED_ENTRIES)
        published, *refused = response["Entries"]
        assert "ErrorCode" not in published
        for (name, (_, code, why)), answer in zip(REFUSED_ENTRIES.items(), refused, strict=True):
            assert answer["ErrorCode"] == code and why in answer["ErrorMessage"] and "EventId" not in answer, name
        bus.run()
        assert bus.db.execute("SELECT event_id FROM events WHERE detail_type = 'Payment_Success'").fetchall() == [
            (published["EventId"],)]

    def test_a_request_of_more_than_ten_entries_is_refused_as_a_whole(self, open_bus):
        bus = open_bus(SAGA)
        with pytest.raises(PublishError, match="1 to 10 entries"):
            bus.put_events([{"DetailType": "Payment_Success", "Detail": PAYMENT_SUCCESS}] * 11, sender="payment")

    def test_a_request_whose_entry_sizes_add_up_past_the_limit_is_refused_as_a_whole(self, open_bus):
        # Each entry alone is under the limit (their schema-free sizes are checked first, as AWS does).
        bus = open_bus(SAGA)
        half = {"DetailType": "Payment_Success", "Detail": json.dumps({**PAYMENT_SUCCESS, "x": "y" * 600_000})}
        with pytest.raises(PublishError, match="Total size of the entries in the request is over the limit"):
            bus.put_events([half, half], sender="payment")
        bus.run()
        assert bus.db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0

    def test_each_event_reaches_exactly_the_rules_the_catalog_subscribes_to_it(self, open_bus):
        bus = _one_order(open_bus)
        events = bus.db.execute("SELECT event_id, detail_type FROM events").fetchall()
        assert [e[1] for e in events] == ["Order_Initiated", "Payment_Success"]
        for event_id, detail_type in events:
            declared = {s.rule for s in bus.catalog.consumers(detail_type)}  # the catalog's word, not the router's
            delivered = {_subscription(bus, r) for (r,) in bus.db.execute(
                "SELECT rule FROM deliveries WHERE event_id = ? AND outcome = 'ok'", (event_id,))}
            assert delivered == declared, detail_type
        first = {_subscription(bus, r) for (r,) in bus.db.execute(
            "SELECT rule FROM deliveries WHERE event_id = ?", (events[0][0],))}
        assert first == {"payment-charges-order", "notification-tells-customer"}

    def test_a_failed_delivery_is_retried_until_it_succeeds(self, open_bus):
        bus = _one_order(open_bus, Faults(handler_failure_rate=1.0))
        attempts = bus.db.execute("SELECT event_id, rule, group_concat(outcome, ',') FROM"
                                  " (SELECT * FROM deliveries ORDER BY attempt) GROUP BY event_id, rule").fetchall()
        assert len(attempts) == 4 and {a[2] for a in attempts} == {"failed,ok"}
        assert bus.db.execute("SELECT status FROM orders").fetchall() == [("PAID",)]

    def test_a_delivery_that_always_fails_ends_in_the_queues_dead_letter_queue_with_its_reason(self, open_bus):
        bus = _one_order(open_bus, Faults(poison_rate=1.0))
        dead = bus.db.execute("SELECT rule, kind, error_code, error_message, exhausted_retry_condition, retry_attempts,"
                              " attributes FROM dead_letters").fetchall()
        assert {_subscription(bus, r[0]) for r in dead} == {"payment-charges-order", "notification-tells-customer"}
        for rule, kind, code, message, exhausted, retries, attributes in dead:
            service = bus.plan.service(bus.plan.rule(rule).service)
            assert (kind, code, exhausted) == ("queue", "Unhandled", "maxReceiveCount")
            assert "PoisonEvent" in message and retries == service.max_receive_count - 1
            attributes = json.loads(attributes)  # SQS's, not EventBridge's
            assert attributes["ApproximateReceiveCount"] == str(service.max_receive_count)
            assert not {"ERROR_CODE", "ERROR_MESSAGE", "RETRY_ATTEMPTS", "EXHAUSTED_RETRY_CONDITION"} & set(attributes)
        receives = bus.db.execute("SELECT rule, COUNT(*) FROM deliveries GROUP BY event_id, rule").fetchall()
        assert all(n == bus.plan.service(bus.plan.rule(r).service).max_receive_count for r, n in receives)
        assert bus.db.execute("SELECT COUNT(*) FROM deliveries WHERE outcome = 'ok'").fetchone()[0] == 0
        assert bus.db.execute("SELECT COUNT(*) FROM payments").fetchone()[0] == 0

    def test_dead_letters_redriven_after_the_fix_are_delivered(self, open_bus):
        bus = _one_order(open_bus, Faults(poison_rate=1.0))
        self.fix_faults(bus)
        assert bus.redrive() == 2
        bus.run()
        assert bus.db.execute("SELECT COUNT(*) FROM dead_letters WHERE redriven_at IS NULL").fetchone()[0] == 0
        assert bus.db.execute("SELECT COUNT(*) FROM dead_letters WHERE redriven_at IS NOT NULL").fetchone()[0] == 2
        assert bus.db.execute("SELECT status FROM orders").fetchall() == [("PAID",)]

    def test_a_duplicate_delivery_is_processed_once(self, open_bus):
        _processed_once(_one_order(open_bus, Faults(duplicate_rate=1.0)), "duplicate", lambda n: n >= 1)


    def test_a_poisoned_delivery_is_dead_lettered_even_when_it_is_also_duplicated(self, open_bus):
        bus = _one_order(open_bus, Faults(duplicate_rate=1.0, poison_rate=1.0))
        dead = {(e, _subscription(bus, r)) for e, r in bus.db.execute("SELECT event_id, rule FROM dead_letters")}
        assert {rule for _, rule in dead} == {"payment-charges-order", "notification-tells-customer"}
        assert bus.db.execute("SELECT COUNT(*) FROM deliveries WHERE outcome = 'ok'").fetchone()[0] == 0

    def test_injected_faults_follow_the_one_decision_per_event_and_rule(self, open_bus):
        faults = Faults(duplicate_rate=1.0, poison_rate=0.5)
        bus = _one_order(open_bus, faults)
        dead = {(e, _subscription(bus, r)) for e, r in bus.db.execute("SELECT event_id, rule FROM dead_letters")}
        handled = {(e, _subscription(bus, r)) for e, r in bus.db.execute("SELECT DISTINCT event_id, rule FROM deliveries")}
        assert handled and dead <= handled
        for event_id, rule in handled:
            poisoned = decide(faults, SEED, event_id, rule).fault == POISON
            assert ((event_id, rule) in dead) == poisoned, (event_id, rule)


class TestLocalBus(BusContract):
    BUS = "classic"

    @staticmethod
    def fix_faults(bus):
        bus.faults = Faults()

    @pytest.fixture
    def open_bus(self):
        def open_(services, faults=Faults()):
            options = RunOptions(seed=SEED, faults=faults, bus=self.BUS)
            return open_local(options, _catalog(services), WORLD, rundb.connect(":memory:"))
        return open_

    def test_a_half_poisoned_duplicated_run_dead_letters_some_deliveries(self, tmp_path):
        # The case that was tried, `yafdp run --duplicate-rate 1 --poison-rate 0.5`: the local bus used to
        # dead-letter nothing (poison was drawn per copy, and the clean copy succeeded).
        with pytest.raises(StuckSagasError) as stuck:  # a poisoned saga is stuck in the dead-letter queue
            run_saga(RunOptions(out=tmp_path, faults=Faults(duplicate_rate=1.0, poison_rate=0.5), bus=self.BUS))
        summary = stuck.value.summary
        assert summary["dead_letters"] > 0 and summary["deliveries"]["dead_lettered"] == summary["dead_letters"]


class TestLocalCustomBus(TestLocalBus):
    """The same contract on a Custom Event Bus (``--bus custom``): subscribers in place of rules, FIFO service
    queues; where the Custom Event Bus promises more (100 entries per PutEvents, no duplicate hand-off reaching a
    FIFO queue's consumer), its own test says so."""

    BUS = "custom"

    def test_a_request_of_more_than_ten_entries_is_refused_as_a_whole(self, open_bus):
        bus = open_bus(SAGA)
        with pytest.raises(PublishError, match="1 to 100 entries"):
            bus.put_events([{"DetailType": "Payment_Success", "Detail": PAYMENT_SUCCESS}] * 101, sender="payment")
        answer = bus.put_events([{"DetailType": "Payment_Success", "Detail": PAYMENT_SUCCESS}] * 11, sender="payment")
        assert answer["FailedEntryCount"] == 0 and {e["SuccessCode"] for e in answer["Entries"]} == {"PUBLISHED"}

    def test_a_duplicate_delivery_is_processed_once(self, open_bus):
        # The subscriber hands each event to its FIFO queue twice; the queue's deduplication (MessageDeduplicationId
        # = aws:EventId, 5 minutes) drops the copy, so the consumer never even sees it.
        _processed_once(_one_order(open_bus, Faults(duplicate_rate=1.0)), "duplicate", lambda n: n == 0)


class TestMotoBus(BusContract):
    BUS = None  # the catalog's: classic

    @staticmethod
    def fix_faults(bus):
        for function in bus.functions.functions.values():
            function.config = dataclasses.replace(function.config, faults=Faults())

    @pytest.fixture
    def deployment(self, clients):
        """The clients to deploy with, and how many events the bus has still to deliver (None: moto's Classic bus
        delivers before PutEvents answers)."""
        return clients, None

    @pytest.fixture
    def open_bus(self, deployment):
        (clients, undelivered), opened = deployment, []

        def open_(services, faults=Faults()):
            catalog, prefix = _catalog(services), f"ct-{secrets.token_hex(3)}"
            # A 1 s visibility timeout and 2 receives before the dead-letter queue keep retries quick.
            plan = build_plan(catalog, prefix, region=clients.region, account=clients.account(), run_id=prefix,
                              visibility_timeout_seconds=1, max_receive_count=2, bus=self.BUS)
            apply(plan, clients, build_package(), run_functions=False, faults=faults, seed=SEED, echo=lambda line: None)
            bus = AwsBus(catalog, plan, clients, InProcessFunctions(plan, catalog, WORLD, clients, faults=faults,
                                                                    seed=SEED), undelivered=undelivered)
            opened.append(bus)
            return bus

        yield open_
        for bus in opened:
            bus.close()
            destroy(clients, bus.plan.prefix, echo=lambda line: None)


@pytest.fixture(scope="module")
def served_deployment(moto_url):
    """Clients for the worker's moto server, whose ``eventbridgev2`` goes to a Custom Event Bus served here (its
    subscribers delivering to that moto server), and how many events that bus has still to deliver.

    Its buses are ACTIVE, and gone once deleted, at the clock's next step (the engine's default choices), not after
    the half second ``yafdp serve`` gives each state, so the deployer's and the teardown's waiters see the state
    they wait for at their first look (tests/integration/test_served_custom_bus.py checks the states and the
    waiters on a bus served as ``yafdp serve`` serves it)."""
    from yafdp.backends.aws.clients import make_clients
    from yafdp.custom_event_bus import Choices
    from yafdp.runs.bootstrap import serve_custom_event_bus

    with serve_custom_event_bus(endpoint_url=moto_url, seed=SEED, choices=Choices()) as served:
        yield make_clients(moto_url, bus_endpoint_url=served.url), served.undelivered


class TestServedCustomBus(TestMotoBus):
    """The same contract on the AWS path with a Custom Event Bus: the plan deployed with boto3 (``eventbridgev2``
    to the bus ``yafdp serve`` serves, the rest to moto), FIFO service queues read by the pollers, the handlers
    publishing with boto3. Where the Custom Event Bus promises more, its own test says so, as for the local one."""

    BUS = "custom"

    @pytest.fixture
    def deployment(self, served_deployment):
        return served_deployment

    test_a_request_of_more_than_ten_entries_is_refused_as_a_whole = \
        TestLocalCustomBus.test_a_request_of_more_than_ten_entries_is_refused_as_a_whole

    def test_a_duplicate_delivery_is_processed_once(self, open_bus):
        # The poller hands each message to the FIFO queue twice, the copy with the original's deduplication id:
        # SQS drops it. What can still come back is a message whose visibility timeout (1 s here) ended while it was
        # being handled: the function then finds it processed. Either way one delivery of each is processed.
        _processed_once(_one_order(open_bus, Faults(duplicate_rate=1.0)), "failed", lambda n: n == 0)

    def test_the_events_carry_the_custom_event_bus_facts_and_each_order_arrives_in_publish_order(self, open_bus):
        bus = _one_order(open_bus)
        events = bus.db.execute("SELECT detail_type, event_group_id, sequence_number, deduplication_id FROM events"
                                " ORDER BY sequence_number").fetchall()
        assert [e[0] for e in events] == ["Order_Initiated", "Payment_Success"]
        assert {e[1] for e in events} == {PAID["order_id"]} and all(len(e[2]) == 20 for e in events)
        assert all(e[3] for e in events)  # each names the unit of work that published it
        assert {t for (t,) in bus.db.execute("SELECT DISTINCT delivery_type FROM deliveries")} == {"LIVE"}
