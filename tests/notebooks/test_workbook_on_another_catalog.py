"""The whole workbook on a catalog that is not YAFDP's (examples/trip_booking): every chapter runs to its end, says
at its top that its text is about YAFDP, and its exercises about YAFDP's events say they are skipped.

Each chapter is a test of its own, so that the chapters run side by side on every pytest-xdist worker rather than
two at a time in one test that ends with the longest."""

import json
from pathlib import Path

import pytest

from yafdp.shipped import REPOSITORY
from yafdp.workbook import notebooks, run_workbook

TRIP = REPOSITORY / "examples" / "trip_booking"
CHAPTERS = notebooks()


def _shown(notebook: Path) -> str:
    """What an executed notebook's code cells printed or displayed as text."""
    cells = json.loads(notebook.read_text())["cells"]
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for c in cells if c["cell_type"] == "code" for o in c["outputs"])


@pytest.mark.notebook
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_chapter_runs_on_the_trip_catalog(path, tmp_path):
    # Smaller than the course's defaults (the chapters that take them), and no moto comparison: this proves the
    # chapters' code runs on another catalog; the course's own runs are tested by test_notebooks.py.
    parameters = {"catalog_dir": str(TRIP), "orders": 40, "moto_orders": 0, "sweep_seconds": 5}
    done = run_workbook(tmp_path, parameters, only=[path.stem], echo=lambda line: None, jobs=1)
    assert [chapter.name for chapter in done] == [path.stem]
    shown = _shown(done[0].notebook)
    assert f"This chapter runs on your catalog, {TRIP}" in shown
    if path.stem.startswith("01_"):
        assert "about the shipped YAFDP catalog (data/), whose events it names: skipped" in shown
    if path.stem.startswith("04_"):
        assert list((tmp_path / "runs").glob("04_*"))
    if path.stem.startswith("06_"):
        assert list((tmp_path / "figures").glob("06_*.png"))
