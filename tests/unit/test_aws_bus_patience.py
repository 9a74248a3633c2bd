"""A run on a deployment waits for progress, not for a time: it gives up only when nothing has moved on the
service queues for the bus's ``timeout``, however long the whole run takes (a busy machine makes it slow)."""

import pytest

from yafdp.backends.aws import bus as aws_bus
from yafdp.backends.aws.bus import AwsBus, NotSettledError


class FakeTime:
    """``time`` as the bus reads it, on a clock that moves only when the bus sleeps."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def perf_counter(self) -> float:
        return self.now


class Functions:
    errors: list = []


def bus_seeing(depths, monkeypatch) -> AwsBus:
    """An AwsBus (no deployment behind it) whose service queues show ``depths``, one reading per check."""
    clock = FakeTime()
    monkeypatch.setattr(aws_bus, "time", clock)
    bus = object.__new__(AwsBus)
    bus.quiet_checks, bus.check_seconds, bus.timeout, bus.functions, bus.settle_orders = 2, 1.0, 5.0, Functions(), False
    bus._moved, bus._readings, bus.undelivered = clock.monotonic(), {}, None
    readings = iter(depths)
    bus.queue_depths = lambda: {"payment": next(readings)}
    return bus


def test_a_run_that_keeps_moving_is_waited_for_however_long_it_takes(monkeypatch):
    bus = bus_seeing([*range(30, 0, -1), 0, 0], monkeypatch)  # one message handled per check: 30 s, 6 × the timeout
    bus.settle()
    assert aws_bus.time.now == 31.0


def test_a_run_where_nothing_moves_is_given_up_after_the_timeout(monkeypatch):
    bus = bus_seeing([3] * 100, monkeypatch)
    with pytest.raises(NotSettledError, match=r"^nothing moved for 5 s: messages are still waiting \(payment: 3\)$"):
        bus.settle()
    assert aws_bus.time.now == 6.0


def test_waiting_again_is_no_progress_in_itself(monkeypatch):
    """Each wait for the queues (the run waits again while orders are not terminal) compares with what the last
    one saw: the same depths, however many waits, is nothing moving."""
    bus = bus_seeing([3] * 100, monkeypatch)
    reasons = []
    for _ in range(10):
        with pytest.raises(NotSettledError) as raised:
            bus.settle(limit=aws_bus.time.now + 1.5)  # each wait ends on a limit of its own
        reasons.append(str(raised.value).split(":")[0])
        if reasons[-1].startswith("nothing moved"):
            break
    assert reasons == ["the time given to the run ran out"] * 3 + ["nothing moved for 5 s"]
    assert aws_bus.time.now == 6.0


def test_empty_queues_with_a_saga_not_terminal_is_given_up_naming_the_stuck_saga(monkeypatch):
    """A rule that matches nothing leaves a saga where it is and the queues empty: once nothing moves, the run says
    which saga is stuck (it crashed on a name the bus no longer had)."""
    from yafdp.catalog import load_catalog

    bus = bus_seeing([0] * 1000, monkeypatch)
    bus.settle_orders, bus.catalog, bus._scheduled, bus.export = True, load_catalog(), [], lambda: None
    bus.now = lambda: 0.0
    bus.saga_statuses = lambda: {"ord-1": "PAID"}
    bus.dead_letter_depths = lambda: {}
    with pytest.raises(NotSettledError, match=r"the queues are empty but the run is not done .*ord-1"):
        bus.run()
