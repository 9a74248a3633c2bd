"""The Custom Event Bus in the latency model (yafdp.simulation.buses.CustomEventBus): its ingestion limits per event
group (events + KB in any one-second window) and per bus (events a second), the producer's retries of a throttled
request, and the quotas file kept equal to the engine's limits."""

import dataclasses
import random

from yafdp.custom_event_bus.limits import BUS_EVENTS_PER_SECOND, GROUP_EVENTS_PLUS_KB_PER_SECOND
from yafdp.simulation.buses import CustomEventBus, EventBusModel, OneSecondWindows
from yafdp.simulation.profiles import load_profile
from yafdp.simulation.quotas import load_quotas

QUOTAS = load_quotas()
DELIVERY = load_profile().hops["eventbridge_delivery"]
HALF_KB = 512


def bus(**quotas) -> CustomEventBus:
    return CustomEventBus(dataclasses.replace(QUOTAS, **quotas), DELIVERY, random.Random(1))


def test_the_quotas_file_holds_the_engines_limits():
    assert QUOTAS.custom_event_bus_events_per_second == BUS_EVENTS_PER_SECOND == 500_000
    assert QUOTAS.custom_event_bus_group_events_plus_kb_per_second == GROUP_EVENTS_PLUS_KB_PER_SECOND == 1_500
    assert isinstance(bus(), EventBusModel)


def test_a_group_takes_1500_events_plus_kb_a_second_and_no_more():
    model = bus()
    group = {"ord-1": (1, HALF_KB)}  # 1 event + 0.5 KB
    assert all(model.put_events(0.0, 1, group) == 0.0 for _ in range(1_000))  # 1,000 + 500 = 1,500: the limit
    assert model.put_events(0.0, 1, group) is None  # the producer's retries all fall within the same second
    report = model.report()
    assert report["put_events_throttled"] == 1 and report["put_events_refused"] == 1
    assert model.put_events(1.0, 1, group) == 1.0  # the window has passed
    assert model.put_events(0.5, 1, {"ord-2": (1, HALF_KB)}) == 0.5  # another group has its own budget


def test_kb_count_as_the_engine_counts_them_not_rounded():
    model = bus()
    assert model.put_events(0.0, 1, {"g": (1, 1_024 * 1_498)}) == 0.0  # 1 event + 1,498 KB = 1,499
    assert model.put_events(0.0, 1, {"g": (1, 0)}) == 0.0  # 1,500
    assert model.put_events(0.0, 1, {"g": (1, 1)}) is None  # 1,501.001


def test_a_throttled_request_is_accepted_at_the_first_retry_that_fits():
    model = bus()
    group = {"g": (1_500, 0)}  # the whole second's budget at once
    assert model.put_events(0.0, 1_500, group) == 0.0
    answers = [model.put_events(0.95, 1, {"g": (1, 0)}) for _ in range(20)]
    accepted = [a for a in answers if a is not None]
    assert accepted and all(a > 1.0 for a in accepted)  # only a retry past the second that ends at 1.0 fits
    report = model.report()
    assert report["put_events_throttled"] == 20 and report["put_events_refused"] == 20 - len(accepted)
    assert report["put_events_throttle_delay_s"] > 0.05 * len(accepted)


def test_a_request_bigger_than_a_groups_budget_is_refused_after_every_try():
    model = bus()
    assert model.put_events(0.0, 100, {"g": (100, 1_024 * 1_401)}) is None  # 100 + 1,401 KB > 1,500
    report = model.report()
    assert report["put_events_throttled"] == report["put_events_refused"] == 1


def test_the_bus_takes_its_events_a_second_from_every_group_and_none():
    model = bus(custom_event_bus_events_per_second=10.0)
    assert model.put_events(0.0, 6) == 0.0  # no event group: the bus's limit only
    assert model.put_events(0.1, 4, {"g": (4, 0)}) == 0.1
    assert model.put_events(0.2, 1, {"h": (1, 0)}) is None  # the bus is full until 1.0
    assert model.put_events(1.05, 6) == 1.05


def test_a_request_decided_out_of_order_counts_its_own_second_only():
    window = OneSecondWindows(2)
    window.take(5.0, 2)  # decided first, for later
    assert window.fits(3.5, 2)  # the second ending at 3.5 holds nothing
    assert not window.fits(5.5, 1)
    assert window.fits(6.01, 2)


def test_groups_that_took_nothing_for_a_while_are_forgotten():
    model = bus()
    for order in range(50):
        model.put_events(float(order), 1, {f"ord-{order}": (1, HALF_KB)})
    assert len(model._groups) <= OneSecondWindows.KEPT_SECONDS + 2


def test_invocations_are_not_limited_on_the_custom_event_bus():
    model = bus()
    assert model.invoke(3.0, None) == 3.0
    assert model.report()["invocations_throttled"] == 0


def test_a_custom_bus_run_takes_its_delivery_latency_from_the_profiles_labelled_assumption():
    """AWS publishes no Custom Event Bus latency: the profile says so in its entry, and a --bus custom run uses it."""
    from yafdp.runs.bootstrap import timing_for

    profile = load_profile("aws-eu-west-1")
    entry = profile.document["distributions_ms"]["custom_event_bus_delivery"]
    assert "source" not in entry and "publishes no delivery latency" in entry["assumption"]
    timing = timing_for("aws-eu-west-1", bus_kind="custom")
    assert isinstance(timing.bus, CustomEventBus) and timing.bus.delivery is not DELIVERY
    assert timing.bus.delivery.quantile(0.5) == profile.hops["custom_event_bus_delivery"].quantile(0.5)


def test_a_group_whose_events_all_fit_its_limit_is_never_throttled_and_its_window_may_be_left_out():
    small = bus(custom_event_bus_group_events_plus_kb_per_second=3)
    assert small.group_never_throttled(2.5) and not small.group_never_throttled(3.5)
    # what such a group's requests get, with its window or without: the same answers, at the same times
    with_window, without = bus(custom_event_bus_group_events_plus_kb_per_second=3), \
        bus(custom_event_bus_group_events_plus_kb_per_second=3)
    answers = [(with_window.put_events(t, 1, {"g": (1, HALF_KB)}), without.put_events(t, 1)) for t in (0.0, 0.1, 1.5)]
    assert all(a == b == t for (a, b), t in zip(answers, (0.0, 0.1, 1.5)))
    # and past the total the group is throttled, which is why it must then be handed over
    assert not small.group_never_throttled(4 * 1.5) and \
        [small.put_events(0.0, 1, {"g": (1, HALF_KB)}) for _ in range(3)][-1] != 0.0
