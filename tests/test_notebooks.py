"""Every chapter of the workbook executes under papermill, as `make workbook` runs it, with its figures."""

import pytest

from yafdp.workbook import notebooks, run_notebook

CHAPTERS = notebooks()


def test_workbook_has_its_chapters():
    names = [p.stem for p in CHAPTERS]
    assert names[:2] == ["01_identify_events", "02_map_subscriptions"]


def test_workbook_teaches_the_saga_from_deployment_to_a_new_service():
    names = {p.stem for p in CHAPTERS}
    assert names >= {"03_deploy_bus_and_handlers", "04_fire_orders", "05_event_flow_and_latency",
                     "06_failures_and_compensations", "07_add_loyalty_service"}


@pytest.mark.notebook
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_notebook_executes_and_saves_its_figures(path, tmp_path):
    result = run_notebook(path, tmp_path)
    assert result.notebook.exists() and result.html.stat().st_size > 10_000
    figures = list((tmp_path / "figures").glob(f"{path.stem[:2]}_*.png"))
    assert figures, f"{path.name} saved no figure"
