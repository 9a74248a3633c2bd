"""A run never loses what the user had: an --out that holds a run is refused unless --force, one writer per
folder, files replaced whole, SIGINT/SIGTERM stop cleanly, and resume finishes the whole run (or, on a
finished one, changes nothing). Driven through the real command line."""

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from yafdp.analysis.check import check_run
from yafdp.runs import RunOptions, folder, run_saga

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="POSIX signals")]
YAFDP = [sys.executable, "-m", "yafdp.cli"]


def cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*YAFDP, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([*YAFDP, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)


def fingerprint(out: Path) -> dict[str, str]:
    return {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in ("run.db", "summary.json")}


def wait_for_holder(out: Path, process: subprocess.Popen) -> None:
    """Until ``process`` holds the run folder's lock (it has parsed its options and started the run)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it was interrupted"
        lock = out / ".yafdp.lock"
        if lock.exists() and f"process {process.pid} " in lock.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError("the run did not take its folder in time")


def wait_for_orders(out: Path, at_least: int = 1, process: subprocess.Popen | None = None) -> None:
    """Until run.db holds ``at_least`` placed orders (the run is under way)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process is None or process.poll() is None, "the run ended before it was interrupted"
        try:
            with sqlite3.connect(f"file:{out / 'run.db'}?mode=ro", uri=True, timeout=1) as db:
                if db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] >= at_least:
                    return
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    raise AssertionError("the run placed no order in time")


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished 300-order run, made once: each test that overwrites or interrupts one gets a copy of it."""
    out = tmp_path_factory.mktemp("finished") / "prev"
    assert cli("run", "--orders", 300, "--seed", 1, "--out", out).returncode == 0
    return out


@pytest.fixture
def earlier(finished_run, tmp_path) -> Path:
    out = tmp_path / "prev"
    shutil.copytree(finished_run, out)
    return out


def test_an_out_that_holds_a_run_is_refused_unless_force(earlier):
    before = fingerprint(earlier)
    refused = cli("run", "--orders", 5, "--out", earlier)
    assert refused.returncode == 2 and "already holds a run" in one_line(refused.stderr)
    assert fingerprint(earlier) == before
    replaced = cli("run", "--orders", 5, "--seed", 9, "--out", earlier, "--force", "--json")
    assert replaced.returncode == 0
    assert json.loads((earlier / "summary.json").read_text())["orders"]["placed"] == 5
    assert all(i.passed for i in check_run(earlier))


def test_a_broken_catalog_with_force_leaves_the_earlier_run_as_it_was(earlier, catalog_copy):
    """The issue's case: `--store file --catalog <broken> --out prev` emptied a 300-order run.db."""
    (catalog_copy.root / "services" / "payment.json").write_text("{")
    before = fingerprint(earlier)
    result = cli("run", "--store", "file", "--catalog", catalog_copy.root, "--out", earlier, "--force")
    assert result.returncode == 2 and "payment.json" in one_line(result.stderr)
    assert fingerprint(earlier) == before and sorted(p.name for p in earlier.iterdir() if not p.name.startswith(".")) \
        == ["run.db", "summary.json"]


def test_one_writer_per_folder_the_second_is_told_which_process_holds_it(tmp_path):
    out = tmp_path / "busy"
    first = start("run", "--store", "file", "--orders", 50_000, "--out", out)
    try:
        wait_for_orders(out, process=first)
        for second in (cli("run", "--orders", 5, "--out", out, "--force"), cli("resume", "--out", out)):
            line = one_line(second.stderr)
            assert second.returncode == 2 and "in use by process" in line and str(first.pid) in line
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_file_store_run_cleanly_and_resume_finishes_it(tmp_path, stop):
    out = tmp_path / "run"
    running = start("run", "--store", "file", "--orders", 5000, "--seed", 4, "--out", out)
    wait_for_orders(out, 50, process=running)
    running.send_signal(stop)
    _, stderr = running.communicate(timeout=60)
    line = one_line(stderr)
    assert running.returncode == 130 and "keeps what was committed" in line and f"yafdp resume --out {out}" in line
    resumed = cli("resume", "--out", out, "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["orders"]["placed"] == 5000 and summary["orders"]["not_sent"] == 0 and summary["sessions"] == 2
    assert all(i.passed for i in check_run(out))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_memory_store_run_and_the_earlier_run_stays(earlier, stop):
    before = fingerprint(earlier)
    running = start("run", "--orders", 50_000, "--out", earlier, "--force")
    wait_for_holder(earlier, running)
    time.sleep(1)  # into the run: the memory store writes nothing until the end
    running.send_signal(stop)
    _, stderr = running.communicate(timeout=60)
    line = one_line(stderr)
    assert running.returncode == 130 and f"{earlier} holds what it held before" in line
    assert fingerprint(earlier) == before


def test_resume_places_the_orders_not_placed_yet(tmp_path):
    """The issue's case: a 5,000-order file-store run killed after its first commit resumed to 0 placed orders."""
    out = tmp_path / "run"
    running = start("run", "--store", "file", "--orders", 5000, "--seed", 8, "--out", out)
    wait_for_orders(out, process=running)
    running.send_signal(signal.SIGKILL)
    running.wait()
    with sqlite3.connect(out / "run.db") as db:
        assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] < 5000
    resumed = cli("resume", "--out", out, "--json")
    assert resumed.returncode == 0, resumed.stderr
    orders = json.loads(resumed.stdout)["orders"]
    assert orders["requested"] == orders["placed"] + orders["refused"] == 5000
    assert all(i.passed for i in check_run(out))


def test_after_a_resume_the_summary_describes_the_whole_run_and_a_finished_run_is_left_alone(tmp_path):
    out = tmp_path / "run"
    running = start("run", "--store", "file", "--orders", 5000, "--seed", 2, "--out", out)
    wait_for_orders(out, 1000, process=running)
    time.sleep(0.5)
    running.send_signal(signal.SIGKILL)
    running.wait()
    with sqlite3.connect(out / "run.db") as db:
        before = json.loads(db.execute("SELECT value FROM run_info WHERE key = 'wall_seconds'").fetchone()[0])
    assert cli("resume", "--out", out).returncode == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sessions"] == 2 and summary["wall_seconds"] > before > 0
    assert summary["deliveries_per_second"] == pytest.approx(summary["deliveries"]["total"] / summary["wall_seconds"], rel=0.01)
    assert summary["deliveries"]["total"] > 50_000  # every delivery of the run, not only the resumed ones

    finished = fingerprint(out)
    again = cli("resume", "--out", out)
    assert again.returncode == 0 and "finished already" in again.stderr
    assert fingerprint(out) == finished


@pytest.mark.parametrize("step", range(4))
def test_an_export_stopped_at_any_step_leaves_the_old_run_or_the_new_one(tmp_path, step, monkeypatch):
    """finish() removes the old summary, renames the new run.db, writes the new summary: stop it after each."""
    out = tmp_path / "run"
    run_saga(RunOptions(orders=30, seed=1, out=out))
    old = fingerprint(out)
    calls = []

    def counted(function):
        def wrapper(*args, **kwargs):
            if len(calls) == step:
                raise KeyboardInterrupt
            calls.append(function.__name__)
            return function(*args, **kwargs)
        return wrapper

    for name in ("remove", "replace_atomically", "write_atomically"):
        monkeypatch.setattr(folder, name, counted(getattr(folder, name)))
    try:
        run_saga(RunOptions(orders=40, seed=2, out=out))
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    leftovers = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    assert (out / "run.db").stat().st_size > 0
    with sqlite3.connect(out / "run.db") as db:
        recorded = json.loads(db.execute("SELECT value FROM run_info WHERE key = 'summary'").fetchone()[0])
    if (out / "summary.json").exists():  # never a summary of another run than run.db's
        assert json.loads((out / "summary.json").read_text()) == recorded
    assert recorded["orders"]["placed"] in (30, 40)
    if recorded["orders"]["placed"] == 30:  # the old run, as it was
        assert hashlib.sha256((out / "run.db").read_bytes()).hexdigest() == old["run.db"]
    assert all(i.passed for i in check_run(out))


def test_a_run_killed_at_random_moments_never_leaves_an_empty_run_db_or_a_stale_summary(tmp_path):
    out = tmp_path / "run"
    assert cli("run", "--orders", 50, "--out", out).returncode == 0
    for delay in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
        running = start("run", "--orders", 3000, "--seed", int(delay * 10), "--out", out, "--force")
        time.sleep(delay)
        running.send_signal(signal.SIGKILL)
        running.wait()
        assert (out / "run.db").stat().st_size > 0
        with sqlite3.connect(out / "run.db") as db:
            recorded = json.loads(db.execute("SELECT value FROM run_info WHERE key = 'summary'").fetchone()[0])
        if (out / "summary.json").exists():
            assert json.loads((out / "summary.json").read_text()) == recorded
