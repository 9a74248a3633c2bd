"""The whole workbook on a catalog that is not YAFDP's (examples/trip_booking): every chapter runs to its end, says
at its top that its text is about YAFDP, and its exercises about YAFDP's events say they are skipped."""

import json
from pathlib import Path

import pytest

from yafdp.shipped import REPOSITORY
from yafdp.workbook import notebooks, run_workbook

TRIP = REPOSITORY / "examples" / "trip_booking"


@pytest.mark.notebook
def test_every_chapter_runs_on_the_trip_catalog(tmp_path):
    # Smaller than the course's defaults (the chapters that take them), and no moto comparison: this proves the
    # chapters' code runs on another catalog; the course's own runs are tested by test_notebooks.py.
    parameters = {"catalog_dir": str(TRIP), "orders": 40, "moto_orders": 0, "sweep_seconds": 5}
    done = run_workbook(tmp_path, parameters, echo=lambda line: None, jobs=2)
    assert len(done) == len(notebooks())
    first = json.loads(done[0].notebook.read_text())
    shown = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                    for c in first["cells"] if c["cell_type"] == "code" for o in c["outputs"])
    assert f"This chapter runs on your catalog, {TRIP}" in shown
    assert "about the shipped YAFDP catalog (data/), whose events it names: skipped" in shown
    assert list((tmp_path / "runs").glob("04_*")) and list((tmp_path / "figures").glob("06_*.png"))
