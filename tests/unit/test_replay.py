"""The replay's parts: the bus model (EventBridge's quotas as the timing model applies them), each order's causal
graph as recorded from a run, and the replay of those graphs through the timing model without any handler.
Whether the replay agrees with the full simulation is tests/integration/test_replay_validation.py's question."""

import dataclasses
import random

import numpy
import pytest

from yafdp.catalog import load_catalog
from yafdp.errors import RefusedError
from yafdp.plan.model import RetryPolicy
from yafdp.runs import RunOptions, run_saga
from yafdp.runs.replaying import record, replay_recording
from yafdp.runtime import rundb
from yafdp.runtime.publishing import PUBLISH_ATTEMPTS, PUBLISH_BACKOFF_SECONDS
from yafdp.simulation.buses import ClassicEventBus, EventBusModel
from yafdp.simulation.profiles import Distribution, load_profile
from yafdp.simulation.quotas import load_quotas
from yafdp.simulation.recording import DELIVERY, JOIN, START, TASK, TRANSITION, record_choreography
from yafdp.simulation.replay import replay

PROFILE = load_profile()
QUOTAS = load_quotas()
HOUR = RetryPolicy(maximum_retry_attempts=4, maximum_event_age_seconds=3600)


def small_bus(put_events_per_second: float = 10.0, invocations_per_second: float = 10.0) -> ClassicEventBus:
    quotas = dataclasses.replace(QUOTAS, eventbridge_put_events_per_second=put_events_per_second,
                                 eventbridge_invocations_per_second=invocations_per_second)
    return ClassicEventBus(quotas, PROFILE.hops["eventbridge_delivery"], random.Random(1))


# ---------------------------------------------------------------- the bus model


def test_the_classic_bus_is_an_event_bus_model():
    assert isinstance(small_bus(), EventBusModel)


def test_put_events_under_the_quota_is_accepted_at_once_one_request_per_ten_entries():
    bus = small_bus(put_events_per_second=2.0)  # a token every 0.5 s (longer than a producer retries), a burst of 2
    assert bus.put_events(0.0, 11) == 0.0  # two requests: 10 entries, then 1
    assert bus.put_events(0.1, 1) is None  # no token before 0.5 s: refused after the producer's retries
    assert bus.put_events(0.5, 1) == 0.5
    assert bus.report()["put_events_refused"] == 1 and bus.report()["put_events_throttled"] == 0


def test_a_throttled_request_is_accepted_at_a_retry_once_the_bucket_has_a_token():
    budget = sum(PUBLISH_BACKOFF_SECONDS * 2 ** n for n in range(PUBLISH_ATTEMPTS - 1))  # the longest it can retry
    bus = small_bus(put_events_per_second=64.0)  # a burst of 64, then a token every 1/64 s
    answers = [bus.put_events(0.0, 1) for _ in range(65)]
    assert answers[:64] == [0.0] * 64 and 1 / 64 <= answers[64] <= budget
    assert bus.report()["put_events_throttled"] == 1 and bus.report()["put_events_refused"] == 0


def test_a_throttled_invocation_waits_its_turn_up_to_the_targets_maximum_event_age_and_no_longer():
    bus = small_bus(invocations_per_second=1.0)  # one a second, a burst of one
    assert [bus.invoke(0.0, HOUR) for _ in range(3)] == [0.0, 1.0, 2.0]
    short = RetryPolicy(maximum_retry_attempts=185, maximum_event_age_seconds=60)
    for _ in range(58):
        bus.invoke(0.0, HOUR)
    assert bus.invoke(0.0, short) is None  # its turn would come 61 s after it was accepted
    assert bus.invoke(0.0, HOUR) == 61.0  # and it took no token
    assert bus.report()["invocations_expired"] == 1


def test_a_distributions_samples_drawn_at_once_follow_its_quantiles():
    hop = PROFILE.hops["eventbridge_delivery"]
    drawn = hop.samples(200_000, numpy.random.default_rng(7))
    for level in (0.1, 0.5, 0.9, 0.99):
        assert numpy.quantile(drawn, level) == pytest.approx(hop.quantile(level), rel=0.02)
    assert list(Distribution({"p50": 20}).samples(3, numpy.random.default_rng(1))) == [0.02] * 3


# ---------------------------------------------------------------- recording


@pytest.fixture(scope="module")
def choreography(tmp_path_factory):
    out = tmp_path_factory.mktemp("recorded")
    return out, record(RunOptions(orders=80, seed=3, out=out))


def test_each_order_is_recorded_with_every_delivery_of_the_run(choreography):
    out, recording = choreography
    with rundb.open_run(out) as db:
        deliveries, orders = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0], dict(
            db.execute("SELECT order_id, status FROM orders"))
    assert len(recording.orders) == len(orders) == 80 and recording.left_out == 0
    assert sum(recording.graphs[o.graph].handler_runs for o in recording.orders) == deliveries
    assert {o.order_id: o.status for o in recording.orders} == orders
    assert recording.outcomes() == {status: list(orders.values()).count(status) for status in set(orders.values())}
    assert len(recording.graphs) < 10  # orders whose sagas took the same steps share one graph


def test_a_graph_is_the_saga_as_the_catalog_runs_it(choreography):
    _, recording = choreography
    delivered = next(o for o in recording.orders if o.status == "DELIVERY_SCHEDULED")
    graph = recording.graphs[delivered.graph]
    assert {node[0] for node in graph.nodes} == {DELIVERY}
    roots = {graph.nodes[i][1] for i in graph.roots}
    assert "payment" in roots and graph.entries == 1  # Order_Initiated wakes Payment up
    terminal = [node for node in graph.nodes if node[5]]
    assert [node[1] for node in terminal] == ["delivery"]  # Delivery publishes Delivery_Scheduled


def test_a_run_with_injected_faults_is_refused_for_recording(tmp_path):
    from yafdp.runtime.faults import Faults

    run_saga(RunOptions(orders=5, seed=1, out=tmp_path, faults=Faults(duplicate_rate=0.5)))
    with rundb.open_run(tmp_path) as db, pytest.raises(RefusedError, match="injected faults .*duplicate_rate"):
        record_choreography(db, recording_plan(), TERMINAL_EVENTS, TRACKER)


TERMINAL_EVENTS, TRACKER = load_catalog().saga.terminal_events, load_catalog().saga.tracker


def recording_plan():
    from yafdp.catalog import load_catalog
    from yafdp.plan import build_plan

    return build_plan(load_catalog())


def test_an_orchestrated_run_is_recorded_state_by_state(tmp_path):
    summary_out = tmp_path / "standard"
    recording = record(RunOptions(orders=30, seed=2, out=summary_out, style="orchestration"))
    with rundb.open_run(summary_out) as db:
        summary = rundb.get_info(db)["summary"]
    graphs = [recording.graphs[o.graph] for o in recording.orders]
    assert len(graphs) == 30 and recording.workflow == "standard"
    kinds = [node[0] for graph in graphs for node in graph.nodes]
    assert kinds.count(TASK) == summary["deliveries"]["total"]
    assert kinds.count(TRANSITION) == summary["orchestration"]["state_transitions"]
    assert kinds.count(START) == 30 and kinds.count(JOIN) > 0
    for graph in graphs:  # a join waits for as many branches as lead to it
        for i, node in enumerate(graph.nodes):
            if node[0] == JOIN:
                assert node[6] == sum(i in other[4] for other in graph.nodes) >= 2


# ---------------------------------------------------------------- replaying


def test_the_recorded_workload_replayed_runs_every_recorded_step(choreography):
    _, recording = choreography
    result = replay_recording(recording, seed=1)
    runs = sum(recording.graphs[o.graph].handler_runs for o in recording.orders)
    assert result.orders == result.placed == result.finished == 80 and result.not_finished == 0
    assert result.deliveries == {"ok": runs, "failed": 0, "dead_lettered": 0, "total": runs}
    assert result.saga_ms["orders"] == 80 and 300 < result.saga_ms["p50"] < result.saga_ms["p99"] < 5000
    assert result.simulation["latency_model"] == "aws-eu-west-1" and result.simulation["cold_starts"] > 0


def test_orders_arrive_at_the_rate_asked_each_the_next_recorded_one_in_turn(choreography):
    _, recording = choreography
    result = replay_recording(recording, arrival_rate=40.0, orders=200, seed=1)
    assert result.orders == 200 and result.arrival_rate == 40.0
    per_turn = sum(recording.graphs[o.graph].handler_runs for o in recording.orders)
    first_40 = sum(recording.graphs[o.graph].handler_runs for o in recording.orders[:40])
    assert result.deliveries["total"] == 2 * per_turn + first_40
    assert 3.0 < result.simulation["virtual_seconds"] < 8.0  # 200 orders at 40 a second, and their sagas
    within = replay_recording(recording, arrival_rate=40.0, seconds=2.0, seed=1)
    assert 50 < within.orders < 110


def test_a_replay_is_the_same_for_the_same_seed_and_differs_for_another(choreography):
    _, recording = choreography
    first, again, other = (replay_recording(recording, arrival_rate=30.0, orders=100, seed=s) for s in (4, 4, 5))
    assert first.latencies_s == again.latencies_s and first.simulation == again.simulation
    assert first.latencies_s != other.latencies_s


def test_past_the_invocation_quota_the_events_held_past_the_maximum_event_age_are_given_up_on(choreography):
    _, recording = choreography
    # 20 invocations a second for about 220 offered, and targets that give up on an event after 60 s.
    plan = recording.plan
    short = RetryPolicy(maximum_retry_attempts=185, maximum_event_age_seconds=60)
    rules = tuple(dataclasses.replace(r, target=dataclasses.replace(r.target, retry_policy=short)) for r in plan.rules)
    impatient = dataclasses.replace(recording, plan=dataclasses.replace(plan, rules=rules))
    quotas = dataclasses.replace(QUOTAS, eventbridge_invocations_per_second=20.0)
    result = replay(impatient, PROFILE, quotas, arrival_rate=20.0, orders=400, seed=1)
    simulation = result.simulation
    assert simulation["invocations_throttled"] > 0 and simulation["invocations_expired"] > 0
    assert result.deliveries["dead_lettered"] == simulation["invocations_expired"]
    assert result.not_finished > 0 and result.finished + result.not_finished == result.placed == 400
    assert max(result.latencies_s) > 60  # the saga's hops together may take longer than one hop may wait


def test_past_the_put_events_quota_requests_are_refused_and_deliveries_fail_and_come_back(choreography):
    _, recording = choreography
    quotas = dataclasses.replace(QUOTAS, eventbridge_put_events_per_second=10.0)  # about 100 offered a second
    result = replay(recording, PROFILE, quotas, arrival_rate=20.0, orders=400, seed=1)
    refused, failed = result.refused, result.deliveries["failed"]
    assert refused > 0 and failed > 0 and result.placed + refused == 400
    # every refusal ends one way: the order's request refused, a delivery that comes back, or one given up on
    assert result.simulation["put_events_refused"] == refused + failed + result.deliveries["dead_lettered"]
    assert result.simulation["invocations_expired"] == 0


def test_a_bus_model_of_another_kind_plugs_in(choreography):
    _, recording = choreography

    class InstantBus:
        """A bus with no quota, whose events reach their targets at once."""
        name = "instant"
        delivery = Distribution({"p50": 0})

        def __init__(self, quotas, delivery, rng):
            self.calls = 0

        def put_events(self, at, entries, groups=None):
            self.calls += 1
            return at

        def invoke(self, at, retry_policy):
            return at

        def report(self):
            return {"calls": self.calls}

    result = replay(recording, PROFILE, QUOTAS, seed=1, bus=InstantBus)
    assert result.simulation["bus"] == "instant" and result.simulation["calls"] == result.events_published
    slower = replay(recording, PROFILE, QUOTAS, seed=1)
    assert result.saga_ms["p50"] < slower.saga_ms["p50"] - 300  # four EventBridge hops of about 150 ms saved


@pytest.mark.parametrize("kwargs, problem", [
    ({"arrival_rate": 0.0, "orders": 5}, "arrival_rate must be positive"),
    ({"arrival_rate": 5.0}, "give how long orders arrive"),
])
def test_a_replay_refuses_what_it_cannot_do(choreography, kwargs, problem):
    _, recording = choreography
    with pytest.raises(RefusedError, match=problem):
        replay_recording(recording, **kwargs)


def test_an_empty_recording_is_refused(choreography):
    _, recording = choreography
    with pytest.raises(RefusedError, match="holds no order"):
        replay_recording(dataclasses.replace(recording, orders=[]))


def test_a_recording_from_a_run_db_needs_its_rules_in_the_plan(choreography):
    out, _ = choreography
    plan = recording_plan()
    with rundb.open_run(out) as db, pytest.raises(RefusedError, match="which the plan does not have"):
        record_choreography(db, dataclasses.replace(plan, rules=plan.rules[1:]), TERMINAL_EVENTS, TRACKER)
