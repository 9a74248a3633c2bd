"""The catalog as AsyncAPI 3.1.0: one document for the platform, one per service as EventCatalog's AsyncAPI
generator imports them, each valid against the published AsyncAPI 3.1.0 JSON Schema (tests/unit/data)."""

import json
import re
from pathlib import Path

import jsonschema
import pytest

from yafdp.analysis.asyncapi import asyncapi_document, service_documents
from yafdp.catalog import load_catalog
from yafdp.cli import main

SCHEMA = json.loads((Path(__file__).parent / "data" / "asyncapi-3.1.0.schema.json").read_text(encoding="utf-8"))
CATALOG = load_catalog()
DOCUMENTS = {"(platform)": asyncapi_document(CATALOG), **service_documents(CATALOG)}


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(document, ref):
    node = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_document_is_valid_asyncapi_3_1_0_and_its_references_resolve(name):
    document = DOCUMENTS[name]
    assert document["asyncapi"] == "3.1.0"
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message[:200]}" for e in errors[:5]]
    for ref in _refs(document):
        _resolve(document, ref)


def test_the_schema_refuses_what_asyncapi_refuses():  # the validator is not vacuous
    broken = json.loads(json.dumps(DOCUMENTS["payment"]))
    broken["operations"]["payment.send.Payment_Success"]["action"] = "publish"  # an AsyncAPI 2 word
    del broken["info"]["version"]
    messages = [e.message for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(broken)]
    assert messages


def test_the_platform_document_lists_every_event_as_a_message_with_its_schema():
    messages = DOCUMENTS["(platform)"]["components"]["messages"]
    assert set(messages) == set(CATALOG.events)
    assert messages["Order_Initiated"]["payload"]["required"] == CATALOG.events["Order_Initiated"].schema["required"]


def test_the_platform_document_has_send_and_receive_operations():
    operations = DOCUMENTS["(platform)"]["operations"]
    assert operations["payment-charges-order"]["action"] == "receive"
    assert operations["payment.send.Payment_Success"]["action"] == "send"
    assert all(re.match(r"^[\w.\-]+$", name) for name in operations)


def test_each_service_document_sends_what_the_service_publishes_and_receives_what_its_rules_match():
    for name, service in CATALOG.services.items():
        document = DOCUMENTS[name]
        assert document["info"]["title"] == name and document["info"]["description"] == service.description
        sent = {op["messages"][0]["$ref"].rsplit("/", 1)[1] for op in document["operations"].values()
                if op["action"] == "send"}
        assert sent == set(service.may_emit())
        for sub in service.subscriptions:
            operation = document["operations"][sub.rule]
            assert operation["action"] == "receive" and operation["x-eventbridge-pattern"] == dict(sub.pattern)
            assert [m["$ref"].rsplit("/", 1)[1] for m in operation["messages"]] == CATALOG.matched_events(sub)


def test_each_message_contract_is_provided_by_its_producers_document_only():
    """EventCatalog writes a message from the document that provides it and skips it where it is consumed."""
    provided = {}
    for name in CATALOG.services:
        for message, body in DOCUMENTS[name]["components"]["messages"].items():
            assert body["x-eventcatalog-message-type"] == "event"
            assert body["payload"] == dict(CATALOG.events[message].schema)
            if body["x-eventcatalog-role"] == "provider":
                assert CATALOG.events[message].service == name
                provided.setdefault(message, []).append(name)
            else:
                assert body["x-eventcatalog-role"] == "consumer" and CATALOG.events[message].service != name
    sent = {e for s in CATALOG.services.values() for e in s.may_emit()}
    assert {m: len(s) for m, s in provided.items()} == {m: 1 for m in sent}


def test_the_command_writes_one_file_per_service_and_keeps_files_it_would_replace(tmp_path, capsys):
    folder = tmp_path / "asyncapi"
    assert main(["catalog", "--format", "asyncapi", "--per-service", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.asyncapi.json" for s in CATALOG.services)
    assert json.loads((folder / "payment.asyncapi.json").read_text()) == DOCUMENTS["payment"]
    (folder / "payment.asyncapi.json").write_text("mine")
    assert main(["catalog", "--format", "asyncapi", "--per-service", str(folder)]) == 2
    assert "payment.asyncapi.json" in capsys.readouterr().err and (folder / "payment.asyncapi.json").read_text() == "mine"
    assert main(["catalog", "--format", "asyncapi", "--per-service", str(folder), "--force"]) == 0
    assert json.loads((folder / "payment.asyncapi.json").read_text()) == DOCUMENTS["payment"]


@pytest.mark.parametrize("arguments, said", [
    (["--per-service", "x"], "argument --per-service: does nothing without --format asyncapi"),
    (["--format", "asyncapi", "--force"], "argument --force: does nothing without --per-service"),
])
def test_options_that_do_nothing_are_refused_naming_them(arguments, said, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["catalog", *arguments])
    assert stopped.value.code == 2 and said in capsys.readouterr().err
