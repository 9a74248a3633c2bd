"""One contract for the timing models the local bus runs on: measured wall-clock and simulated AWS time.
Whatever the model, time never runs backwards and nothing is admitted, started or finished before it was asked."""

import random

import pytest

from yafdp.backends.local.timing import MeasuredTiming
from yafdp.plan import build_plan
from yafdp.catalog import load_catalog
from yafdp.runtime.interfaces import TimingModel
from yafdp.simulation.profiles import load_profile
from yafdp.simulation.timing import SimulatedTiming

RULE = build_plan(load_catalog()).rules[0]


class TimingContract:
    def test_it_is_a_timing_model(self, timing):
        assert isinstance(timing, TimingModel) and isinstance(timing.simulated, bool) and timing.name

    def test_recorded_time_never_runs_backwards(self, timing):
        readings = [timing.now(t) for t in (0.0, 0.5, 0.5, 2.0)]
        assert readings == sorted(readings) and readings[0] >= 0

    def test_nothing_happens_before_it_is_asked(self, timing):
        rng = random.Random(1)
        for at in (0.0, 0.0, 0.1, 3.0):
            assert timing.admit(at, 3) >= at
            assert timing.hop_delay(RULE, rng) >= 0
            start, end = timing.reserve("payment", at)
            assert end is not None and at <= start <= end

    def test_it_reports_what_it_did_as_a_dict(self, timing):
        assert isinstance(timing.report(), dict)


class TestMeasuredTiming(TimingContract):
    @pytest.fixture
    def timing(self):
        return MeasuredTiming()

    def test_measured_time_adds_no_virtual_delay(self, timing):
        assert timing.hop_delay(RULE, random.Random(1)) == 0 and timing.reserve("payment", 1.5) == (1.5, 1.5)


class TestSimulatedTiming(TimingContract):
    @pytest.fixture
    def timing(self):
        return SimulatedTiming(load_profile(), seed=1)

    def test_the_first_call_of_a_function_waits_for_a_cold_start(self, timing):
        assert timing.reserve("payment", 0.0)[0] > 0.2 and timing.report()["cold_starts"] == 1
