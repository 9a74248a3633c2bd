"""Chapter 09's decision guide: the latency comparison as a band over its uncertain inputs, and the cost lines the
per-order table leaves out, each computed from runs (no figure typed in)."""

import pytest

from yafdp.analysis import decision
from yafdp.analysis.trace import end_to_end, load_run
from yafdp.runs import RunOptions, run_saga


@pytest.fixture(scope="module")
def band(tmp_path_factory):
    return decision.latency_sensitivity(tmp_path_factory.mktemp("band"), orders=40, seed=3)


def test_the_band_holds_the_comparison_as_measured_and_moves_the_way_its_inputs_do(band, tmp_path):
    assert len(band) == len(decision.EVENTBRIDGE_SCALES) * len(decision.TASK_SCALES)
    ratio = band.set_index(["EventBridge hop (× measured)", "Step Functions Task (× measured)"])[
        "choreography / orchestration"]
    # the corner with every input as measured is the chapter's own comparison, rerun here without the band
    medians = {}
    for style in ("choreography", "orchestration"):
        run_saga(RunOptions(orders=40, seed=3, out=tmp_path / style, arrival_rate=20.0, latency_model="aws-eu-west-1",
                            style=style))
        medians[style] = end_to_end(load_run(tmp_path / style))["saga_s"].median()
    assert ratio[(1.0, 1.0)] == pytest.approx(medians["choreography"] / medians["orchestration"], abs=0.01)
    # a faster EventBridge hop makes the choreography less slow; a faster Task makes the orchestration faster
    assert ratio[(0.5, 1.0)] < ratio[(1.0, 1.0)] < ratio[(1.0, 0.5)]
    assert ratio.min() < ratio.max()


def test_the_lines_left_out_name_the_idle_polling_floor_and_the_express_history(tmp_path):
    runs = {}
    for label, options in {"choreography": {}, "express": {"style": "orchestration", "workflow": "express"}}.items():
        runs[label] = tmp_path / label
        run_saga(RunOptions(orders=20, seed=1, out=runs[label], latency_model="aws-eu-west-1", **options))
    table = decision.lines_left_out(runs, queues=6).reset_index()
    lines = set(zip(table["style"], table["line"]))
    assert ("choreography", "idle polling of the service queues (per month, not per order)") in lines
    assert ("express", "Express execution history in CloudWatch Logs") in lines
    idle = table[table["line"].str.startswith("idle polling")].iloc[0]
    assert f"{decision.idle_receives_per_month(6):,.0f} empty receives a month" in idle["quantity"]
    assert "lower bound" in idle["price"]
