"""A deployment kept after a run that could not save is exported later with `yafdp export`, through the CLI."""

import sqlite3
import subprocess
import sys

import pytest

from yafdp.backends.aws.bus import AwsBus
from yafdp.backends.aws.deployment import deploy
from yafdp.backends.aws.dynamo_state import TRACE
from yafdp.backends.aws.functions import InProcessFunctions
from yafdp.backends.aws.teardown import destroy
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.runs.workload import planned_requests

CATALOG, WORLD = load_catalog(), load_marketplace()


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yafdp", *map(str, args)], capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def kept(moto_url, clients):
    """A deployment whose run is over and was never saved: its trace is only in its tables."""
    plan = deploy(clients, CATALOG, backend="moto", prefix="kept", echo=lambda line: None)
    bus = AwsBus(CATALOG, plan, clients, InProcessFunctions(plan, CATALOG, WORLD, clients), settle_orders=True)
    order = planned_requests(CATALOG, 1, seed=9, rates={"payment_failure": 0, "restaurant_reject": 0, "delivery_failure": 0})[0].request
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
    assert status in load_catalog().saga.terminal and events[0] >= 4 and events[1] == 0.0  # times count from the run's first moment
    again = cli("export", "--backend", "moto", "--endpoint-url", url, "--prefix", "kept", "--out", tmp_path / "run")
    assert again.returncode == 2 and "already holds a run" in again.stderr and len(again.stderr.splitlines()) == 1
    assert "pass --force to replace it" in again.stderr  # an option export has:
    (tmp_path / "run" / "summary.json").write_text('{"of": "another run"}')
    replaced = cli("export", "--backend", "moto", "--endpoint-url", url, "--prefix", "kept", "--out", tmp_path / "run",
                   "--force")
    assert replaced.returncode == 0, replaced.stderr
    assert not (tmp_path / "run" / "summary.json").exists()  # no summary of another run beside the new run.db
    with sqlite3.connect(tmp_path / "run" / "run.db") as db:
        assert db.execute("SELECT status FROM orders WHERE order_id = ?", (order_id,)).fetchall() == [(status,)]


def test_exporting_a_deployment_that_does_not_exist_is_refused(kept, tmp_path):
    url, _ = kept
    result = cli("export", "--backend", "moto", "--endpoint-url", url, "--prefix", "nothing", "--out", tmp_path)
    assert result.returncode == 2 and "no deployment named nothing-" in result.stderr
    assert not (tmp_path / "run.db").exists()


@pytest.mark.parametrize("row", ['{"kind": "event", "detail": ' + "[" * 990 + "]" * 990 + "}", "[1, 2]", "{oops"],
                         ids=["nested-990-deep", "a-list", "not-json"])
def test_a_trace_item_no_function_writes_is_one_line_and_nothing_is_exported(kept, clients, tmp_path, row):
    """The deployment's tables are read like a run folder: a malformed record is one line, exit 2, not a
    RecursionError (a bug) or a run.db that no reader would open."""
    url, _ = kept
    table = "kept-payment"
    key = {"pk": {"S": TRACE}, "sk": {"S": "zz-malformed"}}
    clients.dynamodb.put_item(TableName=table, Item={**key, "row": {"S": row}})
    try:
        result = cli("export", "--backend", "moto", "--endpoint-url", url, "--prefix", "kept", "--out", tmp_path / "run")
    finally:
        clients.dynamodb.delete_item(TableName=table, Key=key)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert f"DynamoDB table {table}: trace item zz-malformed" in result.stderr and "nothing exported" in result.stderr
    assert not (tmp_path / "run" / "run.db").exists()
