"""A file-store run killed with SIGKILL at any moment loses nothing: `yafdp resume` finishes every placed order.

The moment is a commit of the run chosen at random (seeded): the run announces it and waits there to be killed
(the ``paused_yafdp`` fixture), so the kill lands mid-run whatever the machine's speed."""

import os
import random
import sqlite3
import subprocess
import sys

import pytest

from yafdp.analysis.check import check_run

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")

RUN = ["run", "--store", "file", "--orders", "1500", "--seed", "{seed}", "--duplicate-rate", "0.2",
       "--handler-failure-rate", "0.1", "--reorder-rate", "0.3", "--payment-failure-rate", "0.1",
       "--restaurant-reject-rate", "0.2", "--delivery-failure-rate", "0.2", "--out", "{out}"]
# Called at each commit of a run under way: every 200 deliveries of the file store (a 1,500-order run with these
# faults makes over 100 of them).
TICK = "yafdp.runs.lifecycle._keeping_time.<locals>.tick"


def kill_at_a_commit(paused_yafdp, args: list[str], commit: int) -> None:
    """Start ``yafdp ARGS`` and SIGKILL it as it reaches its ``commit``-th commit."""
    running = paused_yafdp(args, event="call", match=TICK, nth=commit)
    running.reached()
    running.kill()


def resume(out) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yafdp", "resume", "--out", str(out)], capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_killed_run_resumes_without_double_charges_or_lost_refunds(tmp_path, seed, paused_yafdp):
    rng = random.Random(seed)
    out = tmp_path / "run"
    kill_at_a_commit(paused_yafdp, [a.format(seed=seed, out=out) for a in RUN], rng.randint(1, 50))
    if rng.random() < 0.5:  # kill the resume too, then resume again
        kill_at_a_commit(paused_yafdp, ["resume", "--out", out], rng.randint(1, 10))
    resumed = resume(out)
    assert resumed.returncode == 0, resumed.stderr
    failed = [(i.name, i.offenders[:5]) for i in check_run(out) if not i.passed]
    assert failed == []


def test_killed_runs_are_really_killed_mid_way(tmp_path, paused_yafdp):
    """The kill lands while orders are being processed, not only after the run finished."""
    out = tmp_path / "run"
    kill_at_a_commit(paused_yafdp, [a.format(seed=7, out=out) for a in RUN], 30)
    with sqlite3.connect(out / "run.db") as db:
        placed = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        unfinished = db.execute("SELECT COUNT(*) FROM orders WHERE status NOT IN ('DELIVERY_SCHEDULED', 'CANCELLED')").fetchone()[0]
    assert 0 < placed < 1500 and unfinished > 0
    assert resume(out).returncode == 0
    assert all(i.passed for i in check_run(out))
