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
from yafdp.catalog import DEFAULT_DATA_DIR
from yafdp.runs import RunOptions, folder, run_saga

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="POSIX signals")]
YAFDP = [sys.executable, "-m", "yafdp.cli"]


def cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*YAFDP, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def start(*args) -> subprocess.Popen:
    """``yafdp ARGS`` in a child process, with SIGINT's default action as a terminal gives it: a test suite started
    in the background (``make test &``) ignores SIGINT, and a child would inherit that until yafdp installs its
    own handler, so a Ctrl-C sent early would be lost."""
    return subprocess.Popen([*YAFDP, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


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
        == ["catalog.json", "run.db", "summary.json"]


def assert_check_says_in_progress(out: Path, process: subprocess.Popen) -> None:
    checked = cli("check", out)
    line = one_line(checked.stderr)
    assert checked.returncode == 2 and checked.stdout == ""
    assert line.startswith(f"yafdp: run in progress (pid {process.pid}: yafdp run, since ") and str(out) in line


def test_one_writer_per_folder_the_second_is_told_which_process_holds_it_and_check_waits_too(tmp_path):
    """And the review's case: `yafdp check` on a run another process was writing printed 6 FAILs."""
    out = tmp_path / "busy"
    first = start("run", "--store", "file", "--orders", 50_000, "--out", out)
    try:
        wait_for_orders(out, process=first)
        for second in (cli("run", "--orders", 5, "--out", out, "--force"), cli("resume", "--out", out)):
            line = one_line(second.stderr)
            assert second.returncode == 2 and "in use by process" in line and str(first.pid) in line
        assert_check_says_in_progress(out, first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()


def test_check_says_a_stopped_run_is_unfinished_and_how_to_finish_it(tmp_path):
    """The review's case: a file-store run SIGKILLed partway got several invariant FAILs and exit 1."""
    out = tmp_path / "killed"
    running = start("run", "--store", "file", "--orders", 5000, "--out", out)
    wait_for_orders(out, 100, process=running)
    running.send_signal(signal.SIGKILL)
    running.wait()
    checked = cli("check", out)
    line = one_line(checked.stderr)
    assert checked.returncode == 2 and checked.stdout == ""
    assert "unfinished run (status 'running'" in line and f"`yafdp resume --out {out}` finishes it" in line
    assert cli("check", out / "run.db").returncode == 2  # the same, named by its run.db
    assert cli("resume", "--out", out).returncode == 0
    assert cli("check", out).returncode == 0


def killed_while_storing_its_workload(out: Path, *args) -> list[str]:
    """SIGKILL a file-store run while it writes its run.db beside the old one (in a transaction: SQLite's journal
    beside it); the temporaries it leaves."""
    before = {p.name for p in out.glob(".run.db.*")}
    running = start("run", "--store", "file", "--orders", 100_000, "--out", out, *args)

    def journal_until(deadline: float) -> None:
        while time.monotonic() < deadline and running.poll() is None and \
                not [p for p in out.glob(".run.db.*.tmp-journal") if p.name not in before]:
            time.sleep(0.002)

    journal_until(time.monotonic() + 60)
    time.sleep(0.2)  # past the schema's statements, into the transaction that stores 100,000 requests
    journal_until(time.monotonic() + 10)
    running.send_signal(signal.SIGKILL)
    running.wait()
    left = sorted(p.name for p in out.glob(".run.db.*") if p.name not in before)
    assert left and all(folder.STALE_TEMPORARY.fullmatch(name) for name in left), left
    return left


def test_the_temporaries_of_a_writer_killed_early_are_removed_by_the_next_run_or_resume_and_nothing_else(tmp_path):
    """The review's case: SIGKILL early in a file-store run left .run.db.XXXX.tmp and its -journal forever."""
    out = tmp_path / "run"
    first = killed_while_storing_its_workload(out)
    left = killed_while_storing_its_workload(out)
    assert len(first) == len(left) == 2  # each: the database being written and its journal
    assert sorted(p.name for p in out.glob(".run.db.*")) == left  # the second writer removed the first one's
    others = [".run.db.short.tmp", ".run.db.abcdefgh.tmp.bak", "run.db.abcdefgh.tmp", ".notes.abcdefgh.tmp", "mine.tmp"]
    for name in others:  # not of temporary_beside's making: left alone
        (out / name).write_text("mine")
    (out / "sub").mkdir()
    (out / "sub" / left[0]).write_text("in a subfolder: not the run folder's")
    assert cli("run", "--orders", 5, "--store", "file", "--out", out).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([".yafdp.lock", "catalog.json", "run.db", "summary.json", "sub", *others])

    before = fingerprint(out)  # a finished run; a --force run killed early leaves its temporaries beside it
    killed_while_storing_its_workload(out, "--force")
    assert fingerprint(out) == before
    resumed = cli("resume", "--out", out)
    assert resumed.returncode == 0 and fingerprint(out) == before
    assert sorted(p.name for p in out.iterdir()) == sorted([".yafdp.lock", "catalog.json", "run.db", "summary.json", "sub", *others])


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
        first_session = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
    assert cli("resume", "--out", out).returncode == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sessions"] == 2 and summary["wall_seconds"] > before > 0
    assert summary["deliveries_per_second"] == pytest.approx(summary["deliveries"]["total"] / summary["wall_seconds"], rel=0.01)
    with sqlite3.connect(out / "run.db") as db:
        every = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
    # every delivery of the run, not only the resumed ones (the killed session had committed some)
    assert summary["deliveries"]["total"] == every and first_session > 0
    assert summary["deliveries"]["total"] > 50_000

    finished = fingerprint(out)
    again = cli("resume", "--out", out)
    assert again.returncode == 0 and "finished already" in again.stderr
    assert fingerprint(out) == finished


def everything_in(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_resuming_a_finished_run_says_only_that_and_leaves_the_folder_byte_for_byte(tmp_path):
    """The review's case: it said "nothing changed", then "wrote X/run.db and X/summary.json", and left
    run.db-shm and run.db-wal behind."""
    out = tmp_path / "run"
    assert cli("run", "--orders", 40, "--store", "file", "--out", out).returncode == 0
    before = everything_in(out)
    assert sorted(before) == [".yafdp.lock", "catalog.json", "run.db", "summary.json"]
    assert cli("check", out).returncode == 0  # a reader's read-only connection left empty -wal and -shm files
    assert everything_in(out) == before
    resumed = cli("resume", "--out", out)
    assert resumed.returncode == 0 and "wrote" not in resumed.stdout and "40 of 40 requested orders" in resumed.stdout
    assert one_line(resumed.stderr) == f"the run in {out} had finished already: nothing to resume, nothing changed"
    assert everything_in(out) == before

    (out / "summary.json").unlink()  # stopped between its two files: the summary is in run.db
    resumed = cli("resume", "--out", out, "--json")
    assert resumed.returncode == 0 and json.loads(resumed.stdout)["orders"]["placed"] == 40
    assert one_line(resumed.stderr) == (f"the run in {out} had finished already: nothing to resume, only its "
                                        f"missing {out / 'summary.json'} written again from run.db")
    assert everything_in(out) == before


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


def test_check_says_a_memory_store_run_in_progress_is_in_progress(tmp_path):
    """The new-user review's case: a memory-store run has no run.db until it ends, and `yafdp check` on its folder
    said "no run database … (run `yafdp run --out DIR` first)" instead of naming the run in progress."""
    out = tmp_path / "busy"
    first = start("run", "--orders", 200_000, "--out", out)
    try:
        wait_for_holder(out, first)
        assert not (out / "run.db").exists()
        assert_check_says_in_progress(out, first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()


@pytest.mark.parametrize("store", ["memory", "file"])
def test_the_run_files_get_the_mode_any_new_file_gets(tmp_path, store):
    """The new-user review's case: summary.json was always 0600 (mkstemp's mode), run.db 0644 or 0600 by store."""
    out = tmp_path / "run"
    done = subprocess.run([*YAFDP, "run", "--orders", "3", "--store", store, "--out", str(out)], capture_output=True,
                          text=True, preexec_fn=lambda: os.umask(0o027))
    assert done.returncode == 0, done.stderr
    assert {name: (out / name).stat().st_mode & 0o777 for name in ("run.db", "summary.json")} == \
        {"run.db": 0o640, "summary.json": 0o640}


def test_a_resume_runs_the_catalog_the_run_started_with_or_refuses_naming_what_changed_and_writes_nothing(
        tmp_path, catalog_copy):
    """Issue 27's case: Loyalty removed from the catalog folder between the kill and the resume; the resume used to
    finish the run without it (16,734 delivered orders got no points, exit 0) and bumped run_info's session."""
    out = tmp_path / "run"
    running = start("run", "--store", "file", "--orders", 5000, "--seed", 4, "--catalog", catalog_copy.root,
                    "--out", out)
    wait_for_orders(out, 50, process=running)
    running.send_signal(signal.SIGINT)
    running.communicate(timeout=60)
    assert running.returncode == 130
    (catalog_copy.root / "services" / "loyalty.json").unlink()
    kept = lambda: {n: b for n, b in everything_in(out).items() if not n.endswith("-shm")}  # noqa: E731 - SQLite's read index
    before = kept()
    refused = cli("resume", "--out", out)
    line = one_line(refused.stderr)
    assert refused.returncode == 2 and f"cannot resume {out}" in line and "services/loyalty.json removed" in line
    assert kept() == before  # nothing written: not even run_info's session or status
    shipped = DEFAULT_DATA_DIR / "services" / "loyalty.json"
    (catalog_copy.root / "services" / "loyalty.json").write_text(json.dumps(json.loads(shipped.read_text())))
    still = cli("resume", "--out", out)  # the same service, written otherwise: not the bytes the run recorded
    assert still.returncode == 2 and "services/loyalty.json changed" in one_line(still.stderr)
    shutil.copy(shipped, catalog_copy.root / "services" / "loyalty.json")
    resumed = cli("resume", "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert all(i.passed for i in check_run(out))
