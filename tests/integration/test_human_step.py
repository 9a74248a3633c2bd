"""A person's step in the orchestration: the restaurant confirms an order by hand (a callback Task,
``.waitForTaskToken``, on a Standard workflow). Its answer arrives minutes later; a restaurant that never answers
times out and is refunded; an Express workflow cannot run it at all."""

import pytest

from yafdp.analysis import decision
from yafdp.analysis.check import check_run
from yafdp.analysis.trace import load_run
from yafdp.backends.local.step_functions import LocalStepFunctions
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.errors import RefusedError
from yafdp.plan import build_plan
from yafdp.plan.step_functions import OrchestrationError, is_callback, walk_states
from yafdp.runs.bootstrap import timing_for
from yafdp.runtime import rundb

SILENT = {"order_id": "ord-silent-1", "customer_id": "cus-ada", "restaurant_id": "res-silent",
          "items": [{"item_id": "lasagne", "quantity": 1, "unit_price": 12.0}], "amount": 12.0, "currency": "EUR",
          "payment_token": "tok_visa_4242", "delivery_zone": "zone-centre"}
FINE = {**SILENT, "order_id": "ord-fine-1", "restaurant_id": "res-napoli",
        "items": [{"item_id": "margherita", "quantity": 2, "unit_price": 8.5}], "amount": 17.0}


def test_a_person_answers_in_minutes_and_silence_times_out_into_a_refund(tmp_path):
    summary = decision.human_step_run(tmp_path / "run", [SILENT, FINE])
    run = load_run(tmp_path / "run")
    assert run.orders.set_index("order_id")["status"].to_dict() == {"ord-silent-1": "CANCELLED",
                                                                    "ord-fine-1": "DELIVERY_SCHEDULED"}
    events = run.events.set_index(["order_id", "detail_type"])["published_at"]
    think = events[("ord-fine-1", "Delivery_Scheduled")] - events[("ord-fine-1", "Payment_Success")]
    assert 60 <= think <= 300 + 5  # the person's think time, then the rest of the saga
    # the decision is the person's: published when they answer, not when the function handed the token on
    assert events[("ord-fine-1", "Restaurant_Confirmed_Order")] - events[("ord-fine-1", "Payment_Success")] >= 60
    timed_out = events[("ord-silent-1", "Payment_Refunded")] - events[("ord-silent-1", "Payment_Success")]
    assert decision.HUMAN_STEP["timeout_seconds"] <= timed_out <= decision.HUMAN_STEP["timeout_seconds"] + 10
    assert summary["orchestration"]["executions_succeeded"] == 2 and summary["scheduler"]["schedules_invoked"] == 0
    # the rejection the timeout's Task published on Payment_Success is accepted as the state machine's, not a rule's
    assert run.info["callback_timeout_rules"] == ["restaurant-rejects-timed-out-order"]
    assert all(r.passed for r in check_run(tmp_path / "run"))


def test_an_express_workflow_cannot_wait_for_a_person_and_nothing_is_run(tmp_path):
    with pytest.raises(OrchestrationError, match=r"do not support .*Wait for Callback \(.waitForTaskToken\)"):
        decision.human_step_run(tmp_path / "run", [FINE], workflow="express")
    assert not (tmp_path / "run").exists()


def test_a_token_is_answered_once_by_the_api_and_never_after_it_timed_out():
    catalog, world = load_catalog(), load_marketplace()
    plan = build_plan(catalog)
    runner = LocalStepFunctions(catalog, plan, world, rundb.connect(":memory:"), timing=timing_for("aws-eu-west-1"),
                                definition=decision.human_step_definition(catalog, plan, timeout_seconds=600))
    runner.call("order", "place_order", FINE)
    runner.run(until=30.0)
    [waiting] = runner.waiting()
    assert waiting["order_id"] == "ord-fine-1" and waiting["state"] == "restaurant.review_order on Payment_Success"
    runner.send_task_failure(waiting["token"], "Restaurant_Rejected_Order",
                             '{"errorMessage": "{}", "errorType": "Restaurant_Rejected_Order"}')
    with pytest.raises(RefusedError, match="TaskTimedOut"):
        runner.send_task_success(waiting["token"], {})
    assert runner.waiting() == []


def test_a_callback_tasks_timeout_is_its_attempts_deadline_and_a_retry_waits_anew_with_a_new_token():
    # The same per-attempt deadline as any Task's (tests/unit/test_step_functions_runner.py): the person's answer is
    # the attempt's outcome; a States.Timeout retrier starts a new attempt with its own timeout and its own token.
    catalog, world = load_catalog(), load_marketplace()
    plan = build_plan(catalog)
    definition = decision.human_step_definition(catalog, plan, timeout_seconds=600)
    [review] = [state for _, state in walk_states(definition)
                if state["Type"] == "Task" and is_callback(state["Resource"])]
    review["Retry"] = [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 1}, *review["Retry"]]
    runner = LocalStepFunctions(catalog, plan, world, rundb.connect(":memory:"), timing=timing_for("aws-eu-west-1"),
                                definition=definition)  # no responder: nobody ever answers
    runner.call("order", "place_order", FINE)
    runner.run(until=30.0)
    [first] = runner.waiting()
    runner.run(until=599.0)  # the first attempt started after 0 s: it still waits
    assert runner.waiting() == [first]
    runner.run(until=660.0)  # it started before 30 s: its 600 s have passed, and the retry waits
    [second] = runner.waiting()
    assert second["token"] != first["token"] and second["state"] == first["state"]
    with pytest.raises(RefusedError, match="TaskTimedOut"):
        runner.send_task_success(first["token"], {})
    runner.run(until=1199.0)  # the retry started after 600 s: it has its own 600 s
    assert runner.waiting() == [second]
    runner.run()
    assert runner.waiting() == []
    facts = runner.report()["orchestration"]
    assert facts["executions_succeeded"] == 1  # the second timeout was caught: the refund Task ran
    with pytest.raises(RefusedError, match="TaskTimedOut"):
        runner.send_task_success(second["token"], {})
