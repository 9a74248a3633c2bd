"""`yafdp replay` through the real command line: a finished choreography run's sagas, on the Classic bus or the
Custom Event Bus, replayed at another load, and every bad input said in one line naming the option or the folder,
exit 2, the run folder left as it was."""

import hashlib
import json
import shutil
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from yafdp.runs import RunOptions, run_saga
from yafdp.runtime import rundb
from yafdp.runtime.faults import Faults

pytestmark = pytest.mark.slow


def cli(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yafdp.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("replay-cli")
    made = {name: base / name for name in ("choreography", "orchestration", "faults", "custom", "custom-faults",
                                           "custom-unfinished")}
    run_saga(RunOptions(orders=40, seed=2, out=made["choreography"]))
    run_saga(RunOptions(orders=5, seed=2, out=made["orchestration"], style="orchestration"))
    run_saga(RunOptions(orders=5, seed=2, out=made["faults"], faults=Faults(handler_failure_rate=0.5)))
    run_saga(RunOptions(orders=40, seed=2, out=made["custom"], bus="custom"))
    run_saga(RunOptions(orders=5, seed=2, out=made["custom-faults"], bus="custom",
                        faults=Faults(publish_retry_rate=0.5)))
    shutil.copytree(made["custom"], made["custom-unfinished"])
    with closing(rundb.connect(made["custom-unfinished"] / "run.db")) as db:  # as a run stopped before its end leaves it
        rundb.set_info(db, status="running")
        db.commit()
    return made


def test_a_run_is_replayed_at_another_load_and_its_folder_is_left_as_it_was(runs):
    folder = runs["choreography"]
    before = fingerprint(folder)
    result = cli("replay", folder, "--arrival-rate", 200, "--orders", 400, "--quota-scale", 0.01, "--seed", 3)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"recorded: 40 orders of {folder / 'run.db'} (")
    assert lines[1].startswith("replayed 400 orders at 200 orders/s, latency model 'aws-eu-west-1', quotas x0.01, "
                               "without running a handler")
    assert lines[2].startswith("400 placed, 0 refused") or "refused (PutEvents throttled" in lines[2]
    assert any(line.startswith("saga end to end (simulated): p50 ") for line in lines)
    assert any(line.startswith("Lambda: ") and "invocations" in line for line in lines)
    assert fingerprint(folder) == before


def test_the_json_result_holds_the_counts_and_the_recording(runs):
    result = cli("replay", runs["choreography"], "--json")  # the run's own orders at their own times
    assert result.returncode == 0, result.stderr
    replayed = json.loads(result.stdout)
    assert replayed["orders"] == replayed["finished"] == replayed["recording"]["orders"] == 40
    assert replayed["saga_ms"]["orders"] == 40 and replayed["simulation"]["latency_model"] == "aws-eu-west-1"
    assert "latencies_s" not in replayed


def test_a_custom_event_bus_run_is_replayed_on_the_custom_event_bus(runs):
    folder = runs["custom"]
    before = fingerprint(folder)
    result = cli("replay", folder, "--arrival-rate", 200, "--orders", 400, "--quota-scale", 0.01, "--seed", 3, "--json")
    assert result.returncode == 0, result.stderr
    replayed = json.loads(result.stdout)
    assert replayed["recording"]["orders"] == 40 and replayed["orders"] == replayed["placed"] == 400
    assert replayed["simulation"]["bus"] == "EventBridge Custom Event Bus"
    assert replayed["simulation"]["held_back_behind_their_group"] > 0  # the FIFO subscribers and queues keep order
    assert replayed["finished"] + replayed["not_finished"] == 400
    assert fingerprint(folder) == before
    text = cli("replay", folder)  # its own orders at their own times, in words
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "without running a handler, on the EventBridge Custom Event Bus (" in lines[1]
    assert lines[-1].startswith("Custom Event Bus: ") and "held back behind an earlier event of their group" in lines[-1]
    assert any(line.startswith("saga end to end (simulated): p50 ") for line in lines)


@pytest.mark.parametrize("args, says", [
    (["--seconds", "5"], "yafdp replay: argument --seconds: does nothing without --arrival-rate"),
    (["--orders", "5"], "yafdp replay: argument --orders: does nothing without --arrival-rate"),
    (["--arrival-rate", "5"], "yafdp replay: argument --arrival-rate: needs --seconds or --orders"),
    (["--arrival-rate", "nan", "--orders", "5"], "yafdp replay: argument --arrival-rate: must be a positive finite"),
    (["--arrival-rate", "-1", "--orders", "5"], "yafdp replay: argument --arrival-rate: must be a positive finite"),
    (["--arrival-rate", "1e-9", "--orders", "5"], "yafdp replay: argument --arrival-rate: 5 orders would arrive"),
    (["--arrival-rate", "1e9", "--seconds", "1000000"],
     "yafdp replay: argument --arrival-rate: 1e+09 orders/s for 1e+06 s would place about 1e+15 orders, more than the "
     "10,000,000 a run may place"),
    (["--arrival-rate", "5", "--orders", "0"], "yafdp replay: argument --orders: must be a whole number from 1"),
    (["--arrival-rate", "5", "--seconds", "inf"], "yafdp replay: argument --seconds: must be a number of seconds"),
    (["--quota-scale", "0"], "yafdp replay: argument --quota-scale: must be a factor from 0.001 to 1,000"),
    (["--latency-model", "none"], "yafdp replay: argument --latency-model: must be a latency profile"),
    (["--latency-model", "no-such-profile"], "yafdp: latency profile error: "),
    (["--bogus"], "yafdp replay: unrecognized arguments: --bogus"),
])
def test_bad_options_are_one_line_naming_the_option_and_exit_2(runs, args, says):
    folder = runs["choreography"]
    before = fingerprint(folder)
    result = cli("replay", folder, *args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(says), result.stderr
    assert fingerprint(folder) == before


@pytest.mark.parametrize("which, says", [
    ("orchestration", "an orchestrated run's sagas are recorded as it runs"),
    ("faults", "injected faults (handler_failure_rate)"),
    ("custom-faults", "injected faults (publish_retry_rate)"),
    ("custom-unfinished", "holds an unfinished run (status 'running': it was stopped before its end), which cannot "
                          "be resumed: run it again with `yafdp run --force --out"),
    ("missing", "yafdp: no run database at "),
])
def test_a_run_the_replay_cannot_take_is_one_line_naming_the_folder_and_exit_2(runs, tmp_path, which, says):
    folder = runs.get(which, tmp_path / "nothing-here")
    result = cli("replay", folder, "--arrival-rate", 5, "--orders", 5)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and says in result.stderr and str(folder) in result.stderr, result.stderr
