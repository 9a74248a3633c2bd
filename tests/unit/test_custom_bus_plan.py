"""The saga's plan on a Custom Event Bus: a subscriber per subscription, FIFO service queues with the event group as
MessageGroupId, delivery roles that may reach their own queue and on-failure queues only, and a catalog that asks
for what the bus cannot do refused naming the file and key."""

from __future__ import annotations

import json
import shutil

import pytest

from yafdp.catalog import CatalogError, load_catalog
from yafdp.catalog.loader import DEFAULT_DATA_DIR
from yafdp.plan import build_plan
from yafdp.plan.model import plan_resources

CATALOG = load_catalog()


def test_every_subscription_is_one_fifo_subscriber_sending_its_order_as_the_message_group():
    plan = build_plan(CATALOG, "demo", bus="custom")
    assert plan.bus_kind == "custom" and plan.rules == ()
    assert [s.subscription for s in plan.subscribers] == [s.rule for s in CATALOG.subscriptions]
    for subscriber in plan.subscribers:
        request = subscriber.request(plan, "arn:aws:events:eu-west-1:000000000000:event-busv2/demo-saga/" + "a" * 25)
        sqs = request["InvokeConfiguration"]["SqsParameters"]
        assert subscriber.type == "FIFO" and subscriber.target.queue == f"demo-{subscriber.service}.fifo"
        assert sqs["MessageGroupId"] == "{% $events.SystemMetadata.EventGroupId %}"
        assert request["RetryPolicy"] == {"MaxRetryAttempts": 5, "MaxEventAgeInSeconds": 300, "RetryStrategy": "ALL"}
        assert request["OnFailureConfiguration"]["Arn"].endswith("-dlq.fifo")
        assert json.loads(request["FilterConfiguration"]["Filters"][0]["Pattern"]) == subscriber.pattern


def test_a_delivery_role_may_send_to_its_own_queue_and_on_failure_queues_and_nothing_else():
    from parliament import analyze_policy_string

    plan = build_plan(CATALOG, "lint", account="123456789012", bus="custom")
    for service in plan.services:
        mine = [s for s in plan.subscribers if s.service == service.name]
        allowed = {r for st in service.delivery_policy["Statement"] for r in
                   ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])}
        assert allowed == {plan.queue_arn(service.queue)} | {plan.queue_arn(s.target.dead_letter_queue) for s in mine}
        findings = analyze_policy_string(json.dumps(service.delivery_policy)).findings
        assert not findings, (service.name, [(f.issue, f.detail) for f in findings])
        publish = [st for st in service.policy["Statement"] if st["Sid"] == "PublishOwnEventsOnly"]
        assert all(st["Resource"].endswith(f"event-busv2/{plan.bus}/*") for st in publish)


def test_the_plan_lists_the_bus_subscribers_and_their_queues_and_no_archive():
    kinds = {r.kind for r in plan_resources(build_plan(CATALOG, bus="custom"))}
    assert "subscriber" in kinds and "archive" not in kinds and "rule" not in kinds


@pytest.fixture
def catalog_dir(tmp_path):
    shutil.copytree(DEFAULT_DATA_DIR, tmp_path / "data")
    return tmp_path / "data"


def edit(path, change):
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize("file, change, key, says", [
    ("services/payment.json", lambda d: d["subscriptions"][0].update(subscriber={"Filters": [
        {"Scope": "SYSTEM_METADATA", "Pattern": {"EventGroupId": [{"exists": True}]}},
        {"Scope": "SYSTEM_METADATA", "Pattern": {"EventGroupId": [{"prefix": "ord-"}]}}]}),
     "subscriptions[0].subscriber.Filters[1].Scope", "at most one filter per scope"),
    ("services/payment.json", lambda d: d["subscriptions"][0].update(subscriber={"RetryPolicy": {"MaxRetryAttempts": 200}}),
     "subscriptions[0].subscriber.RetryPolicy.MaxRetryAttempts", "0 to 185"),
    ("services/payment.json", lambda d: d["subscriptions"][0]["pattern"].update(detail={"token": [{"wildcard": "tok_*"}]}),
     "subscriptions[0].pattern", "wildcard"),
    ("services/payment.json", lambda d: d["subscriptions"][0].update(target="lambda", subscriber={"InvocationType": "EVENT"}),
     "subscriptions[0].subscriber.InvocationType", "REQUEST_RESPONSE"),
    ("services/payment.json", lambda d: d["subscriptions"][0].update(subscriber={"InvocationType": "EVENT"}),
     "subscriptions[0].subscriber.InvocationType", "does nothing"),
    ("bus.json", lambda d: d["custom_event_bus"].update(queue_type="standard"),
     "subscriptions[0].subscriber.Type", "keep its order"),
    ("bus.json", lambda d: d["custom_event_bus"].update(event_group="detail.no_such_field"),
     "custom_event_bus.event_group", "not a required field"),
    ("bus.json", lambda d: d["custom_event_bus"].update(retention_days=366), "custom_event_bus.retention_days", "365"),
], ids=["two-filters-one-scope", "retries-out-of-range", "wildcard-in-a-filter", "fifo-lambda-event", "invocation-type-on-a-queue",
        "fifo-on-a-standard-queue", "group-path-missing", "retention-out-of-range"])
def test_a_catalog_asking_for_what_the_bus_cannot_do_is_refused_naming_the_file_and_key(catalog_dir, file, change, key, says):
    edit(catalog_dir / file, change)
    with pytest.raises(CatalogError) as raised:
        build_plan(load_catalog(catalog_dir), bus="custom")
    assert key in str(raised.value) and says in str(raised.value)
    assert raised.value.file.endswith(file) or file == "bus.json" and "services" in raised.value.file
