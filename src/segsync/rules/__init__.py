"""The segment rule language: AST, parser, printer, type checker, evaluator, normal forms.

``load_rule(text_or_dict, schema)`` is the front door: it parses text (or loads the JSON /
YAML structured form) and checks it against the schema. ``evaluate`` is the reference
semantics every platform compiler must match (see docs/rules.md).
"""

from segsync.rules.ast import (
    And,
    Between,
    Compare,
    CompareOp,
    Const,
    DateCmp,
    DateOp,
    Has,
    In,
    IsSet,
    Not,
    Or,
    Rule,
    TextMatch,
    TextOp,
    TimeUnit,
    Within,
    field,
    has_tag,
    rule_from_json,
    rule_to_json,
)
from segsync.rules.evaluate import evaluate, text_key
from segsync.rules.generate import EXAMPLE_SCHEMA, RuleGenerator
from segsync.rules.normalize import NormalFormTooLarge, cnf, dnf, nnf, simplify
from segsync.rules.parser import (
    ParsedRule,
    RuleError,
    RuleSyntaxError,
    Span,
    parse,
    parse_with_spans,
)
from segsync.rules.printer import to_text
from segsync.rules.typecheck import RuleIssue, RuleTypeError, check_rule, load_rule

__all__ = [
    "EXAMPLE_SCHEMA",
    "And",
    "Between",
    "Compare",
    "CompareOp",
    "Const",
    "DateCmp",
    "DateOp",
    "Has",
    "In",
    "IsSet",
    "NormalFormTooLarge",
    "Not",
    "Or",
    "ParsedRule",
    "Rule",
    "RuleError",
    "RuleGenerator",
    "RuleIssue",
    "RuleSyntaxError",
    "RuleTypeError",
    "Span",
    "TextMatch",
    "TextOp",
    "TimeUnit",
    "Within",
    "check_rule",
    "cnf",
    "dnf",
    "evaluate",
    "field",
    "has_tag",
    "load_rule",
    "nnf",
    "parse",
    "parse_with_spans",
    "rule_from_json",
    "rule_to_json",
    "simplify",
    "text_key",
    "to_text",
]
