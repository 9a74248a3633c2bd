"""EventBridge's event-pattern language: compile a pattern, match events, route through a rule set.

Matching follows EventBridge (its event-ruler engine) operator by operator, including its error
messages, so the local bus routes exactly as AWS would. Standard library only: this package ships
inside the Lambda bundle.

Examples
--------
>>> from yafdp.patterns import compile_pattern
>>> compile_pattern({"detail-type": [{"prefix": "Order"}]}).matches({"detail-type": "OrderPlaced"})
True
"""

from yafdp.patterns.compile import pattern_text
from yafdp.patterns.errors import PatternError
from yafdp.patterns.pattern import Pattern, compile_pattern
from yafdp.patterns.ruleset import RuleSet

__all__ = ["Pattern", "PatternError", "RuleSet", "compile_pattern", "pattern_text"]
