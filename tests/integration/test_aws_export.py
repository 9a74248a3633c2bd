"""A deployment kept after a run that could not save is exported later with `yafdp export`, through the CLI."""

import sqlite3
import subprocess
import sys

import pytest

from yafdp.backends.aws.bus import AwsBus
from yafdp.backends.aws.deployment import deploy
from yafdp.backends.aws.functions import InProcessFunctions
from yafdp.backends.aws.teardown import destroy
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.runs.workload import OutcomeRates, generate_orders
from yafdp.services.order import TERMINAL

CATALOG, WORLD = load_catalog(), load_marketplace()


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yafdp", *map(str, args)], capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def kept(moto_url, clients):
    """A deployment whose run is over and was never saved: its trace is only in its tables."""
    plan = deploy(clients, CATALOG, backend="moto", prefix="kept", echo=lambda line: None)
    bus = AwsBus(CATALOG, plan, clients, InProcessFunctions(plan, CATALOG, WORLD, clients), settle_orders=True)
    order = generate_orders(1, seed=9, world=WORLD, rates=OutcomeRates(0, 0, 0))[0].request
    bus.call("order", "place_order", order)
    bus.run()
    bus.functions.stop()
    yield moto_url, order["order_id"]
    destroy(clients, "kept", echo=lambda line: None)


def test_a_kept_deployment_is_exported_as_a_run(kept, tmp_path):
    url, order_id = kept
    result = cli("export", "--backend", "moto", "--endpoint-url", url, "--prefix", "kept", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "run" / "run.db") as db:
        [(status,)] = db.execute("SELECT status FROM orders WHERE order_id = ?", (order_id,)).fetchall()
        events = db.execute("SELECT COUNT(*), MIN(published_at) FROM events").fetchone()
    assert status in TERMINAL and events[0] >= 4 and events[1] == 0.0  # times count from the run's first moment
    again = cli("export", "--backend", "moto", "--endpoint-url", url, "--prefix", "kept", "--out", tmp_path / "run")
    assert again.returncode == 2 and "already holds a run" in again.stderr and len(again.stderr.splitlines()) == 1


def test_exporting_a_deployment_that_does_not_exist_is_refused(kept, tmp_path):
    url, _ = kept
    result = cli("export", "--backend", "moto", "--endpoint-url", url, "--prefix", "nothing", "--out", tmp_path)
    assert result.returncode == 2 and "no deployment named nothing-" in result.stderr
    assert not (tmp_path / "run.db").exists()
