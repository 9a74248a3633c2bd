"""The state machine generated from the catalog: a Catch on every compensation path, only the catalog's
services; the local orchestrator keeps the saga's promises. (Its ASL checked by moto's parser and its deployment
on moto: tests/integration/test_state_machine_on_moto.py.)"""

import json

import pytest

from yafdp.catalog import load_catalog
from yafdp.analysis.check import check_run
from yafdp.cli import main
from yafdp.plan.step_functions import MAX_STATE_NAME, OrchestrationError, state_machine_definition, task_rules, walk_states
from yafdp.backends.tasks import lambda_error, step_failed, task_event
from yafdp.plan import build_plan
from yafdp.runs import RunOptions, run_saga
from yafdp.analysis.trace import end_to_end, load_run


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def definition(catalog):
    return state_machine_definition(catalog, build_plan(catalog))


def test_every_transition_names_a_state_of_its_own_scope_and_names_are_unique(definition):
    names = [name for name, _ in walk_states(definition)]
    assert len(names) == len(set(names)) and max(map(len, names)) <= MAX_STATE_NAME

    def check(scope: dict) -> None:
        assert scope["StartAt"] in scope["States"]
        for name, state in scope["States"].items():
            targets = [state.get("Next"), state.get("Default")] + [c["Next"] for c in state.get("Catch", ())] \
                + [c["Next"] for c in state.get("Choices", ())]
            assert all(t in scope["States"] for t in targets if t), name
            assert state["Type"] in ("Choice", "Succeed") or state.get("End") or state.get("Next"), name
            for branch in state.get("Branches", ()):
                check(branch)
    check(definition)


def test_every_compensation_path_has_a_catch(catalog, definition):
    failures = {e.name for e in catalog.events.values() if e.kind == "failure"}
    tasks = [(name, state) for name, state in walk_states(definition) if state["Type"] == "Task"]
    for sub in catalog.subscriptions:
        raised = failures & set(sub.emits)
        for name, state in tasks:
            if state["Parameters"]["Payload"]["rule"] == sub.rule:
                caught = {e for c in state.get("Catch", ()) for e in c["ErrorEquals"]}
                assert caught == raised, name
    # and what a Catch leads to runs the compensating subscriptions
    delivery_failed = [s for n, s in walk_states(definition) if n.startswith("Delivery_Failed")][0]
    rules = {b["States"][b["StartAt"]]["Parameters"]["Payload"]["rule"] for b in delivery_failed["Branches"]}
    assert {"payment-refunds-undeliverable-order", "restaurant-cancels-undeliverable-order",
            "loyalty-reverts-undeliverable-order"} <= rules


def test_the_definition_runs_every_subscription_and_only_the_catalogs_services(catalog, definition):
    plan = build_plan(catalog)
    tasks = [s for _, s in walk_states(definition) if s["Type"] == "Task"]
    assert {t["Parameters"]["FunctionName"] for t in tasks} <= {s.function for s in plan.services}
    assert set(task_rules(definition)) == {s.rule for s in catalog.subscriptions}


def test_a_rule_that_filters_on_the_detail_cannot_be_orchestrated(catalog_copy):
    catalog_copy.edit("payment", lambda d: d["subscriptions"][0]["pattern"].update(detail={"currency": ["EUR"]}))
    catalog = load_catalog(catalog_copy.root)
    with pytest.raises(OrchestrationError, match="payment-charges-order"):
        state_machine_definition(catalog, build_plan(catalog))


def test_a_task_reads_the_failure_event_from_the_error_step_functions_caught():
    envelope = {"id": "e-1", "detail-type": "Payment_Failed", "detail": {"order_id": "ord-1"}}
    error = lambda_error(step_failed(envelope))
    assert error["Error"] == "Payment_Failed"
    assert task_event({"rule": "order-tracks-status", "failure": error}) == envelope


@pytest.mark.parametrize("workflow", ["standard", "express"])
def test_an_orchestrated_run_keeps_every_promise_of_the_saga(tmp_path, workflow):
    summary = run_saga(RunOptions(orders=120, seed=4, out=tmp_path, style="orchestration", workflow=workflow,
                                  latency_model="aws-eu-west-1"))
    assert all(result.passed for result in check_run(tmp_path)), [r for r in check_run(tmp_path) if not r.passed]
    assert summary["orchestration"]["executions_succeeded"] == 120
    assert summary["orchestration"]["state_transitions"] > 10 * 120
    run = load_run(tmp_path)
    assert run.info["style"] == "orchestration" and run.info["workflow"] == workflow
    assert end_to_end(run)["saga_s"].notna().all()


def test_the_same_workload_ends_the_same_way_in_both_styles(tmp_path):
    chor = run_saga(RunOptions(orders=80, seed=9, out=tmp_path / "c"))
    orch = run_saga(RunOptions(orders=80, seed=9, out=tmp_path / "o", style="orchestration"))
    assert chor["orders"]["by_status"] == orch["orders"]["by_status"]
    assert chor["charged"] == orch["charged"] and chor["refunded"] == orch["refunded"]


def test_an_orchestrated_run_cannot_be_resumed(tmp_path):
    run_saga(RunOptions(orders=3, seed=1, out=tmp_path, style="orchestration", store="file"))
    assert main(["resume", "--out", str(tmp_path)]) == 2


def test_cli_prints_the_state_machine_naming_no_account_or_region(capsys):
    # Tried: all 26 Task ARNs named account 000000000000 in eu-west-1, so the printed machine ran nowhere else. The
    # functions are named (Lambda's Invoke takes a name: the function of the state machine's account and Region).
    assert main(["state-machine", "--prefix", "demo"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["StartAt"] == "Order_Initiated"
    text = json.dumps(printed)
    assert "000000000000" not in text and "eu-west-1" not in text
    tasks = [s for _, s in walk_states(printed) if s["Type"] == "Task"]
    assert len(tasks) == 26 and {t["Parameters"]["FunctionName"] for t in tasks} >= {"demo-payment", "demo-order"}
    assert {t["Resource"] for t in tasks} == {"arn:aws:states:::lambda:invoke"}


def test_a_plan_in_another_partition_names_it_in_every_arn(catalog):
    plan = build_plan(catalog, "cn", region="cn-north-1", account="123456789012", partition="aws-cn")
    arns = [plan.bus_arn(), plan.queue_arn("q"), plan.function_arn("payment"), plan.state_machine_arn()]
    assert all(arn.startswith("arn:aws-cn:") for arn in arns)
    definition = state_machine_definition(catalog, plan)
    assert {s["Resource"] for _, s in walk_states(definition) if s["Type"] == "Task"} == {"arn:aws-cn:states:::lambda:invoke"}
    assert json.dumps(plan.service("payment").policy).count("arn:aws:") == 0
