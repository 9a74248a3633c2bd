"""Rehearse on moto what a user does on AWS, through the real commands as the README shows them: with a
`yafdp moto-server` running (in another terminal, or here another process), `yafdp deploy`, `yafdp run --keep`,
`yafdp export` and `yafdp destroy` with `--backend moto` and no `--endpoint-url` work as they do with `--backend aws`;
without one they say in one line how to start one."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def cli(*args, env, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yafdp.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env)


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    """An environment whose commands announce and find moto servers in a folder of this module's own."""
    return {**os.environ, "YAFDP_STATE_DIR": str(tmp_path_factory.mktemp("state"))}


@pytest.fixture(scope="module")
def moto_server(state, tmp_path_factory):
    """`yafdp moto-server` running in a process of its own, until this module's tests end (then Ctrl-C'd, as a user
    would): one server for them all, as a user keeps one running, each test on deployments of its own prefix."""
    folder = tmp_path_factory.mktemp("moto-server")
    log = folder / "moto-server.out"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "yafdp.cli", "moto-server"], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=state,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    announced = Path(state["YAFDP_STATE_DIR"]) / "moto-server.json"
    deadline = time.monotonic() + 600  # it starts moto: wait until it says so (a hang guard, not a measure of speed)
    while not announced.exists():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "yafdp moto-server did not announce itself"
        time.sleep(0.1)
    yield json.loads(announced.read_text())
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=600) == 130
    assert not announced.exists()  # it withdrew its announcement
    assert "moto server at http://127.0.0.1:" in log.read_text() and "yafdp: interrupted" in log.read_text()


def test_deploy_run_keep_export_check_and_destroy_on_a_moto_server_that_outlives_each_command(moto_server, state,
                                                                                            tmp_path):
    deployed = cli("deploy", "--backend", "moto", "--prefix", "rehearsal", env=state)
    assert deployed.returncode == 0, deployed.stderr
    assert "the deployment rehearsal is up to date" in deployed.stdout

    run = cli("run", "--backend", "moto", "--orders", 3, "--keep", "--out", tmp_path / "kept", env=state)
    assert run.returncode == 0, run.stderr
    assert f"the moto server at {moto_server['url']}" in run.stderr
    [prefix] = {line.split("kept the deployment ", 1)[1].split(":", 1)[0] for line in run.stderr.splitlines()
                if "kept the deployment " in line}
    summary = json.loads((tmp_path / "kept" / "summary.json").read_text())
    assert sum(summary["orders"]["by_status"].values()) == 3

    exported = cli("export", "--backend", "moto", "--prefix", prefix, "--out", tmp_path / "later", env=state)
    assert exported.returncode == 0, exported.stderr
    db = sqlite3.connect(tmp_path / "later" / "run.db")
    assert db.execute("SELECT COUNT(DISTINCT order_id) FROM orders").fetchone()[0] == 3
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == \
        sqlite3.connect(tmp_path / "kept" / "run.db").execute("SELECT COUNT(*) FROM events").fetchone()[0]
    db.close()

    destroyed = cli("destroy", "--backend", "moto", "--prefix", prefix, env=state)
    assert destroyed.returncode == 0, destroyed.stderr
    assert int(destroyed.stdout.split("deleted ")[1].split()[0]) > 30
    again = cli("destroy", "--backend", "moto", "--prefix", prefix, env=state)
    assert (again.returncode, again.stdout.split("deleted ")[1].split()[0]) == (0, "0")  # safe to rerun
    gone = cli("export", "--backend", "moto", "--prefix", prefix, "--out", tmp_path / "gone", env=state)
    assert gone.returncode == 2 and f"no deployment named {prefix}-" in gone.stderr
    assert cli("destroy", "--backend", "moto", "--prefix", "rehearsal", env=state).returncode == 0


@pytest.mark.parametrize("command", [
    ["deploy", "--backend", "moto"],
    ["destroy", "--backend", "moto", "--prefix", "yafdp-123456"],
    ["export", "--backend", "moto", "--prefix", "yafdp-123456", "--out", "{tmp}/x"],
    ["run", "--backend", "moto", "--orders", "1", "--keep", "--out", "{tmp}/x"],
])
def test_without_a_moto_server_the_commands_say_how_to_start_one(tmp_path, command):
    alone = {**os.environ, "YAFDP_STATE_DIR": str(tmp_path / "state")}  # not the folder where this module's server is
    result = cli(*[part.replace("{tmp}", str(tmp_path)) for part in command], env=alone)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "`yafdp moto-server`" in result.stderr
    assert not (tmp_path / "x").exists()  # refused before anything was touched


def test_a_second_moto_server_is_refused_naming_the_first(moto_server, state):
    second = cli("moto-server", env=state, timeout=120)
    assert second.returncode == 2 and f"already running at {moto_server['url']}" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1


def test_the_custom_event_bus_is_rehearsed_on_the_bus_the_moto_server_serves_beside_it(moto_server, state, tmp_path):
    """`yafdp moto-server` serves a Custom Event Bus beside its moto server (moto has none): `yafdp run --bus custom
    --keep` deploys on it and waits for it to have delivered everything, `yafdp export` writes the kept run, which
    passes `yafdp check`, and `yafdp destroy` removes the bus and its subscribers with the rest."""
    assert moto_server["bus_url"].startswith("http://127.0.0.1:")
    run = cli("run", "--backend", "moto", "--bus", "custom", "--orders", 2, "--keep", "--out", tmp_path / "kept",
              env=state)
    assert run.returncode == 0, run.stderr
    assert f"the Custom Event Bus served at {moto_server['bus_url']}" in run.stderr
    [prefix] = {line.split("kept the deployment ", 1)[1].split(":", 1)[0] for line in run.stderr.splitlines()
                if "kept the deployment " in line}
    exported = cli("export", "--backend", "moto", "--bus", "custom", "--prefix", prefix, "--out", tmp_path / "later",
                   env=state)
    assert exported.returncode == 0, exported.stderr
    checked = cli("check", tmp_path / "later", env=state)
    assert "pass  FIFO order per event group" in checked.stdout and "FAIL  no event lost" not in checked.stdout
    destroyed = cli("destroy", "--backend", "moto", "--bus", "custom", "--prefix", prefix, env=state)
    assert destroyed.returncode == 0, destroyed.stderr
    assert f"delete custom event bus {prefix}-saga" in destroyed.stdout
    assert f"delete subscriber {prefix}-payment-charges-order" in destroyed.stdout
