"""The shipped catalog loads, says what the blog says, and a broken one is refused naming file and key."""

import json

import fastjsonschema
import pytest

from yafdp.catalog import CatalogError, load_catalog

BLOG_EVENTS = {
    "Order_Initiated", "Payment_Success", "Payment_Failed",
    "Restaurant_Confirmed_Order", "Restaurant_Rejected_Order", "Delivery_Scheduled",
}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_blog_events_are_exactly_the_blog_ones(catalog):
    assert {n for n, e in catalog.events.items() if e.origin == "blog"} == BLOG_EVENTS


def test_saga_extensions_are_present(catalog):
    extensions = {n for n, e in catalog.events.items() if e.origin == "extension"}
    assert {"Payment_Refunded", "Delivery_Failed", "Loyalty_Points_Added", "Loyalty_Points_Reverted"} <= extensions


def test_every_event_has_its_producers_source(catalog):
    for event in catalog.events.values():
        assert event.source == f"yafdp.{event.service}"


@pytest.mark.parametrize("service, event, handler", [
    ("payment", "Order_Initiated", "charge_order"),
    ("payment", "Restaurant_Rejected_Order", "refund_order"),
    ("restaurant", "Payment_Success", "review_order"),
    ("delivery", "Restaurant_Confirmed_Order", "schedule_delivery"),
    ("loyalty", "Restaurant_Confirmed_Order", "award_points"),
    ("loyalty", "Delivery_Failed", "revert_points"),
])
def test_blog_subscriptions_are_wired(catalog, service, event, handler):
    assert (service, handler) in {(s.service, s.handler) for s in catalog.consumers(event)}


def test_order_service_tracks_every_saga_event(catalog):
    saga_events = {n for n, e in catalog.events.items() if e.service not in ("order", "loyalty")}
    tracked = set(catalog.matched_events(catalog.subscription("order-tracks-status")))
    assert tracked == saga_events


def test_notification_hears_almost_all_events_but_not_internal_ones(catalog):
    heard = set(catalog.matched_events(catalog.subscription("notification-tells-customer")))
    assert len(heard) >= len(catalog.events) - 3
    assert "Restaurant_Cancelled_Order" not in heard


def test_every_rule_filters_on_source_and_detail_type(catalog):
    for sub in catalog.subscriptions:
        assert "source" in sub.pattern and "detail-type" in sub.pattern, sub.rule


def test_schema_refuses_a_negative_amount(catalog):
    with pytest.raises(fastjsonschema.JsonSchemaValueException, match="amount"):
        catalog.validate_detail("Payment_Failed", {"order_id": "ord-1", "customer_id": "cus-1", "amount": -1,
                                                   "currency": "EUR", "reason": "card_declined"})


def test_without_loyalty_leaves_other_services_untouched(catalog):
    before = catalog.without("loyalty")
    assert "loyalty" not in before.services and "Loyalty_Points_Added" not in before.events
    assert before.services["payment"] == catalog.services["payment"]


def _error(catalog_copy) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        load_catalog(catalog_copy.root)
    return info.value


def test_invalid_json_names_the_file_and_line(catalog_copy):
    (catalog_copy.root / "services" / "payment.json").write_text('{"service": "payment",\n  oops}')
    error = _error(catalog_copy)
    assert error.file.endswith("payment.json") and "line 2" in error.key


def test_missing_field_names_the_key(catalog_copy):
    catalog_copy.edit("payment", lambda d: d["events"]["Payment_Success"].pop("schema"))
    error = _error(catalog_copy)
    assert error.file.endswith("payment.json")
    assert error.key == "events.Payment_Success" and "schema" in error.problem


def test_wrong_path_value_names_the_subscription(catalog_copy):
    catalog_copy.edit("delivery", lambda d: d["subscriptions"][0].update(path="sideways"))
    error = _error(catalog_copy)
    assert (error.key, error.file.endswith("delivery.json")) == ("subscriptions[0].path", True)


def test_invalid_pattern_is_refused_with_eventbridge_reason(catalog_copy):
    catalog_copy.edit("delivery", lambda d: d["subscriptions"][0]["pattern"].update({"detail-type": "Restaurant_Confirmed_Order"}))
    error = _error(catalog_copy)
    assert error.key == "subscriptions[0].pattern"
    assert "Event pattern is not valid" in error.problem


def test_a_pattern_number_no_double_holds_is_refused_as_written_in_the_file(catalog_copy):
    # json would read 1.00000000000000001 as 1.0; EventBridge refuses the operand ("Cannot compare number").
    catalog_copy.edit("delivery", lambda d: d["subscriptions"][0]["pattern"].update(
        {"detail": {"amount": [{"numeric": [">", 0.5]}]}}))
    path = catalog_copy.root / "services" / "delivery.json"
    path.write_text(path.read_text().replace("0.5", "1.00000000000000001"))
    error = _error(catalog_copy)
    assert error.key == "subscriptions[0].pattern" and "Cannot compare number 1.00000000000000001" in error.problem


def test_rule_without_detail_type_is_refused(catalog_copy):
    catalog_copy.edit("delivery", lambda d: d["subscriptions"][0]["pattern"].pop("detail-type"))
    assert "detail-type" in _error(catalog_copy).problem


def test_invalid_json_schema_is_refused(catalog_copy):
    catalog_copy.edit("payment", lambda d: d["events"]["Payment_Failed"]["schema"].update(type="nummber"))
    error = _error(catalog_copy)
    assert error.key == "events.Payment_Failed.schema"


def test_wrong_source_is_refused(catalog_copy):
    catalog_copy.edit("payment", lambda d: d.update(source="yafdp.billing"))
    error = _error(catalog_copy)
    assert error.key == "source" and "yafdp.payment" in error.problem


def test_emitting_another_services_event_is_refused(catalog_copy):
    catalog_copy.edit("payment", lambda d: d["subscriptions"][0]["emits"].append("Delivery_Scheduled"))
    error = _error(catalog_copy)
    assert error.key == "subscriptions[0].emits" and "Delivery_Scheduled" in error.problem


def test_event_defined_twice_is_refused(catalog_copy):
    catalog_copy.edit("loyalty", lambda d: d["events"].update(Payment_Success=d["events"]["Loyalty_Points_Added"]))
    error = _error(catalog_copy)
    assert "'Payment_Success' is already produced by service" in error.problem


def test_duplicate_rule_name_is_refused(catalog_copy):
    catalog_copy.edit("loyalty", lambda d: d["subscriptions"][0].update(rule="payment-charges-order"))
    assert "already defined" in _error(catalog_copy).problem


def test_unknown_start_event_is_refused(catalog_copy):
    bus = json.loads((catalog_copy.root / "bus.json").read_text())
    bus["start_event"] = "Order_Placed"
    (catalog_copy.root / "bus.json").write_text(json.dumps(bus))
    error = _error(catalog_copy)
    assert error.file.endswith("bus.json") and error.key == "start_event"


def test_retry_policy_outside_eventbridge_bounds_is_refused(catalog_copy):
    bus = json.loads((catalog_copy.root / "bus.json").read_text())
    bus["retry_policy"]["MaximumRetryAttempts"] = 500
    (catalog_copy.root / "bus.json").write_text(json.dumps(bus))
    assert _error(catalog_copy).key == "retry_policy.MaximumRetryAttempts"


def test_invalid_regular_expression_in_a_schema_is_refused(catalog_copy):
    catalog_copy.edit("payment", lambda d: d["events"]["Payment_Success"]["schema"]["properties"]["order_id"]
                      .update(pattern="^ord-(unclosed"))
    error = _error(catalog_copy)
    assert error.key == "events.Payment_Success.schema" and "invalid regular expression" in error.problem


@pytest.mark.parametrize("ref", ["http://127.0.0.1:9/items.json", "https://example.com/items.json",
                                 "file:///etc/passwd", "../../outside.json", "items.json"])
def test_a_schema_ref_outside_the_schema_is_refused_and_never_fetched(catalog_copy, monkeypatch, ref):
    def no_fetch(*args, **kwargs):
        raise AssertionError("a schema $ref was fetched")
    monkeypatch.setattr("urllib.request.urlopen", no_fetch)
    catalog_copy.edit("payment", lambda d: d["events"]["Payment_Success"]["schema"]["properties"]
                      .update(items={"$ref": ref}))
    error = _error(catalog_copy)
    assert error.key == "events.Payment_Success.schema.properties.items.$ref" and "self-contained" in error.problem


def test_a_schema_ref_inside_the_schema_is_fine(catalog_copy):
    def local_ref(doc):
        schema = doc["events"]["Payment_Success"]["schema"]
        schema["definitions"] = {"items": schema["properties"]["items"]}
        schema["properties"]["items"] = {"$ref": "#/definitions/items"}
    catalog_copy.edit("payment", local_ref)
    assert "Payment_Success" in load_catalog(catalog_copy.root).events


def test_a_rule_naming_a_handler_that_does_not_exist_is_refused_and_lint_says_so(catalog_copy, capsys):
    from yafdp.cli import main

    catalog_copy.edit("payment", lambda d: d["subscriptions"][0].update(handler="charge_order_twice"))
    error = _handler_error(catalog_copy)
    assert "payment.json subscriptions[0].handler" in error.problem and "charge_order_twice" in error.problem
    assert error.file.endswith("yafdp/services/payment.py")
    assert main(["lint", "--catalog", str(catalog_copy.root)]) == 2
    assert "payment.json subscriptions[0].handler" in capsys.readouterr().err


def test_an_entry_point_that_does_not_exist_is_refused(catalog_copy):
    catalog_copy.edit("order", lambda d: d["entrypoints"][0].update(name="place_orders"))
    assert "order.json entrypoints[0].name" in _handler_error(catalog_copy).problem


def _handler_error(catalog_copy) -> CatalogError:
    """The catalog loads (its files are well formed); the services layer refuses the handler it names."""
    with pytest.raises(CatalogError) as caught:
        load_catalog(catalog_copy.root).code.check()
    return caught.value


@pytest.mark.parametrize("change, key", [
    (lambda m: m["restaurants"]["res-napoli"].update(menu=["margherita"]), "restaurants.res-napoli.menu"),
    (lambda m: m["restaurants"]["res-napoli"]["menu"]["margherita"].update(price="cheap"),
     "restaurants.res-napoli.menu.margherita.price"),
    (lambda m: m["zones"]["zone-centre"].update(couriers="cou-ada"), "zones.zone-centre.couriers"),
    (lambda m: m.update(restaurants=[]), "restaurants"),
    (lambda m: m["payment_tokens"].pop("declined_prefixes"), "payment_tokens"),
])
def test_a_marketplace_of_the_wrong_shape_is_refused_naming_the_key(catalog_copy, change, key):
    from yafdp.catalog.marketplace import load_marketplace

    file = catalog_copy.root / "marketplace.json"
    market = json.loads(file.read_text())
    change(market)
    file.write_text(json.dumps(market))
    with pytest.raises(CatalogError) as info:
        load_marketplace(catalog_copy.root)
    assert info.value.file.endswith("marketplace.json") and info.value.key == key
