"""Shared fixtures: a writable copy of the shipped catalog to break on purpose."""

import json
import shutil
from pathlib import Path

import pytest

from yafdp.catalog import DEFAULT_DATA_DIR


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
