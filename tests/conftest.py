"""Shared fixtures: a writable copy of the shipped catalog to break on purpose; a moto server for the AWS side.
And how many pytest-xdist workers ``-n auto`` starts."""

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from yafdp.catalog import DEFAULT_DATA_DIR

# Where `yafdp moto-server` announces itself (yafdp.backends.aws.moto_server.state_dir): a folder of this test process's
# own, inherited by the commands it starts, so that no test finds a moto server the user (or another test process)
# runs, and `--backend moto` without a server of the test's own behaves as on a machine with none.
os.environ["YAFDP_STATE_DIR"] = tempfile.mkdtemp(prefix="yafdp-state-")


class CatalogCopy:
    """A copy of ``data/`` in a temporary folder, with helpers to edit one service file."""

    def __init__(self, root: Path):
        self.root = root

    def read(self, service: str) -> dict:
        return json.loads((self.root / "services" / f"{service}.json").read_text())

    def write(self, service: str, document: dict) -> None:
        (self.root / "services" / f"{service}.json").write_text(json.dumps(document, indent=2))

    def edit(self, service: str, change) -> None:
        document = self.read(service)
        change(document)
        self.write(service, document)


@pytest.fixture
def catalog_copy(tmp_path) -> CatalogCopy:
    root = tmp_path / "data"
    shutil.copytree(DEFAULT_DATA_DIR, root)
    return CatalogCopy(root)


@pytest.fixture(scope="session")
def moto_url():
    """One moto server per test process (each deployment on it has its own prefix), with dummy
    credentials in the environment so nothing here can reach a real AWS account.

    Under pytest-xdist (``make test`` runs ``pytest -n auto``) every worker is a process with its own session,
    so each worker starts its own server on a free port: no two workers share moto's state."""
    from yafdp.backends.aws.moto_server import MotoServer

    saved = {k: os.environ.get(k) for k in DUMMY_AWS_ENVIRONMENT}
    os.environ.update(DUMMY_AWS_ENVIRONMENT)
    server = MotoServer()
    try:
        yield server.start()
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def clients(moto_url):
    """boto3 clients for the session's moto server."""
    from yafdp.backends.aws.clients import make_clients

    return make_clients(moto_url)


DUMMY_AWS_ENVIRONMENT = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                         "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (``make test``) starts one worker more than the CPUs this process may run on.

    Much of the suite waits rather than computes: moto's long polls and visibility timeouts, runs started
    and then signalled or killed on purpose, notebook kernels starting. With one worker per CPU the CPUs sit
    idle through those waits; one more worker fills them (on the 2-core machine, with nothing else running,
    3 workers took 155 s where 2 took 175 s). ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still sets the number."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist's own implementation reads it
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cpus + 1


def pytest_collection_modifyitems(config, items):
    """The chapters' tests are collected first (the deployment chapters on moto, the longest, at their head),
    then the quick unit tests and doctests, then the rest.

    pytest-xdist's worksteal gives each worker a share of the collection in order, and an idle worker steals
    the tail of the share with the most tests left. The chapters run one after another on one worker (each
    chapter is executed once, its tests share it through the build folder), nearly a third of the suite's CPU:
    at the head of the first share they start at once, instead of a third of the way in and ending last, and
    the rest of that share is quick tests, not long ones stuck behind them. The order changes nothing else:
    every test stays independent of the others."""
    def rank(item) -> int:
        if item.path.name == "test_notebooks.py":
            return 0 if item.originalname == "test_deployment_chapters_execute_on_moto" else 1
        quick = "unit" in item.path.parts or "tests" not in item.path.parts  # tests/unit, and the doctests
        return 2 if quick else 3

    items.sort(key=rank)  # stable: within each rank, the collection's order
