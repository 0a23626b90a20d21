"""The text form: every operator, precedence, literals, and syntax errors with positions."""

from __future__ import annotations

import pytest

from segsync.rules import ast
from segsync.rules.parser import RuleSyntaxError, parse, parse_with_spans

C = ast.Compare
OP = ast.CompareOp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('country = "FR"', C(field="country", op=OP.EQ, value="FR")),
        ('country == "FR"', C(field="country", op=OP.EQ, value="FR")),
        ('country != "FR"', C(field="country", op=OP.NE, value="FR")),
        ("age < 18", C(field="age", op=OP.LT, value=18)),
        ("age <= 18", C(field="age", op=OP.LE, value=18)),
        ("open_rate > 0.5", C(field="open_rate", op=OP.GT, value=0.5)),
        ("open_rate >= -1.5e2", C(field="open_rate", op=OP.GE, value=-150.0)),
        ("vip = true", C(field="vip", op=OP.EQ, value=True)),
        ("vip = false", C(field="vip", op=OP.EQ, value=False)),
        ("consent = subscribed", C(field="consent", op=OP.EQ, value="subscribed")),
        ("signup = 2024-01-31", C(field="signup", op=OP.EQ, value="2024-01-31")),
        ('country in ["FR", "BE"]', ast.In(field="country", values=("FR", "BE"))),
        ("orders in [1, 2.5, true,]", ast.In(field="orders", values=(1, 2.5, True))),
        ("country in []", ast.In(field="country", values=())),
        ('country not in ["FR"]', ast.In(field="country", values=("FR",), negated=True)),
        ('email contains "@gmail"',
         ast.TextMatch(field="email", op=ast.TextOp.CONTAINS, value="@gmail")),
        ('name starts_with "An"',
         ast.TextMatch(field="name", op=ast.TextOp.STARTS_WITH, value="An")),
        ('email ends_with ".fr"',
         ast.TextMatch(field="email", op=ast.TextOp.ENDS_WITH, value=".fr")),
        ("phone is set", ast.IsSet(field="phone")),
        ("phone is not set", ast.IsSet(field="phone", negated=True)),
        ('tags has "vip"', ast.Has(field="tags", value="vip")),
        ("interests has news", ast.Has(field="interests", value="news")),
        ("last_open within 30 days", ast.Within(field="last_open", amount=30)),
        ("last_open within 1 day", ast.Within(field="last_open", amount=1)),
        ("last_open within 12 hours",
         ast.Within(field="last_open", amount=12, unit=ast.TimeUnit.HOURS)),
        ("last_open within 1 hour",
         ast.Within(field="last_open", amount=1, unit=ast.TimeUnit.HOURS)),
        ('signup before "2024-01-31"',
         ast.DateCmp(field="signup", op=ast.DateOp.BEFORE, value="2024-01-31")),
        ("signup after 2024-01-31T08:30:00Z",
         ast.DateCmp(field="signup", op=ast.DateOp.AFTER, value="2024-01-31T08:30:00Z")),
        ("signup after 2024-01-31T08:30:00+02:00",
         ast.DateCmp(field="signup", op=ast.DateOp.AFTER, value="2024-01-31T08:30:00+02:00")),
        ("ltv between 100 and 500", ast.Between(field="ltv", low=100, high=500)),
        ("signup between 2024-01-01 and \"2024-03-31\"",
         ast.Between(field="signup", low="2024-01-01", high="2024-03-31")),
        ("true", ast.Const(value=True)),
        ("false", ast.Const(value=False)),
        ("`first name` = \"Zoë\"", C(field="first name", op=OP.EQ, value="Zoë")),
        ("`in` is set", ast.IsSet(field="in")),
        ("address.city = Paris", C(field="address.city", op=OP.EQ, value="Paris")),
        ("prénom = \"Zoë\"", C(field="prénom", op=OP.EQ, value="Zoë")),
    ],
)
def test_every_operator_parses(text: str, expected: ast.Rule) -> None:
    """Each operator and literal form parses to its node."""

    assert expected == parse(text)


def test_string_escapes() -> None:
    """Strings take JSON escapes."""

    rule = parse(r'note = "say \"hi\"\n\ttab \\ \u00e9"')

    assert rule == C(field="note", op=OP.EQ, value='say "hi"\n\ttab \\ é')


def test_precedence_or_and_not() -> None:
    """`or` binds loosest, then `and`, then `not`, then a condition."""

    rule = parse("a = 1 or not b = 2 and c = 3")

    assert rule == ast.Or(items=(
        C(field="a", op=OP.EQ, value=1),
        ast.And(items=(ast.Not(item=C(field="b", op=OP.EQ, value=2)),
                       C(field="c", op=OP.EQ, value=3))),
    ))


def test_chains_are_flat_and_parentheses_group() -> None:
    """`a and b and c` is one And; a parenthesised group stays its own node."""

    a, b, c = (C(field=n, op=OP.EQ, value=1) for n in "abc")

    assert parse("a = 1 and b = 1 and c = 1") == ast.And(items=(a, b, c))
    assert parse("(a = 1 and b = 1) and c = 1") == ast.And(items=(ast.And(items=(a, b)), c))
    assert parse("(a = 1 or b = 1) and c = 1") == ast.And(items=(ast.Or(items=(a, b)), c))
    assert parse("not (a = 1 or b = 1)") == ast.Not(item=ast.Or(items=(a, b)))
    assert parse("((a = 1))") == a


def test_between_and_is_not_a_connective() -> None:
    """The `and` of `between` belongs to it; the next `and` is the connective."""

    rule = parse("x between 1 and 2 and y = 3")

    assert rule == ast.And(items=(ast.Between(field="x", low=1, high=2),
                                  C(field="y", op=OP.EQ, value=3)))


def test_multiline_rule() -> None:
    """Newlines are whitespace."""

    rule = parse('country = "FR"\n  and tags has "vip"\n')

    assert rule == ast.And(items=(C(field="country", op=OP.EQ, value="FR"),
                                  ast.Has(field="tags", value="vip")))


def _error(text: str) -> RuleSyntaxError:
    with pytest.raises(RuleSyntaxError) as info:
        parse(text)
    return info.value


def test_error_has_line_column_and_caret() -> None:
    """The message shows line:column, the source line, and carets under the bad token."""

    err = _error('country = "FR"\nand open_rate >> 0.5')

    assert (err.line, err.column) == (2, 16)
    assert str(err) == (
        "line 2, column 16: expected a value after '>', found '>'\n"
        "  and open_rate >> 0.5\n"
        "                 ^"
    )


def test_caret_spans_the_whole_token() -> None:
    """A multi-character token is underlined over its width."""

    err = _error('email startswith "a"')

    assert "did you mean 'starts_with'?" in err.message
    assert str(err).endswith("  email startswith \"a\"\n        ^^^^^^^^^^")


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("", 1, "empty rule"),
        ("country =", 10, "expected a value after '='"),
        ('country = "FR" adn x = 1', 16, "did you mean 'and'?"),
        ("(a = 1", 7, "to close the '(' opened at line 1, column 1"),
        ("a = 1)", 6, "unmatched ')'"),
        ("a in [1, 2", 11, "expected ']' to close the list opened at line 1, column 6"),
        ("a in [1 2]", 9, "expected ',' or ']'"),
        ("a in 1", 6, "expected '['"),
        ("a = 'x'", 5, "double quotes"),
        ('a = "open', 5, "unterminated string"),
        ("a within 3 weeks", 12, "expected 'days' or 'hours'"),
        ("a within 2.5 days", 10, "whole number"),
        ("a within -1 days", 10, "whole number"),
        ("a before 12", 10, "expected a date"),
        ("a is nothing", 6, "expected 'set' or 'not set'"),
        ("a is not there", 10, "expected 'set'"),
        ("a between 1 or 2", 13, "expected 'and' between the bounds"),
        ("a = 1 && b = 2", 7, "did you mean 'and'?"),
        ("not = 1", 5, "expected a field name, found '='"),
        ("and = 1", 1, "keyword 'and'"),
        ("a contains 5", 12, "expected a string"),
        ("a has", 6, "expected a string"),
        ("a", 2, "expected an operator after field 'a'"),
        ("()", 2, "empty parentheses"),
        ('a = "bad \\q escape"', 5, "invalid escape"),
        ("a = 1.2.3", 5, "invalid number"),
        ("a = @", 5, "unexpected character '@'"),
        ("a ! b", 3, "only valid in '!='"),
        ("`` = 1", 1, "empty field name"),
        ("a = 1e999", 5, "number out of range"),
        ("a = " + "9" * 5000, 5, "number too long"),
    ],
)
def test_syntax_errors(text: str, column: int, fragment: str) -> None:
    """Each kind of syntax error names the problem at the right column."""

    err = _error(text)

    assert fragment in err.message
    assert (err.line, err.column) == (1, column)
    assert str(err).startswith(f"line 1, column {column}: ")


def test_spans_by_path() -> None:
    """Every node's span is kept by its path, with field and value spans on leaves."""

    source = 'a = 1 and (b in [2, 3] or not c is set)'
    parsed = parse_with_spans(source)

    def text(span: object) -> str:
        return source[span.start:span.end]  # type: ignore[attr-defined]

    assert text(parsed.spans[()].node) == source
    assert text(parsed.spans[(0,)].node) == "a = 1"
    assert text(parsed.spans[(0,)].field) == "a"
    assert [text(s) for s in parsed.spans[(1, 0)].values] == ["2", "3"]
    assert text(parsed.spans[(1,)].node) == "(b in [2, 3] or not c is set)"
    assert text(parsed.spans[(1, 1)].node) == "not c is set"
    assert text(parsed.spans[(1, 1, 0)].node) == "c is set"


def test_comments_run_to_the_end_of_the_line() -> None:
    """`#` starts a comment, except inside a string."""

    rule = parse('a = "#1"  # first\n# whole line\nand b is set # last')

    assert rule == ast.And(items=(C(field="a", op=OP.EQ, value="#1"), ast.IsSet(field="b")))


def test_nesting_is_bounded() -> None:
    """Nesting beyond the limit is a syntax error, not a crash."""

    assert parse("(" * 100 + "a = 1" + ")" * 100) == C(field="a", op=OP.EQ, value=1)
    with pytest.raises(RuleSyntaxError, match="nested deeper than 100 levels"):
        parse("(" * 101 + "a = 1" + ")" * 101)
    with pytest.raises(RuleSyntaxError, match="nested deeper than 100 levels"):
        parse("not " * 101 + "a = 1")
