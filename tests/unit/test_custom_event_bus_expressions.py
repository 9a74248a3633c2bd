"""The Custom Event Bus's target-parameter expressions: the ones answered without jsonata-python's interpreter
(string literals, paths of field names from ``$events``, ``&``) give what the interpreter gives, and whatever
they cannot answer is left to it."""

import jsonata
import pytest

from yafdp.custom_event_bus import expressions
from yafdp.custom_event_bus.expressions import TransformationError, evaluate, parameter_value

PARTS = {"Data": {"detail": {"order_id": "ord-1", "items": [{"sku": "a"}, {"sku": "b"}], "total": 12.5}},
         "Metadata": {"source": "yafdp.orders"},
         "SystemMetadata": {"EventGroupId": "ord-1", "aws:EventId": "e-1", "aws:DeliveryType": "LIVE"}}


def interpreted(text: str, events) -> object:
    expression = jsonata.Jsonata(text)
    frame = expression.create_frame()
    frame.bind("events", events)
    return expression.evaluate(None, frame)


@pytest.mark.parametrize("text", [
    "$events.SystemMetadata.EventGroupId",
    '$events.SystemMetadata."aws:DeliveryType"',
    '$events.SystemMetadata."aws:EventId" & "#" & "yafdp-payment-charges-order"',
    '"literal"',
    '$events.Data.detail.order_id & "/" & $events.Metadata.source',
])
def test_an_expression_answered_directly_gives_what_the_interpreter_gives(text):
    direct = expressions._direct(jsonata.Jsonata(text).ast)
    assert direct is not None and direct(PARTS) == interpreted(text, PARTS) == evaluate(text, PARTS)


@pytest.mark.parametrize("text", [
    "$events.Data.detail.items.sku",  # an array on the way: the interpreter maps over it
    "$events.Data.detail.total",  # not a string
    "$events.Data.detail.missing",  # undefined
    '$events.Data.detail.total & "x"',  # & turns a number into a string its own way
    '$events.Data.detail.missing & "x"',
])
def test_what_a_direct_path_cannot_answer_is_left_to_the_interpreter(text):
    direct = expressions._direct(jsonata.Jsonata(text).ast)
    assert direct is not None and direct(PARTS) is expressions._UNANSWERED
    assert evaluate(text, PARTS) == interpreted(text, PARTS)


@pytest.mark.parametrize("text", ["$events.Data.detail.items[0].sku", "$uppercase($events.Metadata.source)",
                                  "$events.Data.detail.items#$i.sku", "$events.(Metadata)", "$.Metadata.source",
                                  "$events.Data.detail.items^(sku)", '$events.Metadata.source = "x"'])
def test_other_expressions_are_the_interpreters(text):
    assert expressions._direct(jsonata.Jsonata(text).ast) is None
    assert evaluate(text, PARTS) == interpreted(text, PARTS)


def test_a_parameter_that_is_not_a_string_is_a_transformation_failure_either_way():
    with pytest.raises(TransformationError, match="returned float"):
        parameter_value("{% $events.Data.detail.total %}", PARTS)
    assert parameter_value("{% $events.Data.detail.items.sku & '' %}", PARTS) == interpreted(
        "$events.Data.detail.items.sku & ''", PARTS)
