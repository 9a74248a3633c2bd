"""EventBridge's own answers, from the shared conformance corpus, replayed against ``yafdp.patterns``.

The corpus lives next to the repository (``../shared/eventbridge-patterns``) and is not part of it;
without it these tests are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yafdp.patterns import PatternError, compile_pattern

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "eventbridge-patterns"
CASES = CORPUS / "cases"
SNAPSHOT = CORPUS / "aws-error-messages.snapshot.json"
NO_CORPUS = f"the EventBridge conformance corpus is not at {CORPUS} (it sits beside a development checkout)"


def _case_files() -> list:
    if not CASES.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_CORPUS), id="no-corpus")]
    return [pytest.param(path, id=path.stem) for path in sorted(CASES.glob("*.json5"))]


def _recorded_messages() -> dict[str, str]:
    """EventBridge's error message for each ``_EXC`` case and each invalid-JSON pattern, by name."""
    messages = {}
    for test_id, record in json.loads(SNAPSHOT.read_text(encoding="utf-8")).items():
        if "[" not in test_id:
            continue
        name = test_id.split("[", 1)[1][:-1]
        for content in record["recorded-content"].values():
            error = content.get("exception_message", content).get("Error", {})
            if error.get("Code") == "InvalidEventPatternException":
                messages[name] = error["Message"]
    return messages


@pytest.fixture(scope="module")
def recorded_messages() -> dict[str, str]:
    if not SNAPSHOT.is_file():
        pytest.skip(NO_CORPUS)
    return _recorded_messages()


@pytest.mark.parametrize("case", _case_files())
def test_agrees_with_eventbridge(case: Path, recorded_messages: dict[str, str]):
    json5 = pytest.importorskip("json5")
    document = json5.loads(case.read_text(encoding="utf-8"))
    name = case.stem
    if name.endswith("_EXC"):
        with pytest.raises(PatternError) as raised:
            compile_pattern(document["EventPattern"])
        assert str(raised.value) == recorded_messages[name]
    else:
        matched = compile_pattern(document["EventPattern"]).matches(document["Event"])
        assert matched is not name.endswith("_NEG")


def test_repeated_key_in_pattern_behaves_as_in_eventbridge():
    # The pattern names "location" twice; EventBridge reads it as a stream, so the second list
    # replaces the first for that field. Given as text, the duplicate survives to the compiler.
    if not CASES.is_dir():
        pytest.skip(NO_CORPUS)
    pattern = (CASES / "complex_multi_key_event_pattern.json").read_text(encoding="utf-8")
    event = json.loads((CASES / "complex_multi_key_event.json").read_text(encoding="utf-8"))
    assert compile_pattern(pattern).matches(event)


@pytest.mark.parametrize(
    "text",
    [
        "this is valid json but not a dict",
        "{'bad': 'quotation'}",
        '{"not": closed mark"',
        '["not", "a", "dict", "but valid json"]',
    ],
)
def test_malformed_pattern_text_is_reported_like_eventbridge(text: str, recorded_messages: dict[str, str]):
    with pytest.raises(PatternError) as raised:
        compile_pattern(text)
    assert str(raised.value) == recorded_messages[text]
