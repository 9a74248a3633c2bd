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
