"""A file-store run killed with SIGKILL at any moment loses nothing: `yafdp resume` finishes every placed order."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from yafdp.analysis.check import check_run

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")

RUN = [sys.executable, "-m", "yafdp.cli", "run", "--store", "file", "--orders", "1500", "--seed", "{seed}",
       "--duplicate-rate", "0.2", "--handler-failure-rate", "0.1", "--reorder-rate", "0.3",
       "--payment-failure-rate", "0.1", "--restaurant-reject-rate", "0.2", "--delivery-failure-rate", "0.2",
       "--out", "{out}"]


def kill_at_random_point(command: list[str], out, rng: random.Random) -> bool:
    """Start ``command``, SIGKILL it a random moment after its run.db exists (the run set up, about to place
    its first orders). True if it was killed."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (out / "run.db").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0.3, 0.9))
    killed = process.poll() is None
    if killed:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    return killed


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_killed_run_resumes_without_double_charges_or_lost_refunds(tmp_path, seed):
    rng = random.Random(seed)
    out = tmp_path / "run"
    killed = kill_at_random_point([a.format(seed=seed, out=out) for a in RUN], out, rng)
    assert killed, "the run finished before the kill: give it more orders"
    if rng.random() < 0.5:  # kill the resume too, then resume again
        kill_at_random_point([sys.executable, "-m", "yafdp.cli", "resume", "--out", str(out)], out, rng)
    resumed = subprocess.run([sys.executable, "-m", "yafdp.cli", "resume", "--out", str(out)],
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    failed = [(i.name, i.offenders[:5]) for i in check_run(out) if not i.passed]
    assert failed == []


def test_killed_runs_are_really_killed_mid_way(tmp_path):
    """The kill lands while orders are being processed, not only after the run finished."""
    rng = random.Random(99)
    out = tmp_path / "run"
    command = [a.format(seed=7, out=out) for a in RUN]
    command[command.index("1500")] = "3000"
    assert kill_at_random_point(command, out, rng)
    import sqlite3
    with sqlite3.connect(out / "run.db") as db:
        placed = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        unfinished = db.execute("SELECT COUNT(*) FROM orders WHERE status NOT IN ('DELIVERY_SCHEDULED', 'CANCELLED')").fetchone()[0]
    assert 0 < placed < 3000 and unfinished > 0
    subprocess.run([sys.executable, "-m", "yafdp.cli", "resume", "--out", str(out)], check=True, capture_output=True)
    assert all(i.passed for i in check_run(out))
