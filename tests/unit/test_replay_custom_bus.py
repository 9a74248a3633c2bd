"""The replay of a Custom Event Bus run: each event's group and size recorded, the bus's limits per event group and
per bus, the order a FIFO subscriber and a FIFO queue keep within a group, and a function target's retries under
the subscriber's retry policy. Whether it agrees with the full simulation is
tests/integration/test_replay_validation_custom_bus.py's question."""

import dataclasses
from collections import Counter

import pytest

from yafdp.catalog import load_catalog
from yafdp.errors import RefusedError
from yafdp.plan import build_plan
from yafdp.plan.model import RetryPolicy
from yafdp.runs import RunOptions
from yafdp.runs.replaying import record, record_sample
from yafdp.runs.workload import outcome_rates, planned_requests
from yafdp.runtime import rundb
from yafdp.simulation.buses import CustomEventBus
from yafdp.simulation.profiles import load_profile
from yafdp.simulation.quotas import load_quotas
from yafdp.simulation.recording import NO_GROUP, SIZE_STEP, record_choreography
from yafdp.simulation.replay import replay

PROFILE = load_profile()
QUOTAS = load_quotas()
CATALOG = load_catalog()


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    out = tmp_path_factory.mktemp("custom")
    return out, record(RunOptions(orders=60, seed=3, out=out, bus="custom"))


def with_plan(recording, **changes):
    """``recording`` with every subscriber (and service) of its plan changed."""
    plan = recording.plan
    subscribers = tuple(dataclasses.replace(s, **changes.get("subscriber", {})) for s in plan.subscribers)
    services = tuple(dataclasses.replace(s, **changes.get("service", {})) for s in plan.services)
    return dataclasses.replace(recording, plan=dataclasses.replace(plan, subscribers=subscribers, services=services))


def test_a_custom_event_bus_run_is_recorded_with_each_events_group_and_size(custom):
    out, recording = custom
    assert recording.plan.bus_kind == "custom" and len(recording.orders) == 60 and recording.left_out == 0
    with rundb.open_run(out) as db:
        deliveries = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
    assert sum(recording.graphs[o.graph].handler_runs for o in recording.orders) == deliveries
    for graph in recording.graphs:
        # every event of an order is in the order's one group (EventGroupId = detail.order_id, bus.json)
        assert graph.published and all(group == 0 for group, _, _ in graph.published)
        for node in graph.nodes:
            assert node[7] == 0 and sum(count for _, count, _ in node[8]) == node[3]
            assert all(size > 0 and size % SIZE_STEP == 0 for _, _, size in node[8])
    assert len(recording.graphs) < 30  # sizes kept to 64 bytes: orders with the same steps mostly share a graph


def test_a_plan_for_the_other_kind_of_bus_is_refused_for_recording(custom):
    out, _ = custom
    with rundb.open_run(out) as db, pytest.raises(RefusedError, match="ran on a Custom Event Bus .* plan is for"):
        record_choreography(db, build_plan(CATALOG, bus="classic"), CATALOG.saga.terminal_events, CATALOG.saga.tracker)


def test_the_replay_of_a_custom_event_bus_run_takes_the_custom_event_bus_model(custom):
    _, recording = custom
    result = replay(recording, PROFILE, QUOTAS, arrival_rate=20.0, orders=200, seed=1)
    assert result.simulation["bus"] == CustomEventBus.name and result.finished == 200
    assert result.simulation["put_events_throttled"] == 0 and result.simulation["invocations_throttled"] == 0


def test_a_fifo_subscriber_and_a_fifo_queue_hold_an_orders_later_events_back_and_unordered_ones_do_not(custom):
    _, recording = custom
    fifo = replay(recording, PROFILE, QUOTAS, arrival_rate=20.0, orders=200, seed=1)
    unordered = replay(with_plan(recording, subscriber={"type": "UNORDERED"}, service={"fifo_queue": False}),
                       PROFILE, QUOTAS, arrival_rate=20.0, orders=200, seed=1)
    assert fifo.simulation["held_back_behind_their_group"] > 0
    assert unordered.simulation["held_back_behind_their_group"] == 0
    assert fifo.deliveries == unordered.deliveries  # the same handler runs, later
    assert sum(fifo.latencies_s) >= sum(unordered.latencies_s)


def small_groups(events_plus_kb: float) -> object:
    return dataclasses.replace(QUOTAS, custom_event_bus_group_events_plus_kb_per_second=events_plus_kb)


def test_past_the_limit_per_event_group_publishes_are_refused_and_the_queue_delivers_them_again(custom):
    _, recording = custom
    result = replay(recording, PROFILE, small_groups(2.0), arrival_rate=5.0, orders=40, seed=1)
    simulation = result.simulation
    assert simulation["put_events_refused"] > 0 and result.deliveries["failed"] > 0
    # every refusal ends one way: the order's request refused, a delivery that comes back, or one given up on
    assert simulation["put_events_refused"] == result.refused + result.deliveries["failed"] + \
        result.deliveries["dead_lettered"]
    roomy = replay(recording, PROFILE, QUOTAS, arrival_rate=5.0, orders=40, seed=1)
    assert min(result.latencies_s) > 30.0 > max(roomy.latencies_s)  # each saga waited out a visibility timeout


@pytest.mark.parametrize("events_plus_kb", [1_500.0, 2.0])
def test_groups_their_limit_never_throttles_are_left_out_with_the_same_result(custom, monkeypatch, events_plus_kb):
    _, recording = custom
    quotas = small_groups(events_plus_kb)  # roomy: every order's groups left out; small: kept, and throttled
    fast = replay(recording, PROFILE, quotas, arrival_rate=20.0, orders=200, seed=1)
    monkeypatch.setattr(CustomEventBus, "group_never_throttled", lambda self, most: False)  # every group kept
    kept = replay(recording, PROFILE, quotas, arrival_rate=20.0, orders=200, seed=1)
    assert (fast.latencies_s, fast.deliveries, fast.refused, fast.events_published) == \
        (kept.latencies_s, kept.deliveries, kept.refused, kept.events_published)
    assert fast.simulation == kept.simulation
    assert (fast.simulation["put_events_refused"] > 0) == (events_plus_kb < 10)


def test_past_the_limit_per_bus_requests_are_throttled_whatever_their_groups(custom):
    _, recording = custom
    quotas = dataclasses.replace(QUOTAS, custom_event_bus_events_per_second=20.0)
    result = replay(recording, PROFILE, quotas, arrival_rate=20.0, orders=200, seed=1)
    assert result.simulation["put_events_throttled"] > 0


@pytest.mark.parametrize("retries, dead", [(5, False), (0, True)])
def test_a_function_targets_failed_delivery_is_retried_under_the_subscribers_retry_policy(custom, retries, dead):
    _, recording = custom
    policy = RetryPolicy(maximum_retry_attempts=retries, maximum_event_age_seconds=300)
    targets = {s.name: dataclasses.replace(s.target, kind="lambda", retry_policy=policy)
               for s in recording.plan.subscribers}
    plan = recording.plan
    lambda_plan = dataclasses.replace(plan, subscribers=tuple(
        dataclasses.replace(s, target=targets[s.name], batch_size=1, invocation_type="REQUEST_RESPONSE")
        for s in plan.subscribers))
    result = replay(dataclasses.replace(recording, plan=lambda_plan), PROFILE, small_groups(2.0), arrival_rate=5.0,
                    orders=40, seed=1)
    if dead:  # no retry: the first failure is given up on, and the order's saga is cut short
        assert result.deliveries["dead_lettered"] > 0 and result.deliveries["failed"] == 0 and result.not_finished > 0
    else:  # retried after the engine's back-off (seconds, not a queue's 30 s visibility timeout)
        assert result.deliveries["failed"] > 0 and result.not_finished == 0
        assert max(result.latencies_s) < 30.0


def test_an_event_without_a_group_counts_toward_the_bus_only(custom):
    _, recording = custom
    ungrouped = dataclasses.replace(recording, graphs=[
        dataclasses.replace(g, published=(), nodes=tuple((*n[:7], NO_GROUP, ()) for n in g.nodes))
        for g in recording.graphs])
    result = replay(ungrouped, PROFILE, small_groups(2.0), arrival_rate=5.0, orders=40, seed=1)
    assert result.simulation["put_events_throttled"] == 0 and result.simulation["held_back_behind_their_group"] == 0


def test_a_sample_per_outcome_records_few_orders_and_keeps_the_workloads_outcome_mix(tmp_path):
    options = RunOptions(orders=300, seed=3, out=tmp_path / "sample", bus="custom")
    recording = record_sample(options, per_outcome=4)
    planned = planned_requests(CATALOG, 300, 3, outcome_rates(CATALOG, {}))
    expected = Counter("CANCELLED" if p.expected.startswith("CANCELLED") else p.expected for p in planned)
    assert len(expected) == 2 and expected["CANCELLED"] > 4  # the workload has both outcomes, and more than sampled
    assert len(recording.orders) == 300 and recording.outcomes() == dict(sorted(expected.items()))
    # only the sample ran: 4 orders of each of the generator's outcomes (delivered, and three ways to be cancelled)
    with rundb.open_run(tmp_path / "sample") as db:
        assert db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 4 * 4
    assert len({order.order_id for order in recording.orders}) == 16
    assert [order.due for order in recording.orders] == [p.at for p in planned]
    # each order takes a recorded order's graph of its own outcome
    for order, p in zip(recording.orders, planned):
        assert order.status == ("CANCELLED" if p.expected.startswith("CANCELLED") else p.expected)


def test_a_sample_per_outcome_refuses_what_it_cannot_draw(tmp_path):
    with pytest.raises(RefusedError, match="per_outcome must be at least 1"):
        record_sample(RunOptions(orders=10, seed=3, out=tmp_path / "a", bus="custom"), per_outcome=0)
    with pytest.raises(RefusedError, match="not an orders file"):
        record_sample(RunOptions(orders=10, seed=3, out=tmp_path / "b", bus="custom", orders_file=tmp_path / "x.json"),
                      per_outcome=2)
