"""Chapter 09 draws the state machine the learner would deploy: every state placed once, a row per step, each arrow
kind (Next, a Parallel branch, a Catch) as the definition has it, and the restaurant's human step with its timeout."""

import matplotlib

matplotlib.use("Agg")

from yafdp.analysis import decision, figures  # noqa: E402
from yafdp.catalog import load_catalog  # noqa: E402
from yafdp.plan import build_plan  # noqa: E402
from yafdp.plan.step_functions import walk_states  # noqa: E402

CATALOG = load_catalog()
DEFINITION = decision.human_step_definition(CATALOG, build_plan(CATALOG), timeout_seconds=600)


def test_every_state_is_placed_once_and_every_transition_points_down_the_page():
    layout, edges = figures.state_machine_layout(DEFINITION)
    assert set(layout) == {name for name, _ in walk_states(DEFINITION)}
    assert len(set(layout.values())) == len(layout)  # no two states on one spot
    assert all(layout[v][1] < layout[u][1] for u, v, _, _ in edges)
    kinds = {kind for _, _, kind, _ in edges}
    assert kinds == {"next", "branch", "catch"}


def test_the_human_step_times_out_into_its_compensation():
    _, edges = figures.state_machine_layout(DEFINITION)
    review = "restaurant.review_order on Payment_Success"
    assert (review, f"{review} timed out", "catch", "States.Timeout") in edges


def test_the_figure_colours_tasks_by_their_path_and_is_readable_at_page_width():
    fig = figures.state_machine(DEFINITION, CATALOG, title="t")
    width, height = fig.get_size_inches()
    assert width <= 20 and height <= 12
    texts = {t.get_text(): t.get_bbox_patch().get_facecolor() for t in fig.axes[0].texts}
    assert matplotlib.colors.to_hex(texts["restaurant.review_order (timed out)"]) == \
        figures.PATH_COLOURS["compensation"]
    assert matplotlib.colors.to_hex(texts["payment.charge_order"]) == figures.PATH_COLOURS["happy"]
