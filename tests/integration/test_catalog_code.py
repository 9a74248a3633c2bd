"""A catalog folder carries its handlers, through the real command line: its own services/<name>.py is found
before the package's, a design whose handlers are not written yet lints and plans (and says which are missing)
but does not run, and a handler file that is broken is refused in one line naming the file and the line."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from yafdp.catalog import DEFAULT_DATA_DIR, CatalogError, load_catalog
from yafdp.catalog.inline import example_document

pytestmark = pytest.mark.slow

RATING = '''
def ask_for_review(event, uow):
    order_id = event["detail"]["order_id"]
    if uow.add("request", order_id, {"order_id": order_id}):
        uow.publish("Rating_Requested", {"order_id": order_id})
'''


def cli(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yafdp.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def with_rating(tmp_path: Path, code: str | None = RATING, name: str = "rating") -> Path:
    """A copy of the shipped catalog with a Rating service: its document, and ``code`` as its handler file."""
    root = tmp_path / "catalog"
    shutil.copytree(DEFAULT_DATA_DIR, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "services" / f"{name}.json").write_text(json.dumps(example_document(name)))
    if code is not None:
        (root / "services" / f"{name}.py").write_text(code)
    return root


def test_a_catalog_folder_runs_its_own_handlers(tmp_path):
    root = with_rating(tmp_path)
    out = tmp_path / "run"
    done = cli("run", "--catalog", root, "--orders", 12, "--seed", 4, "--out", out, "--json")
    assert done.returncode == 0, done.stderr
    db = out / "run.db"
    import sqlite3
    with sqlite3.connect(db) as con:
        asked = con.execute("SELECT COUNT(*) FROM events WHERE detail_type = 'Rating_Requested'").fetchone()[0]
        delivered = con.execute("SELECT COUNT(*) FROM orders WHERE status = 'DELIVERY_SCHEDULED'").fetchone()[0]
    assert asked == delivered > 0
    assert cli("check", out).returncode == 0


def test_the_folders_handler_comes_before_the_packages(tmp_path):
    root = with_rating(tmp_path, code=None)
    (root / "services" / "notification.py").write_text("def notify_customer(event, uow):\n    return 'mine'\n")
    catalog = load_catalog(root)
    assert catalog.handler("notification", "notify_customer")(None, None) == "mine"
    assert catalog.handler("payment", "charge_order").__module__ == "yafdp.services.payment"


def test_a_design_without_handlers_lints_and_plans_and_says_which_are_missing_but_does_not_run(tmp_path):
    root = with_rating(tmp_path, code=None)
    lint = cli("lint", "--catalog", root)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "ask_for_review" in lint.stderr and "services/rating.py" in lint.stderr
    plan = cli("plan", "--catalog", root)
    assert plan.returncode == 0 and "rating-asks-for-review" in plan.stdout and "ask_for_review" in plan.stderr
    assert cli("catalog", "--catalog", root, "--format", "json").returncode == 0
    out = tmp_path / "never"
    run = cli("run", "--catalog", root, "--out", out)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "rating.json: subscriptions[0].handler" in lines[0] and "services/rating.py" in lines[0]
    assert not out.exists()


def test_a_run_names_every_missing_handler_on_a_line_of_its_own(tmp_path):
    root = with_rating(tmp_path, code=None)
    document = json.loads((root / "services" / "rating.json").read_text())
    second = {**document["subscriptions"][0], "rule": "rating-asks-again", "handler": "ask_again"}
    document["subscriptions"].append(second)
    (root / "services" / "rating.json").write_text(json.dumps(document))
    run = cli("run", "--catalog", root, "--out", tmp_path / "never")
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 2
    assert "ask_for_review" in lines[0] and "ask_again" in lines[1]


@pytest.mark.parametrize("code, where, what", [
    ("def ask_for_review(event, uow)\n    pass\n", "line 1", "does not compile"),
    ("x = 1\nraise RuntimeError('no database here')\n", "line 2", "raises RuntimeError when imported: no database here"),
    ("import a_module_that_is_not_there\n", "line 1", "does not import: No module named 'a_module_that_is_not_there'"),
    ("def ask_for_reviews(event, uow):\n    pass\n", "", "has no function 'ask_for_review'"),
    ("\n\ndef ask_for_review(event):\n    pass\n", "line 3", "ask_for_review(event) cannot be called as a handler"),
    ("ask_for_review = 42\n", "", "'ask_for_review' is a int, not a function"),
    ("\nasync def ask_for_review(event, uow):\n    uow.publish('Rating_Requested', {})\n", "line 2",
     "ask_for_review is an async function: a handler must be a plain def"),
    ("def ask_for_review(event, uow):\n    yield uow.publish('Rating_Requested', {})\n", "line 1",
     "ask_for_review is a generator function: a handler must be a plain def"),
    ("async def ask_for_review(event, uow):\n    yield 1\n", "line 1",
     "ask_for_review is an async generator function: a handler must be a plain def"),
], ids=["syntax", "raises", "import", "no-function", "signature", "not-a-function", "async", "generator",
        "async-generator"])
def test_a_broken_handler_file_is_refused_by_lint_and_before_a_run(tmp_path, code, where, what):
    root = with_rating(tmp_path, code=code)
    out = tmp_path / "never"
    for command in (["lint", "--catalog", root], ["run", "--catalog", root, "--out", out]):
        done = cli(*command)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (command, done.stderr)
        assert f"services/rating.py: {where + ': ' if where else ''}{what}" in lines[0], lines[0]
        assert "Traceback" not in done.stderr
    assert not out.exists()


def test_a_handler_module_that_would_shadow_a_module_the_project_imports_is_refused(tmp_path):
    root = with_rating(tmp_path, code=RATING.replace("rating", "json"), name="json")
    done = cli("lint", "--catalog", root)
    assert done.returncode == 2
    assert "services/json.py: line 1: the handler module 'json' would shadow the standard library's module 'json'" \
        in done.stderr


def test_an_edited_handler_is_imported_afresh_by_the_next_catalog(tmp_path):
    root = with_rating(tmp_path, code=RATING)
    first = load_catalog(root).handler("rating", "ask_for_review")
    (root / "services" / "rating.py").write_text(RATING + "\nEDITED = True\n")
    second = load_catalog(root).handler("rating", "ask_for_review")
    assert first is not second and sys.modules[second.__module__].EDITED


def test_a_handler_may_import_its_neighbours_relatively(tmp_path):
    root = with_rating(tmp_path, code="from .common import ask_for_review  # noqa: F401\n")
    (root / "services" / "common.py").write_text(RATING)
    assert load_catalog(root).code.check() == []


def test_an_in_memory_handler_of_the_wrong_signature_is_refused_before_a_run():
    from yafdp.catalog.inline import add_service

    extended = add_service(load_catalog(), example_document("tasting"), {"ask_for_review": lambda event: None})
    with pytest.raises(CatalogError, match="in memory: service 'tasting'.*cannot be called as a handler"):
        extended.code.check()


def test_a_rule_with_a_typo_leaves_every_order_stuck_and_the_local_run_says_so_at_once_exit_1(tmp_path):
    """Issue 23's case: `5 of 5 … placed: 5 PAID` and exit 0 without a word. The run is still written."""
    root = with_rating(tmp_path, code=RATING)
    document = json.loads((root / "services" / "restaurant.json").read_text())
    document["subscriptions"][0]["pattern"]["detail-type"] = ["Payment_Succeeded"]
    (root / "services" / "restaurant.json").write_text(json.dumps(document))
    out = tmp_path / "run"
    done = cli("run", "--catalog", root, "--orders", 5, "--payment-failure-rate", 0, "--out", out)
    assert done.returncode == 1 and "5 of 5 requested orders placed" in done.stdout
    line = done.stderr.strip()
    assert "\n" not in line and "5 of 5 sagas did not end in a terminal outcome (DELIVERY_SCHEDULED or CANCELLED): 5 PAID" in line
    assert "ord-0-000001" in line and (out / "run.db").is_file() and (out / "summary.json").is_file()


def test_the_workbook_refuses_a_catalog_that_does_not_load_before_any_chapter_runs(tmp_path):
    done = cli("workbook", "--catalog", tmp_path / "nowhere", "--out", tmp_path / "build")
    assert done.returncode == 2 and "nowhere" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "build").exists()
