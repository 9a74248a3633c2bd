"""A run never loses what the user had: an --out that holds a run is refused unless --force, one writer per
folder, files replaced whole, SIGINT/SIGTERM stop cleanly, and resume finishes the whole run (or, on a
finished one, changes nothing). Driven through the real command line; a run is stopped, signalled or killed at a
point it announces (the ``paused_yafdp`` fixture), never after a sleep."""

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from yafdp.analysis.check import check_run
from yafdp.catalog import DEFAULT_DATA_DIR
from yafdp.runs import RunOptions, folder, resume_saga, run_saga

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="POSIX signals")]
YAFDP = [sys.executable, "-m", "yafdp"]
# Called at each commit of a run under way (every 200 deliveries of the file store, every 5,000 of the memory store).
TICK = "yafdp.runs.lifecycle._keeping_time.<locals>.tick"


def cli(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*YAFDP, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def fingerprint(out: Path) -> dict[str, str]:
    return {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in ("run.db", "summary.json")}


def placed(out: Path) -> int:
    with sqlite3.connect(f"file:{out / 'run.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]


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


def assert_check_says_in_progress(out: Path, process) -> None:
    checked = cli("check", out)
    line = one_line(checked.stderr)
    assert checked.returncode == 2 and checked.stdout == ""
    assert line.startswith(f"yafdp: run in progress (pid {process.pid}: yafdp run, since ") and str(out) in line


def test_one_writer_per_folder_the_second_is_told_which_process_holds_it_and_check_waits_too(tmp_path, paused_yafdp,
                                                                                              finished_run):
    """And the review's case: `yafdp check` on a run another process was writing printed 6 FAILs; and
    `yafdp fit-profile … --out DIR/run.db` of a run in progress corrupted it ("database disk image is malformed")."""
    out = tmp_path / "busy"
    first = paused_yafdp(["run", "--store", "file", "--orders", 2000, "--out", out], event="call", match=TICK)
    first.reached()  # its first commit: orders placed, the run under way, the folder held
    assert placed(out) > 0
    for second in (cli("run", "--orders", 5, "--out", out, "--force"), cli("resume", "--out", out),
                   cli("fit-profile", finished_run, "--out", out / "profile.json")):
        line = one_line(second.stderr)
        assert second.returncode == 2 and "in use by process" in line and str(first.pid) in line
    assert not (out / "profile.json").exists()
    for own in ("run.db", "summary.json", ".yafdp.lock"):
        refused = cli("fit-profile", finished_run, "--out", out / own, "--force")
        assert refused.returncode == 2 and "is a run folder's own file" in one_line(refused.stderr)
    assert_check_says_in_progress(out, first)
    first.kill()


def test_fit_profile_replaces_no_file_unless_force_and_never_a_run_file(earlier, tmp_path):
    """The issue's case: `yafdp fit-profile DIR --out DIR/run.db` replaced the run with a JSON profile."""
    from yafdp.simulation.profiles import load_profile

    before = fingerprint(earlier)
    sqlite_files = ("run.db-wal", "run.db-journal", "run.db-shm")  # the run's data too, while it is open or after a crash
    for own in ("run.db", "summary.json", "catalog.json", ".run.db.abcd1234.tmp", *sqlite_files):
        for force in ((), ("--force",)):
            refused = cli("fit-profile", earlier, "--out", earlier / own, *force)
            assert refused.returncode == 2 and "is a run folder's own file" in one_line(refused.stderr)
    assert fingerprint(earlier) == before
    assert not any((earlier / name).exists() for name in (".run.db.abcd1234.tmp", *sqlite_files))
    notes = tmp_path / "notes.json"
    notes.write_text("mine\n")
    refused = cli("fit-profile", earlier, "--out", notes)
    assert refused.returncode == 2 and f"--out {notes} exists: pass --force" in one_line(refused.stderr)
    assert notes.read_text() == "mine\n"
    assert cli("fit-profile", earlier, "--out", notes, "--force").returncode == 0
    assert load_profile(notes).name == "notes"
    written = cli("fit-profile", earlier, "--out", earlier / "fitted.json")  # into the run folder, holding its lock
    assert written.returncode == 0, written.stderr
    assert load_profile(earlier / "fitted.json").name == "fitted" and fingerprint(earlier) == before
    assert sorted(p.name for p in earlier.iterdir()) == [".yafdp.lock", "catalog.json", "fitted.json", "run.db", "summary.json"]


def test_check_says_a_stopped_run_is_unfinished_and_how_to_finish_it(tmp_path, paused_yafdp):
    """The review's case: a file-store run SIGKILLed partway got several invariant FAILs and exit 1."""
    out = tmp_path / "killed"
    running = paused_yafdp(["run", "--store", "file", "--orders", 500, "--out", out], event="call", match=TICK, nth=3)
    running.reached()  # about 50 orders placed: each commit is 200 deliveries, about 16 orders'
    running.kill()
    assert 0 < placed(out) < 500
    checked = cli("check", out)
    line = one_line(checked.stderr)
    assert checked.returncode == 2 and checked.stdout == ""
    assert "unfinished run (status 'running'" in line and f"`yafdp resume --out {out}` finishes it" in line
    assert cli("check", out / "run.db").returncode == 2  # the same, named by its run.db
    assert cli("resume", "--out", out).returncode == 0
    assert cli("check", out).returncode == 0


def killed_while_storing_its_workload(out: Path, paused_yafdp, *args) -> list[str]:
    """SIGKILL a file-store run while it writes its run.db beside the old one (in a transaction: SQLite's journal
    beside it), at its 1,000th of 5,000 requests; the temporaries it leaves."""
    before = {p.name for p in out.glob(".run.db.*")}
    running = paused_yafdp(["run", "--store", "file", "--orders", 5000, "--out", out, *args], event="call",
                           match="yafdp.runs.lifecycle._store_start.<locals>.<genexpr>", nth=1000)
    running.reached()
    running.kill()
    left = sorted(p.name for p in out.glob(".run.db.*") if p.name not in before)
    assert left and all(folder.STALE_TEMPORARY.fullmatch(name) for name in left), left
    return left


def test_the_temporaries_of_a_writer_killed_early_are_removed_by_the_next_run_or_resume_and_nothing_else(
        tmp_path, paused_yafdp):
    """The review's case: SIGKILL early in a file-store run left .run.db.XXXX.tmp and its -journal forever."""
    out = tmp_path / "run"
    first = killed_while_storing_its_workload(out, paused_yafdp)
    left = killed_while_storing_its_workload(out, paused_yafdp)
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
    killed_while_storing_its_workload(out, paused_yafdp, "--force")
    assert fingerprint(out) == before
    resumed = cli("resume", "--out", out)
    assert resumed.returncode == 0 and fingerprint(out) == before
    assert sorted(p.name for p in out.iterdir()) == sorted([".yafdp.lock", "catalog.json", "run.db", "summary.json", "sub", *others])


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_file_store_run_cleanly_and_resume_finishes_it(tmp_path, stop, paused_yafdp):
    out = tmp_path / "run"
    running = paused_yafdp(["run", "--store", "file", "--orders", 500, "--seed", 4, "--out", out], event="call",
                           match=TICK, nth=2)
    running.reached()  # about 30 of the 500 orders placed
    committed = placed(out)
    running.signal(stop)
    stopped = running.finish()
    line = one_line(stopped.stderr)
    assert stopped.returncode == 130 and "keeps what was committed" in line and f"yafdp resume --out {out}" in line
    assert f"({committed} orders placed" in line
    resumed = cli("resume", "--out", out, "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["orders"]["placed"] == 500 and summary["orders"]["not_sent"] == 0 and summary["sessions"] == 2
    assert all(i.passed for i in check_run(out))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_memory_store_run_and_the_earlier_run_stays(earlier, stop, paused_yafdp):
    before = fingerprint(earlier)
    running = paused_yafdp(["run", "--orders", 3000, "--out", earlier, "--force"], event="call", match=TICK)
    running.reached()  # into the run (its first 5,000 deliveries): the memory store writes nothing until the end
    running.signal(stop)
    stopped = running.finish()
    assert stopped.returncode == 130 and one_line(stopped.stderr) == (
        f"yafdp: interrupted: nothing of this run was kept (the memory store writes run.db at the end); {earlier} "
        f"holds what it held before")
    assert fingerprint(earlier) == before


def test_resume_places_the_orders_not_placed_yet(tmp_path, paused_yafdp):
    """The issue's case: a 5,000-order file-store run killed after its first commit resumed to 0 placed orders (here
    1,000 orders: killed as that one was, about 30 of them placed)."""
    out = tmp_path / "run"
    running = paused_yafdp(["run", "--store", "file", "--orders", 1000, "--seed", 8, "--out", out], event="call",
                           match=TICK, nth=2)
    running.reached()  # its first commit is behind it
    running.kill()
    assert 0 < placed(out) < 1000
    resumed = cli("resume", "--out", out, "--json")
    assert resumed.returncode == 0, resumed.stderr
    orders = json.loads(resumed.stdout)["orders"]
    assert orders["requested"] == orders["placed"] + orders["refused"] == 1000
    assert all(i.passed for i in check_run(out))


def test_after_a_resume_the_summary_describes_the_whole_run_and_a_finished_run_is_left_alone(tmp_path, paused_yafdp):
    out = tmp_path / "run"
    running = paused_yafdp(["run", "--store", "file", "--orders", 1000, "--seed", 2, "--out", out], event="call",
                           match=TICK, nth=20)
    running.reached()  # 4,000 deliveries committed (a third of the run's), with the wall time of the run so far
    running.kill()
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
    assert summary["deliveries"]["total"] > 10_000  # the whole 1,000-order run's (10,886), not a session's

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
    checked = cli("check", out)  # a finished run without its summary is named, with the way to write it again
    assert checked.returncode == 1 and (f"(summary.json) missing: `yafdp resume "
                                        f"--out {out}` writes it again from run.db") in checked.stdout
    resumed = cli("resume", "--out", out, "--json")
    assert resumed.returncode == 0 and json.loads(resumed.stdout)["orders"]["placed"] == 40
    assert one_line(resumed.stderr) == (f"the run in {out} had finished already: nothing to resume, only its files "
                                        f"repaired ({out / 'summary.json'}: missing: written again from run.db)")
    assert everything_in(out) == before


@pytest.mark.parametrize("damage", [
    ("summary.json", "{not json", "not JSON (Expecting property name enclosed in double quotes: "
                                  "line 1 column 2 (char 1)): written again from run.db"),
    ("summary.json", "[1, 2]", "not a JSON object: written again from run.db"),
    ("catalog.json", "{oops", "cannot be read (Expecting property name enclosed in double quotes: line 1 column 2 "
                              "(char 1)); written again from the catalog folder, proven the run's"),
    ("catalog.json", "{}", "not a copy of a catalog; written again from the catalog folder, proven the run's"),
], ids=["summary-not-json", "summary-not-object", "catalog-not-json", "catalog-not-a-copy"])
def test_resume_repairs_a_damaged_summary_or_catalog_copy_of_a_finished_run_and_says_so(earlier, damage):
    """The review's case: `check` failed on a corrupt summary.json or catalog.json, and `resume` said "nothing
    changed" and rewrote nothing, so nothing could mend the run."""
    name, text, said = damage
    before = everything_in(earlier)
    (earlier / name).write_text(text)
    checked = cli("check", earlier)
    assert checked.returncode == 1 and f"`yafdp resume --out {earlier}` writes it again" in checked.stdout
    resumed = cli("resume", "--out", earlier)
    assert resumed.returncode == 0 and one_line(resumed.stderr) == (
        f"the run in {earlier} had finished already: nothing to resume, only its files repaired "
        f"({earlier / name}: {said})")
    assert everything_in(earlier) == before  # the same bytes as the run wrote
    assert cli("check", earlier).returncode == 0


def test_a_summary_json_that_is_a_folder_is_named_so_and_the_advice_works(earlier):
    """The new-user review's case: `check` said `yafdp resume` writes it again, and resume refused to write over a
    folder."""
    before = everything_in(earlier)
    (earlier / "summary.json").unlink()
    (earlier / "summary.json").mkdir()
    checked = cli("check", earlier)
    assert checked.returncode == 1 and (f"(summary.json) a folder, not a file: remove it, then `yafdp resume --out "
                                        f"{earlier}` writes it again from run.db") in checked.stdout
    resumed = cli("resume", "--out", earlier)
    assert resumed.returncode == 2 and f"{earlier / 'summary.json'} is a folder" in one_line(resumed.stderr)
    (earlier / "summary.json").rmdir()  # as advised
    assert cli("resume", "--out", earlier).returncode == 0
    assert everything_in(earlier) == before


def test_resume_does_not_write_a_catalog_copy_it_cannot_prove_and_says_why(tmp_path, catalog_copy):
    """A damaged catalog.json is written again only from a catalog folder proven the run's: one changed since
    is not taken for it (exit 1, the copy left as it is)."""
    out = tmp_path / "run"
    assert cli("run", "--orders", 5, "--catalog", catalog_copy.root, "--out", out).returncode == 0
    (out / "catalog.json").write_text("{oops")
    bus = catalog_copy.root / "bus.json"
    bus.write_text(bus.read_text() + "\n")
    resumed = cli("resume", "--out", out)
    line = one_line(resumed.stderr)
    assert resumed.returncode == 1 and "it cannot be written again: the catalog folder cannot be proven the run's" in line
    assert (out / "catalog.json").read_text() == "{oops"


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
    # Stopped before the copy of the catalog or the summary: a finished run's audit names each, resume repairs.
    missing = {name: said for name, said in (("the run's catalog", "missing from a finished run"),
                                             ("the workload is whole", "(summary.json) missing: `yafdp resume"))
               if not (out / ("catalog.json" if name == "the run's catalog" else "summary.json")).exists()}
    if missing:
        failed = {i.name: i for i in check_run(out) if not i.passed}
        assert set(failed) == set(missing)
        assert all(said in failed[name].offenders[0] for name, said in missing.items())
        assert resume_saga(out)["already_finished"]
    assert all(i.passed for i in check_run(out))


def test_a_run_killed_at_any_step_on_its_folder_never_leaves_an_empty_run_db_or_a_stale_summary(
        tmp_path, finished_run, paused_yafdp):
    """A run over an earlier one (``--force``) SIGKILLed at each step that changes its folder, from the first to
    the last (the database made beside, the old files removed, the database renamed into place, the summary
    made beside and renamed): what is left is a whole run.db, and a summary.json, if any, that is run.db's own."""
    def run(out):
        return ["run", "--orders", 30, "--seed", 5, "--out", out, "--force"]

    survey = tmp_path / "survey"
    shutil.copytree(finished_run, survey)
    steps = [point for point in paused_yafdp.survey(run(survey)) if str(survey) in point]
    first = next(n for n, point in enumerate(steps) if point.startswith("tempfile.mkstemp "))
    last = max(n for n, point in enumerate(steps) if point.startswith("os.rename "))
    changes = ("tempfile.mkstemp", "os.remove", "os.rename", "sqlite3.connect")
    # each step as (its kind, how many steps of that kind on the folder came before it, and it): what a child
    # stops at, whatever else it does first (it may find the modules compiled, or compile them)
    chosen = [(kind, sum(p.startswith(kind + " ") for p in steps[:n + 1]))
              for n, kind in ((n, steps[n].split(" ", 1)[0]) for n in range(first, last + 1)) if kind in changes]
    assert len(chosen) >= 10
    for kind, nth in chosen:
        out = tmp_path / f"killed-{kind}-{nth}"
        shutil.copytree(finished_run, out)
        running = paused_yafdp(run(out), event=kind, match=str(out), nth=nth)
        point = running.reached()
        running.kill()
        assert (out / "run.db").stat().st_size > 0, point
        with sqlite3.connect(out / "run.db") as db:
            recorded = json.loads(db.execute("SELECT value FROM run_info WHERE key = 'summary'").fetchone()[0])
        if (out / "summary.json").exists():
            assert json.loads((out / "summary.json").read_text()) == recorded, point


def test_check_says_a_memory_store_run_in_progress_is_in_progress(tmp_path, paused_yafdp):
    """The new-user review's case: a memory-store run has no run.db until it ends, and `yafdp check` on its folder
    said "no run database … (run `yafdp run --out DIR` first)" instead of naming the run in progress."""
    out = tmp_path / "busy"
    first = paused_yafdp(["run", "--orders", 3000, "--out", out], event="call", match=TICK)
    first.reached()  # into the run
    assert not (out / "run.db").exists()
    assert_check_says_in_progress(out, first)
    first.kill()


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
        tmp_path, catalog_copy, paused_yafdp):
    """Issue 27's case: Loyalty removed from the catalog folder between the kill and the resume; the resume used to
    finish the run without it (16,734 delivered orders got no points, exit 0) and bumped run_info's session."""
    out = tmp_path / "run"
    running = paused_yafdp(["run", "--store", "file", "--orders", 500, "--seed", 4, "--catalog", catalog_copy.root,
                            "--out", out], event="call", match=TICK, nth=3)
    running.reached()
    running.kill()
    assert 0 < placed(out) < 500
    (catalog_copy.root / "services" / "loyalty.json").unlink()
    # the run's files: not SQLite's read index, nor the folder's lock (the resume takes it, then refuses: the killed
    # run's holder record is replaced by none)
    kept = lambda: {n: b for n, b in everything_in(out).items()  # noqa: E731
                    if not n.endswith("-shm") and n != ".yafdp.lock"}
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


def flat(summary: dict, under: str = "") -> dict:
    """The summary's numbers, by dotted name."""
    numbers = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            numbers.update(flat(value, f"{under}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers[f"{under}{key}"] = value
    return numbers


def test_a_run_killed_twice_and_resumed_counts_as_the_same_run_uninterrupted(tmp_path, paused_yafdp):
    """The review's case: after a kill and two resumes, state_writes, state_reads and the schedules counted the
    last session only, and rates were recorded as the options gave them (none) in one and as run_info holds them
    (the catalog's defaults) in the other. Each session's counts are committed with its data, so a session's
    work rolled back by the kill and redone is counted once."""
    whole, out = tmp_path / "whole", tmp_path / "run"
    run = ["run", "--store", "file", "--orders", 600, "--seed", 5]
    assert cli(*run, "--out", whole).returncode == 0
    for args, nth in ((run + ["--out", out], 3), (["resume", "--out", out], 2)):
        running = paused_yafdp(args, event="call", match=TICK, nth=nth)
        running.reached()  # 600 then 400 more deliveries committed
        running.kill()
    assert cli("resume", "--out", out).returncode == 0
    uninterrupted, resumed = (json.loads((o / "summary.json").read_text()) for o in (whole, out))
    assert resumed["rates"] == uninterrupted["rates"] != {}
    assert (resumed["sessions"], uninterrupted["sessions"]) == (3, 1)
    # Each session draws the order of deliveries due at the same moment anew (seeded with --seed and its number),
    # so a resumed run's counts may differ from the uninterrupted run's, and its summary names those that may; the
    # orders and their outcomes are the workload's. With this seed and these kill points none does (a seeded run
    # killed at a commit it announces is the same every time), so the whole run's counts are compared exactly.
    assert "may_differ_after_resume" not in uninterrupted
    assert {"events_published", "deliveries", "state_writes", "state_reads", "scheduler"} <= set(
        resumed["may_differ_after_resume"]) and "orders" not in resumed["may_differ_after_resume"]
    assert resumed["orders"] == uninterrupted["orders"]
    a, b = flat(uninterrupted), flat(resumed)
    # what differs by design: the time each took, how many sessions, and what the last resume found to do
    session_facts = {"wall_seconds", "deliveries_per_second", "sessions", "resumed_deliveries", "resumed_requests"}
    # (The schedules too: the sagas' deadlines pending at a kill were lost with the process's memory, so deleting
    # one later found none, 598 deletions of 600; run.db keeps them now, and the resume creates them again.)
    assert {k: (a.get(k), b.get(k)) for k in (set(a) | set(b)) - session_facts if a.get(k) != b.get(k)} == {}
    assert b["state_writes"] > 0 and b["scheduler.schedules_created"] == a["scheduler.schedules_deleted"] == 600
