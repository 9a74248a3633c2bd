"""Lint finds design problems in a catalog that loads, and finds none in the shipped one."""

from yafdp.catalog import load_catalog
from yafdp.cli import main
from yafdp.analysis.lint import lint


def checks(catalog_copy) -> set[str]:
    return {f.check for f in lint(load_catalog(catalog_copy.root))}


def test_shipped_catalog_is_clean():
    assert lint(load_catalog()) == []


def test_cli_lint_exits_0_on_shipped_catalog(capsys):
    assert main(["lint"]) == 0
    assert "no problems" in capsys.readouterr().out


def test_cli_lint_exits_1_on_broken_catalog(catalog_copy, capsys):
    catalog_copy.edit("restaurant", lambda d: d["subscriptions"][0]["pattern"].update({"detail-type": ["Payment_Succeeded"]}))
    assert main(["lint", "--catalog", str(catalog_copy.root)]) == 1
    out = capsys.readouterr().out
    assert "Payment_Succeeded" in out and "restaurant.json" in out


def test_cli_reports_a_catalog_error_with_exit_2(catalog_copy, capsys):
    catalog_copy.edit("payment", lambda d: d.pop("subscriptions"))
    assert main(["lint", "--catalog", str(catalog_copy.root)]) == 2
    assert "payment.json" in capsys.readouterr().err


def test_typo_in_a_subscription_shows_all_its_consequences(catalog_copy):
    catalog_copy.edit("restaurant", lambda d: d["subscriptions"][0]["pattern"].update({"detail-type": ["Payment_Succeeded"]}))
    findings = lint(load_catalog(catalog_copy.root))
    assert {f.check for f in findings} == {"unknown-event", "matches-nothing", "unreachable-service"}
    unreachable = {f.message.split("'")[1] for f in findings if f.check == "unreachable-service"}
    assert unreachable == {"restaurant", "delivery", "loyalty"}


def test_event_nobody_produces_is_found(catalog_copy):
    catalog_copy.edit("payment", lambda d: d["subscriptions"][1]["emits"].clear() or d["subscriptions"][2]["emits"].clear())
    assert "unproduced-event" in checks(catalog_copy)


def test_non_terminal_event_nobody_consumes_is_found(catalog_copy):
    catalog_copy.edit("delivery", lambda d: d["events"]["Delivery_Scheduled"].update(terminal=False))
    catalog_copy.edit("order", lambda d: d["subscriptions"][0]["pattern"]["detail-type"].remove("Delivery_Scheduled"))
    catalog_copy.edit("notification", lambda d: d["subscriptions"][0]["pattern"]["detail-type"].remove("Delivery_Scheduled"))
    assert checks(catalog_copy) == {"unconsumed-event"}


def test_terminal_event_nobody_consumes_is_fine(catalog_copy):
    # The Loyalty events are terminal and nobody listens to them: that is allowed.
    assert not lint(load_catalog(catalog_copy.root))


def test_feedback_loop_is_found(catalog_copy):
    def refund_triggers_charge(doc):
        doc["subscriptions"][0]["pattern"] = {"source": ["yafdp.order", "yafdp.payment"],
                                              "detail-type": ["Order_Initiated", "Payment_Refunded"]}
    catalog_copy.edit("payment", refund_triggers_charge)
    findings = [f for f in lint(load_catalog(catalog_copy.root)) if f.check == "feedback-loop"]
    assert findings and "payment-charges-order" in findings[0].message


# ---------------------------------------------------------------- the saga's design: steps and compensations

def test_a_failure_that_leaves_a_completed_step_uncompensated_is_a_finding(catalog_copy):
    """Chapter 07's "try next": without Loyalty's revert, a failed delivery keeps the points awarded."""
    catalog_copy.edit("loyalty", lambda d: d["subscriptions"].pop(1))
    findings = [f for f in lint(load_catalog(catalog_copy.root)) if f.check == "uncovered-compensation"]
    assert [f.message for f in findings] == [
        "Delivery_Failed may follow Loyalty_Points_Added (compensatable), but no rule reacting to Delivery_Failed or "
        "to what follows it emits Loyalty_Points_Reverted"]
    assert findings[0].where.endswith("delivery.json: events.Delivery_Failed")


def test_a_compensatable_step_nothing_compensates_is_a_finding(catalog_copy):
    catalog_copy.edit("loyalty", lambda d: d["events"]["Loyalty_Points_Reverted"].pop("compensates"))
    assert {"uncompensatable-step", "uncovered-compensation"} <= checks(catalog_copy)


def test_a_compensated_pivot_and_a_failure_after_the_pivot_are_findings(catalog_copy):
    catalog_copy.edit("restaurant", lambda d: d["events"]["Restaurant_Confirmed_Order"].update(step="pivot"))
    found = {f.check: f.message for f in lint(load_catalog(catalog_copy.root))}
    assert "compensated-pivot" in found and "Restaurant_Cancelled_Order compensates it" in found["compensated-pivot"]
    assert found["failure-after-pivot"] == ("Delivery_Failed can follow the pivot Restaurant_Confirmed_Order: after "
                                            "the pivot a saga cannot fail")


def test_a_retriable_step_whose_handler_can_fail_is_a_finding(catalog_copy):
    catalog_copy.edit("delivery", lambda d: d["events"]["Delivery_Scheduled"].update(step="retriable"))
    assert "failing-retriable-step" in checks(catalog_copy)


def test_the_coverage_matrix_names_the_rule_and_the_compensation_for_each_failure_and_step(capsys):
    from yafdp.analysis.tables import compensation_coverage

    matrix = compensation_coverage(load_catalog())
    assert list(matrix.index) == ["Delivery_Failed", "Payment_Failed", "Restaurant_Rejected_Order"]
    assert matrix.loc["Delivery_Failed", "Restaurant_Confirmed_Order"] == \
        "restaurant-cancels-undeliverable-order → Restaurant_Cancelled_Order"
    assert (matrix.loc["Payment_Failed"] == "—").all()
    assert main(["lint", "--coverage"]) == 0
    assert "payment-refunds-rejected-order → Payment_Refunded" in capsys.readouterr().out
