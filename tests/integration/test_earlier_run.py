"""`yafdp run --force` replaces the run in --out only with a run that placed an order: one whose every request was
refused (an orders file that is all wrong) leaves the earlier run as it was, byte for byte, however it ends (finished,
or killed and resumed), and a kill at any step of setting it aside or putting it back is completed by the next
writer. Driven through the real command line."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from yafdp.runs import RunOptions, earlier, lifecycle, start_saga

YAFDP = [sys.executable, "-m", "yafdp"]
GOOD = {"order_id": "ord-good-1", "customer_id": "cus-ada", "restaurant_id": "res-napoli",
        "items": [{"item_id": "margherita", "quantity": 2, "unit_price": 8.5}], "amount": 17.0, "currency": "EUR",
        "payment_token": "tok_visa_4242", "delivery_zone": "zone-centre"}
BAD = [{"order_id": "x"}, {**GOOD, "order_id": "ord-bad-1", "amount": 18.0}]
AFTER_A_RUN = ["catalog.json", "run.db", "summary.json"]


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*YAFDP, *map(str, args)], capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


def _files(out: Path) -> dict:
    """Every entry of ``out`` but the lock, with the bytes of each file."""
    return {p.name: (p.read_bytes() if p.is_file() else "folder") for p in sorted(out.iterdir())
            if p.name != ".yafdp.lock"}


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("good") / "run"
    assert cli("run", "--orders", 12, "--seed", 3, "--out", out).returncode == 0
    return out


@pytest.fixture
def orders(tmp_path):
    def write(requests) -> Path:
        path = tmp_path / f"orders-{len(list(tmp_path.glob('orders-*')))}.json"
        path.write_text(json.dumps(requests))
        return path
    return write


@pytest.mark.parametrize("store", ["file", "memory"])
def test_a_forced_run_that_places_no_order_leaves_the_run_it_was_to_replace_as_it_was(good_run, tmp_path, orders,
                                                                                     store):
    out = tmp_path / "run"
    shutil.copytree(good_run, out)
    before = _files(out)
    result = cli("run", "--orders-file", orders(BAD), "--store", store, "--out", out, "--force")
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "yafdp: no order was placed: all 2 of the " in result.stderr
    assert f"; the earlier run in {out} is kept as it was, not replaced by one that placed nothing" in result.stderr
    assert "wrote " not in result.stdout and "refusals table" not in result.stdout + result.stderr
    assert _files(out) == before
    assert cli("check", out).returncode == 0


def test_a_run_that_places_no_order_in_a_new_folder_is_written_with_its_refusals(tmp_path, orders):
    out = tmp_path / "run"
    result = cli("run", "--orders-file", orders(BAD), "--out", out)
    assert result.returncode == 1 and f"in {out / 'run.db'}'s refusals table" in result.stderr, result.stderr
    assert sorted(_files(out)) == AFTER_A_RUN


def test_a_forced_run_that_places_an_order_replaces_the_earlier_run_and_keeps_nothing_aside(good_run, tmp_path,
                                                                                            orders):
    out = tmp_path / "run"
    shutil.copytree(good_run, out)
    result = cli("run", "--orders-file", orders([*BAD, GOOD]), "--out", out, "--force")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "summary.json").read_text())["orders"]["placed"] == 1
    assert sorted(_files(out)) == AFTER_A_RUN
    assert cli("check", out).returncode == 0


@pytest.mark.parametrize("requests, placed", [(BAD, 0), ([*BAD, GOOD], 1)], ids=["nothing-placed", "one-placed"])
def test_a_replacing_run_stopped_and_resumed_settles_as_one_that_ran_through(good_run, tmp_path, orders, requests,
                                                                            placed):
    out = tmp_path / "run"
    shutil.copytree(good_run, out)
    before = _files(out)
    options = RunOptions(orders=0, seed=1, out=out, store="file", overwrite=True, orders_file=orders(requests))
    bus = start_saga(options)
    lifecycle._close(bus, out)  # stopped before its first order, as a kill would
    assert (out / earlier.EARLIER).is_dir() and _files(out / earlier.EARLIER) == before
    result = cli("resume", "--out", out)
    if placed:
        assert result.returncode == 0, result.stderr
        assert sorted(_files(out)) == AFTER_A_RUN and cli("check", out).returncode == 0
    else:
        assert result.returncode == 1 and f"the earlier run in {out} is kept as it was" in result.stderr
        assert _files(out) == before


def _kill_while_setting_aside(out: Path, moved: list[str]) -> None:
    """``out`` as set_aside leaves it when killed after moving ``moved`` into the partial folder."""
    (out / earlier.PARTIAL).mkdir()
    for name in moved:
        (out / name).rename(out / earlier.PARTIAL / name)


def _kill_with_it_set_aside(out: Path, moved: list[str]) -> None:
    """``out`` killed once the earlier run was set aside (``moved`` unused), before the new run.db was in place."""
    _kill_while_setting_aside(out, AFTER_A_RUN)
    (out / earlier.PARTIAL).rename(out / earlier.EARLIER)


def _kill_while_dropping(out: Path, moved: list[str]) -> None:
    """``out`` killed while the new run's files were being removed, ``moved`` naming those still there."""
    _kill_while_setting_aside(out, AFTER_A_RUN)
    (out / earlier.PARTIAL).rename(out / earlier.DROPPING)
    for name in moved:
        (out / name).write_bytes(b"the new run's " + name.encode())


def _kill_while_returning(out: Path, moved: list[str]) -> None:
    """``out`` killed while the earlier run's files went back, ``moved`` naming those back already."""
    _kill_while_setting_aside(out, AFTER_A_RUN)
    (out / earlier.PARTIAL).rename(out / earlier.RETURNING)
    for name in moved:
        (out / earlier.RETURNING / name).rename(out / name)


@pytest.mark.parametrize("kill, moved", [
    (_kill_while_setting_aside, ["summary.json"]),
    (_kill_while_setting_aside, ["summary.json", "catalog.json", "run.db"]),
    (_kill_with_it_set_aside, []),
    (_kill_while_dropping, ["run.db", "catalog.json"]),
    (_kill_while_dropping, []),
    (_kill_while_returning, ["run.db"]),
    (_kill_while_returning, ["run.db", "catalog.json", "summary.json"]),
], ids=["setting-aside-summary-moved", "setting-aside-all-moved", "set-aside-new-not-in-place",
        "dropping-two-left", "dropping-none-left", "returning-run-db-back", "returning-all-back"])
@pytest.mark.parametrize("writer", ["resume", "run"])
def test_a_kill_at_any_step_of_keeping_the_earlier_run_is_completed_by_the_next_writer(good_run, tmp_path, orders,
                                                                                      kill, moved, writer):
    out = tmp_path / "run"
    shutil.copytree(good_run, out)
    before = _files(out)
    kill(out, moved)
    if writer == "resume":  # the earlier run is back, finished: nothing to resume
        result = cli("resume", "--out", out)
        assert result.returncode == 0 and "had finished already" in result.stderr, result.stderr
    else:  # the earlier run is back, then set aside and put back again by a run that places nothing
        result = cli("run", "--orders-file", orders(BAD), "--out", out, "--force")
        assert result.returncode == 1 and f"the earlier run in {out} is kept as it was" in result.stderr, result.stderr
    assert _files(out) == before


def _stopped_replacing_run(out: Path, orders_file: Path, request: dict | None) -> None:
    """A file-store run replacing the one in ``out`` with ``orders_file``, stopped (as a kill would) after placing
    ``request`` (none: before its first order)."""
    bus = start_saga(RunOptions(orders=0, seed=1, out=out, store="file", overwrite=True, orders_file=orders_file))
    if request is not None:
        bus.call("order", "place_order", request)  # committed: the client was answered
    lifecycle._close(bus, out)


@pytest.mark.parametrize("store", ["file", "memory"])
def test_a_replacing_run_stopped_after_placing_orders_is_the_run_kept_when_it_is_replaced_by_nothing(
        good_run, tmp_path, orders, store):
    """The reviewer's case: the stopped run had placed orders (check and resume describe it); an all-refused run
    forced over it deleted it and put the run before it back, saying the run in the folder was kept."""
    out = tmp_path / "run"
    shutil.copytree(good_run, out)
    _stopped_replacing_run(out, orders([GOOD]), GOOD)
    stopped = {name: data for name, data in _files(out).items() if name != earlier.EARLIER}
    result = cli("run", "--orders-file", orders(BAD), "--store", store, "--out", out, "--force")
    assert result.returncode == 1 and f"the earlier run in {out} is kept as it was" in result.stderr, result.stderr
    assert {name: data for name, data in _files(out).items() if name != earlier.EARLIER} == stopped
    resumed = cli("resume", "--out", out)  # the stopped run, finished: it placed an order, so nothing is kept aside
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(_files(out)) == AFTER_A_RUN and cli("check", out).returncode == 0


def test_a_memory_store_run_that_replaces_a_folder_keeping_an_earlier_run_drops_it(good_run, tmp_path, orders):
    out = tmp_path / "run"
    shutil.copytree(good_run, out)
    _stopped_replacing_run(out, orders([GOOD]), None)
    result = cli("run", "--orders-file", orders([GOOD]), "--store", "memory", "--out", out, "--force")
    assert result.returncode == 0, result.stderr
    assert sorted(_files(out)) == AFTER_A_RUN and cli("check", out).returncode == 0


def test_a_finished_run_that_placed_nothing_and_was_stopped_before_putting_the_earlier_run_back_is_settled_by_resume(
        good_run, tmp_path, orders):
    nothing = tmp_path / "nothing"
    assert cli("run", "--orders-file", orders(BAD), "--out", nothing).returncode == 1
    out = tmp_path / "run"
    shutil.copytree(good_run, out / earlier.EARLIER)
    for name in ("run.db", "catalog.json"):  # its summary.json not written yet
        shutil.copy(nothing / name, out / name)
    result = cli("resume", "--out", out)
    assert result.returncode == 0 and "had finished already" in result.stderr, result.stderr
    assert "the run there had placed no order" in result.stderr and "the earlier run is put back" in result.stderr
    assert _files(out) == _files(good_run)


def test_a_file_where_the_earlier_run_would_be_kept_is_refused_before_anything_is_touched(good_run, tmp_path, orders):
    out = tmp_path / "run"
    shutil.copytree(good_run, out)
    (out / earlier.EARLIER).write_text("mine")
    before = _files(out)
    result = cli("run", "--orders-file", orders([GOOD]), "--out", out, "--force")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"{out / earlier.EARLIER} is not a folder" in result.stderr and _files(out) == before


def test_a_deployed_run_that_places_no_order_destroys_its_deployment_and_keeps_the_earlier_run(good_run, tmp_path,
                                                                                               orders):
    """The reviewer's case: on moto (and so on AWS) it kept its whole deployment, saying the run was not saved and
    how to export it: there was nothing to export. (A deployed run writes its run.db at the end: the memory store.)"""
    out = tmp_path / "run"
    shutil.copytree(good_run, out)
    before = _files(out)
    result = cli("run", "--backend", "moto", "--orders-file", orders(BAD), "--out", out, "--force")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("yafdp: no order was placed") and "the earlier run in" in lines[-1]
    assert any(line.startswith("destroyed ") for line in lines) and "not saved" not in result.stderr, result.stderr
    assert _files(out) == before


def test_the_readers_of_a_folder_left_with_its_run_set_aside_say_how_to_put_it_back(good_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(good_run, out)
    _kill_with_it_set_aside(out, [])
    for command in (["check", out], ["fit-profile", out, "--out", tmp_path / "p.json"], ["trace", out, "--format", "otlp", "--out", tmp_path / "t.jsonl"]):
        result = cli(*command)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, (command, result.stderr)
        assert f"{out} holds no run.db: a run replacing the one there was stopped" in result.stderr
        assert f"`yafdp resume --out {out}` puts it back" in result.stderr
    assert cli("resume", "--out", out).returncode == 0 and cli("check", out).returncode == 0
