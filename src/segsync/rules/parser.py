"""The text form of rules: source text -> AST (`segsync.rules.ast`).

Grammar (loosest binding first)::

    rule       := or_expr EOF
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | primary
    primary    := "(" or_expr ")" | "true" | "false" | condition
    condition  := FIELD ( ("=" | "!=" | "<" | "<=" | ">" | ">=") literal
                        | ["not"] "in" "[" [literal ("," literal)* [","]] "]"
                        | ("contains" | "starts_with" | "ends_with") text
                        | "is" ["not"] "set"
                        | "has" text
                        | "within" INTEGER ("days" | "day" | "hours" | "hour")
                        | ("before" | "after") (STRING | DATE)
                        | "between" literal "and" literal )
    literal    := STRING | NUMBER | DATE | "true" | "false" | IDENT
    text       := STRING | IDENT

``#`` starts a comment that runs to the end of the line.
FIELD is an identifier (``last_open``, ``address.city``) or any name in backquotes
(`` `first name` ``, needed for names that are keywords). STRING is double-quoted with JSON
escapes (``\\" \\\\ \\n \\t \\uXXXX``). DATE is a bare ISO date or datetime
(``2024-01-31``, ``2024-01-31T08:00:00Z``) and reads as the string of its text. A bare
IDENT literal reads as the string of its name (enum and consent values:
``consent = subscribed``).

Structure follows the text: a chain ``a and b and c`` is one `And` of three items, while
``(a and b) and c`` keeps the parenthesised group as its own `And`; ``true``/``false`` are
`Const` nodes. So `parse(to_text(rule)) == rule` for every rule whose groups have two or
more items (see `segsync.rules.printer`).

Errors raise `RuleSyntaxError` (line, column, and the source line with carets under the
offending token). `parse_with_spans` also returns where each node came from, keyed by its
path (the child indexes from the root), for errors found later (`segsync.rules.typecheck`).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from segsync.rules import ast

__all__ = [
    "KEYWORDS",
    "MAX_NESTING",
    "NodePath",
    "NodeSpans",
    "ParsedRule",
    "RuleError",
    "RuleSyntaxError",
    "Span",
    "did_you_mean",
    "parse",
    "parse_with_spans",
    "render_caret",
]

NodePath = tuple[int, ...]
"""Where a node sits in a rule: the child indexes from the root (`Not` has child 0)."""


@dataclasses.dataclass(frozen=True)
class Span:
    """A range of the source: offsets `start`..`end`, and the 1-based line/column of `start`."""

    start: int
    end: int
    line: int
    column: int


@dataclasses.dataclass(frozen=True)
class NodeSpans:
    """Where one node came from: the whole node, its field name and its literal values."""

    node: Span
    field: Span | None = None
    values: tuple[Span, ...] = ()


@dataclasses.dataclass(frozen=True)
class ParsedRule:
    """A parsed rule with its source text and the spans of its nodes by path."""

    rule: ast.Rule
    source: str
    spans: dict[NodePath, NodeSpans]


def render_caret(source: str, span: Span) -> str:
    """The source line of `span` with carets under it (clipped to that line)."""
    lines = source.split("\n")
    text = lines[span.line - 1] if 0 < span.line <= len(lines) else ""
    width = max(1, min(span.end - span.start, len(text) - (span.column - 1)))
    return f"  {text}\n  {' ' * (span.column - 1)}{'^' * width}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`" (did you mean 'x'?)"` for the closest choice, or "" when nothing is close."""
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        folded = {option.casefold(): option for option in options}
        close = [folded[m] for m in difflib.get_close_matches(word.casefold(), folded, n=1,
                                                              cutoff=0.6)]
    return f" (did you mean '{close[0]}'?)" if close else ""


class RuleError(ValueError):
    """A rule that cannot be loaded: a syntax or a type error."""


class RuleSyntaxError(RuleError):
    """Text that is not a rule. `str()` shows `line L, column C: message` and a caret line."""

    def __init__(self, message: str, source: str, span: Span) -> None:
        self.message = message
        self.source = source
        self.span = span
        self.line = span.line
        self.column = span.column
        super().__init__(f"line {span.line}, column {span.column}: {message}\n"
                         f"{render_caret(source, span)}")


class _Kind(enum.Enum):
    IDENT = "identifier"
    QUOTED_FIELD = "field name"
    STRING = "string"
    NUMBER = "number"
    DATE = "date"
    OP = "operator"
    PUNCT = "punctuation"
    EOF = "end of rule"


@dataclasses.dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str
    value: Any
    span: Span

    def describe(self) -> str:
        if self.kind is _Kind.EOF:
            return "the end of the rule"
        return f"'{self.text}'"


KEYWORDS: frozenset[str] = frozenset({
    "and", "or", "not", "in", "contains", "starts_with", "ends_with", "is", "set", "has",
    "within", "before", "after", "between", "true", "false",
})
"""Words that cannot be bare field names (write them in backquotes)."""

MAX_NESTING = 100
"""The deepest nesting of parentheses and `not` the parser accepts."""

_UNITS: dict[str, ast.TimeUnit] = {
    "days": ast.TimeUnit.DAYS,
    "day": ast.TimeUnit.DAYS,
    "hours": ast.TimeUnit.HOURS,
    "hour": ast.TimeUnit.HOURS,
}
_COMPARE_OPS: dict[str, ast.CompareOp] = {op.value: op for op in ast.CompareOp}
_TEXT_OPS: dict[str, ast.TextOp] = {op.value: op for op in ast.TextOp}
_DATE_OPS: dict[str, ast.DateOp] = {op.value: op for op in ast.DateOp}
_OPERATOR_WORDS = (
    "in", "not in", "contains", "starts_with", "ends_with", "is set", "is not set", "has",
    "within", "before", "after", "between",
)

_DATE_RE = (
    r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_TOKEN_RE = re.compile(
    rf"""
    (?P<ws>[ \t\r\n]+|\#[^\n]*)
  | (?P<date>{_DATE_RE})(?![\w.])
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)(?![\w.])
  | (?P<ident>[^\W\d][\w.]*)
  | (?P<quoted_field>`[^`\n]*`)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<op><=|>=|!=|==|=|<|>)
  | (?P<punct>[()\[\],])
    """,
    re.VERBOSE,
)


class _Lexer:
    def __init__(self, source: str) -> None:
        self.source = source
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]

    def span(self, start: int, end: int) -> Span:
        line = 0
        lo, hi = 0, len(self._line_starts) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            if self._line_starts[mid] <= start:
                line = mid
                lo = mid + 1
            else:
                hi = mid - 1
        return Span(start, end, line + 1, start - self._line_starts[line] + 1)

    def tokens(self) -> list[_Token]:
        out: list[_Token] = []
        pos = 0
        src = self.source
        while pos < len(src):
            m = _TOKEN_RE.match(src, pos)
            if m is None or m.end() == pos:
                self._bad_char(pos)
            assert m is not None
            kind_name = m.lastgroup
            text = m.group()
            span = self.span(pos, m.end())
            pos = m.end()
            if kind_name == "ws":
                continue
            out.append(self._token(kind_name or "", text, span))
        out.append(_Token(_Kind.EOF, "", None, self.span(len(src), len(src))))
        return out

    def _token(self, kind_name: str, text: str, span: Span) -> _Token:
        if kind_name == "string":
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise RuleSyntaxError(
                    "invalid escape in string (use \\\" \\\\ \\n \\t or \\uXXXX)",
                    self.source, span,
                ) from None
            return _Token(_Kind.STRING, text, value, span)
        if kind_name == "number":
            is_float = any(c in text for c in ".eE")
            try:
                number: int | float = float(text) if is_float else int(text)
            except ValueError:  # more digits than int() accepts
                raise RuleSyntaxError("number too long", self.source, span) from None
            if not math.isfinite(number):
                raise RuleSyntaxError("number out of range", self.source, span)
            return _Token(_Kind.NUMBER, text, number, span)
        if kind_name == "date":
            return _Token(_Kind.DATE, text, text, span)
        if kind_name == "quoted_field":
            if len(text) == 2:
                raise RuleSyntaxError("empty field name", self.source, span)
            return _Token(_Kind.QUOTED_FIELD, text, text[1:-1], span)
        if kind_name == "op":
            return _Token(_Kind.OP, text, "=" if text == "==" else text, span)
        if kind_name == "punct":
            return _Token(_Kind.PUNCT, text, text, span)
        return _Token(_Kind.IDENT, text, text, span)

    def _bad_char(self, pos: int) -> None:
        char = self.source[pos]
        span = self.span(pos, pos + 1)
        if char == '"':
            raise RuleSyntaxError("unterminated string", self.source, span)
        if char == "`":
            raise RuleSyntaxError("unterminated `field name`", self.source, span)
        if char == "'":
            raise RuleSyntaxError("strings use double quotes: \"...\"", self.source, span)
        if char == "!":
            raise RuleSyntaxError("'!' is only valid in '!='; negate with 'not'", self.source,
                                  span)
        if char in "&|":
            word = "and" if char == "&" else "or"
            raise RuleSyntaxError(f"unexpected '{char}' (did you mean '{word}'?)", self.source,
                                  span)
        if char.isdigit() or char in "-.":
            raise RuleSyntaxError("invalid number or date", self.source, span)
        raise RuleSyntaxError(f"unexpected character {char!r}", self.source, span)


_Built = tuple[ast.Rule, dict[NodePath, NodeSpans]]


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.lexer = _Lexer(source)
        self.toks = self.lexer.tokens()
        self.i = 0
        self.depth = 0

    # -- token helpers ---------------------------------------------------------------

    @property
    def tok(self) -> _Token:
        return self.toks[self.i]

    def peek(self, offset: int = 1) -> _Token:
        return self.toks[min(self.i + offset, len(self.toks) - 1)]

    def is_word(self, word: str, tok: _Token | None = None) -> bool:
        tok = tok or self.tok
        return tok.kind is _Kind.IDENT and tok.text == word

    def at_end(self) -> bool:
        return self.tok.kind is _Kind.EOF

    def is_punct(self, char: str) -> bool:
        return self.tok.kind is _Kind.PUNCT and self.tok.text == char

    def advance(self) -> _Token:
        tok = self.tok
        if tok.kind is not _Kind.EOF:
            self.i += 1
        return tok

    def fail(self, message: str, tok: _Token | None = None) -> RuleSyntaxError:
        return RuleSyntaxError(message, self.source, (tok or self.tok).span)

    def expect_punct(self, char: str, context: str) -> _Token:
        if not self.is_punct(char):
            raise self.fail(f"expected '{char}' {context}, found {self.tok.describe()}")
        return self.advance()

    def join(self, first: Span, last: Span) -> Span:
        return Span(first.start, last.end, first.line, first.column)

    # -- grammar (spans are recorded with paths relative to the node being built) -----

    def parse(self) -> ParsedRule:
        if self.at_end():
            raise self.fail("empty rule: expected a condition such as country = \"FR\"")
        rule, spans = self.or_expr()
        if not self.at_end():
            raise self.fail(self._trailing_message())
        return ParsedRule(rule, self.source, spans)

    def _trailing_message(self) -> str:
        tok = self.tok
        if tok.kind is _Kind.PUNCT and tok.text == ")":
            return "unmatched ')'"
        hint = did_you_mean(tok.text, ("and", "or")) if tok.kind is _Kind.IDENT else ""
        return f"expected 'and', 'or' or the end of the rule, found {tok.describe()}{hint}"

    def _group(self, kind: type[ast.And] | type[ast.Or], parts: Sequence[_Built]) -> _Built:
        if len(parts) == 1:
            return parts[0]
        spans: dict[NodePath, NodeSpans] = {}
        for index, (_, child_spans) in enumerate(parts):
            for path, span in child_spans.items():
                spans[(index, *path)] = span
        whole = self.join(parts[0][1][()].node, parts[-1][1][()].node)
        spans[()] = NodeSpans(whole)
        return kind(items=tuple(rule for rule, _ in parts)), spans

    def or_expr(self) -> _Built:
        parts = [self.and_expr()]
        while self.is_word("or"):
            self.advance()
            parts.append(self.and_expr())
        return self._group(ast.Or, parts)

    def and_expr(self) -> _Built:
        parts = [self.not_expr()]
        while self.is_word("and"):
            self.advance()
            parts.append(self.not_expr())
        return self._group(ast.And, parts)

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(f"rule nested deeper than {MAX_NESTING} levels")

    def not_expr(self) -> _Built:
        if self.is_word("not"):
            self.nest()
            start = self.advance()
            item, item_spans = self.not_expr()
            self.depth -= 1
            spans = {(0, *path): span for path, span in item_spans.items()}
            spans[()] = NodeSpans(self.join(start.span, item_spans[()].node))
            return ast.Not(item=item), spans
        return self.primary()

    def primary(self) -> _Built:
        tok = self.tok
        if self.is_punct("("):
            self.advance()
            if self.is_punct(")"):
                raise self.fail("empty parentheses: expected a condition")
            self.nest()
            rule, spans = self.or_expr()
            self.depth -= 1
            close = self.expect_punct(")", "to close the '(' opened at "
                                           f"line {tok.span.line}, column {tok.span.column}")
            if isinstance(rule, ast.And | ast.Or):
                spans[()] = NodeSpans(self.join(tok.span, close.span))
            return rule, spans
        if self.is_word("true") or self.is_word("false"):
            self.advance()
            return ast.Const(value=tok.text == "true"), {(): NodeSpans(tok.span)}
        return self.condition()

    def condition(self) -> _Built:
        ftok = self.tok
        if ftok.kind is _Kind.QUOTED_FIELD:
            name = str(ftok.value)
        elif ftok.kind is _Kind.IDENT and ftok.text not in KEYWORDS:
            name = ftok.text
        elif ftok.kind is _Kind.IDENT:
            raise self.fail(f"expected a field name, found the keyword '{ftok.text}' "
                            f"(write a field of that name as `{ftok.text}`)")
        elif ftok.kind is _Kind.EOF:
            raise self.fail("expected a condition, found the end of the rule")
        else:
            raise self.fail(f"expected a field name, found {ftok.describe()}")
        self.advance()
        node, value_spans = self.operation(name, ftok)
        last = self.toks[self.i - 1].span
        return node, {(): NodeSpans(self.join(ftok.span, last), ftok.span, value_spans)}

    def operation(self, name: str, ftok: _Token) -> tuple[ast.Rule, tuple[Span, ...]]:
        tok = self.tok
        if tok.kind is _Kind.OP:
            self.advance()
            value, span = self.literal(f"after '{tok.text}'")
            return ast.Compare(field=name, op=_COMPARE_OPS[tok.value], value=value), (span,)
        if tok.kind is not _Kind.IDENT:
            raise self.fail(self._operator_message(name))
        word = tok.text
        if word == "not" and self.is_word("in", self.peek()):
            self.advance()
            self.advance()
            values, spans = self.literal_list()
            return ast.In(field=name, values=values, negated=True), spans
        if word == "in":
            self.advance()
            values, spans = self.literal_list()
            return ast.In(field=name, values=values), spans
        if word in _TEXT_OPS:
            self.advance()
            text, span = self.text(f"after '{word}'")
            return ast.TextMatch(field=name, op=_TEXT_OPS[word], value=text), (span,)
        if word == "is":
            self.advance()
            negated = self.is_word("not")
            if negated:
                self.advance()
            if not self.is_word("set"):
                expected = "'set'" if negated else "'set' or 'not set'"
                raise self.fail(f"expected {expected} after 'is', found {self.tok.describe()}"
                                " (to compare values use '=')")
            self.advance()
            return ast.IsSet(field=name, negated=negated), ()
        if word == "has":
            self.advance()
            text, span = self.text("after 'has'")
            return ast.Has(field=name, value=text), (span,)
        if word == "within":
            return self.within(name)
        if word in _DATE_OPS:
            self.advance()
            vtok = self.tok
            if vtok.kind not in (_Kind.STRING, _Kind.DATE):
                raise self.fail(f"expected a date such as 2024-01-31 after '{word}', "
                                f"found {vtok.describe()}")
            self.advance()
            return ast.DateCmp(field=name, op=_DATE_OPS[word], value=str(vtok.value)), (
                vtok.span,
            )
        if word == "between":
            self.advance()
            low, low_span = self.literal("after 'between'")
            if not self.is_word("and"):
                raise self.fail(f"expected 'and' between the bounds of 'between', "
                                f"found {self.tok.describe()}")
            self.advance()
            high, high_span = self.literal("after 'between ... and'")
            return ast.Between(field=name, low=low, high=high), (low_span, high_span)
        raise self.fail(self._operator_message(name))

    def _operator_message(self, name: str) -> str:
        tok = self.tok
        hint = ""
        if tok.kind is _Kind.IDENT:
            hint = did_you_mean(tok.text, (*_OPERATOR_WORDS, "starts_with", "ends_with"))
        found = tok.describe()
        return (f"expected an operator after field '{name}' (= != < <= > >= in, not in, "
                f"contains, starts_with, ends_with, is set, has, within, before, after, "
                f"between), found {found}{hint}")

    def within(self, name: str) -> tuple[ast.Rule, tuple[Span, ...]]:
        self.advance()
        ntok = self.tok
        if ntok.kind is not _Kind.NUMBER or not isinstance(ntok.value, int) or ntok.value < 0:
            raise self.fail(f"expected a whole number of days or hours after 'within', "
                            f"found {ntok.describe()}")
        self.advance()
        utok = self.tok
        unit = _UNITS.get(utok.text) if utok.kind is _Kind.IDENT else None
        if unit is None:
            hint = did_you_mean(utok.text, _UNITS) if utok.kind is _Kind.IDENT else ""
            raise self.fail(f"expected 'days' or 'hours' after 'within {ntok.text}', "
                            f"found {utok.describe()}{hint}")
        self.advance()
        return ast.Within(field=name, amount=ntok.value, unit=unit), (ntok.span,)

    def literal(self, context: str) -> tuple[ast.Scalar, Span]:
        tok = self.tok
        if tok.kind in (_Kind.STRING, _Kind.NUMBER, _Kind.DATE):
            self.advance()
            return tok.value, tok.span
        if tok.kind is _Kind.IDENT and tok.text in ("true", "false"):
            self.advance()
            return tok.text == "true", tok.span
        if tok.kind is _Kind.IDENT and tok.text not in KEYWORDS:
            self.advance()
            return tok.text, tok.span
        raise self.fail(f"expected a value {context}, found {tok.describe()}")

    def text(self, context: str) -> tuple[str, Span]:
        tok = self.tok
        if tok.kind is _Kind.STRING or (tok.kind is _Kind.IDENT and tok.text not in KEYWORDS):
            self.advance()
            return str(tok.value), tok.span
        raise self.fail(f'expected a string such as "text" {context}, found {tok.describe()}')

    def literal_list(self) -> tuple[tuple[ast.Scalar, ...], tuple[Span, ...]]:
        open_tok = self.tok
        if not self.is_punct("["):
            raise self.fail(f"expected '[' to start the list of values, found "
                            f"{open_tok.describe()}")
        self.advance()
        values: list[ast.Scalar] = []
        spans: list[Span] = []
        while not self.is_punct("]"):
            if self.at_end():
                raise self.fail(f"expected ']' to close the list opened at line "
                                f"{open_tok.span.line}, column {open_tok.span.column}")
            value, span = self.literal("in the list")
            values.append(value)
            spans.append(span)
            if self.is_punct(","):
                self.advance()
            elif self.at_end():
                raise self.fail(f"expected ']' to close the list opened at line "
                                f"{open_tok.span.line}, column {open_tok.span.column}")
            elif not self.is_punct("]"):
                raise self.fail(f"expected ',' or ']' in the list, found {self.tok.describe()}")
        self.advance()
        return tuple(values), tuple(spans)


def parse_with_spans(source: str) -> ParsedRule:
    """Parse rule text, keeping the span of every node by path.

    Raises:
        RuleSyntaxError: the text is not a rule (with line, column and a caret).
    """
    return _Parser(source).parse()


def parse(source: str) -> ast.Rule:
    """Parse rule text into an AST (syntax only; `load_rule` also checks it against a schema).

    Raises:
        RuleSyntaxError: the text is not a rule (with line, column and a caret).
    """
    return _Parser(source).parse().rule
