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


@pytest.mark.notebook
@pytest.mark.parametrize("name, parameters, run", [
    ("03_deploy_bus_and_handlers", {"backend": "moto"}, "03_smoke_test"),
    ("04_fire_orders", {"backend": "moto", "orders": 20}, "04_batch"),
], ids=["03-on-moto", "04-on-moto"])
def test_deployment_chapters_execute_on_moto(name, parameters, run, tmp_path):
    from yafdp.analysis.check import check_run
    from yafdp.analysis.trace import load_run
    from yafdp.workbook import NOTEBOOKS_DIR

    run_notebook(NOTEBOOKS_DIR / f"{name}.ipynb", tmp_path, parameters)
    assert list((tmp_path / "figures").glob(f"{name[:2]}_*.png"))
    assert load_run(tmp_path / "runs" / run).info["backend"] == "moto"
    assert all(invariant.passed for invariant in check_run(tmp_path / "runs" / run))
