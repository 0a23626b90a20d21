"""Load-time checks against the schema, and `load_rule` for every input form."""

from __future__ import annotations

import pytest

from segsync.model import FieldSpec, FieldType, Schema
from segsync.rules import ast
from segsync.rules.parser import RuleError, RuleSyntaxError
from segsync.rules.typecheck import RuleTypeError, check_rule, load_rule, parse_iso

SCHEMA = Schema(fields={
    "first_name": FieldSpec(type=FieldType.TEXT),
    "phone": FieldSpec(type=FieldType.PHONE),
    "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE", "DE")),
    "language": FieldSpec(type=FieldType.ENUM),
    "lifetime_value": FieldSpec(type=FieldType.NUMBER),
    "orders": FieldSpec(type=FieldType.INTEGER),
    "vip": FieldSpec(type=FieldType.BOOLEAN),
    "birthday": FieldSpec(type=FieldType.DATE),
    "last_open": FieldSpec(type=FieldType.DATETIME, read_only=True),
    "interests": FieldSpec(type=FieldType.MULTI_ENUM, options=("news", "offers")),
    "open_rate": FieldSpec(type=FieldType.NUMBER, read_only=True),
})


def _problems(text: str) -> list[str]:
    with pytest.raises(RuleTypeError) as info:
        load_rule(text, SCHEMA)
    return [issue.message for issue in info.value.issues]


@pytest.mark.parametrize(
    "text",
    [
        'first_name = "Zoë" and first_name contains "o" and first_name in ["A", "B"]',
        'phone starts_with "+33"',
        'country = "FR" and country in [FR, BE] and language = "pt-BR"',
        "lifetime_value >= 10 and orders between 1 and 5 and orders < 2.5",
        "vip = true and vip != false",
        'birthday before 2000-01-01 and birthday after "1990-01-01T00:00:00Z"',
        "last_open within 7 days and last_open between 2024-01-01 and 2024-01-01",
        "last_open >= 2024-01-01 and birthday = 1990-05-04",
        'interests has news and tags has "anything" and interests is not set',
        'consent = subscribed and consent in [pending, bounced] and email ends_with ".fr"',
        "open_rate > 0.5 and true",
    ],
)
def test_well_typed_rules_load(text: str) -> None:
    """Rules that fit the schema load unchanged (built-ins and read-only fields included)."""

    rule = load_rule(text, SCHEMA)

    assert check_rule(rule, SCHEMA) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('contry = "FR"', "unknown field 'contry' (did you mean 'country'?)"),
        ('Country = "FR"', "unknown field 'Country' (did you mean 'country'?)"),
        ("zzz is set", "unknown field 'zzz'"),
        ('lifetime_value > "100"',
         "number field 'lifetime_value' compared with the string \"100\""),
        ("lifetime_value = true", "number field 'lifetime_value' compared with the boolean"),
        ("first_name = 12", "text field 'first_name' compared with the number 12; quote it"),
        ('first_name < "b"', "'<' does not apply to text field 'first_name'"),
        ('country has "FR"', "'has' does not apply to enum field 'country' (enum); it needs "
                             "a multi-valued field"),
        ("first_name within 3 days", "'within' does not apply to text field 'first_name'"),
        ('lifetime_value before "2024-01-01"', "'before' does not apply to number field"),
        ('country contains "F"', "'contains' does not apply to enum field 'country'"),
        ('interests = "news"', "'=' does not apply to multi-valued field 'interests' "
                               "(multi_enum); it needs a single-valued field; use "
                               "'interests has \"...\"'"),
        ('tags != "vip"', "'!=' does not apply to multi-valued field 'tags'"),
        ('vip between 1 and 2', "'between' does not apply to boolean field 'vip'"),
        ('country = "ES"', "\"ES\" is not an option of 'country'; expected one of FR, BE, DE"),
        ('country in ["FR", "fr"]', "\"fr\" is not an option of 'country' (did you mean "
                                    "'FR'?)"),
        ("consent = subscribd", "\"subscribd\" is not a consent status (did you mean "
                                "'subscribed'?)"),
        ('interests has "new"', "\"new\" is not an option of 'interests' (did you mean "
                                "'news'?)"),
        ("vip = 1", "boolean field 'vip' compared with the number 1; use true or false"),
        ('birthday before "31/01/2024"', "use an ISO date such as 2024-01-31"),
        ("birthday after 2024-02-30", "use an ISO date"),
        ("birthday = 5", "date field 'birthday' compared with the number 5"),
        ("orders between 5 and 1", "'between' bounds are in the wrong order"),
        ("last_open between 2024-02-01 and 2024-01-31T23:00:00Z", "wrong order"),
    ],
)
def test_type_errors(text: str, message: str) -> None:
    """Each kind of type error is reported with a message that says what to do."""

    problems = _problems(text)

    assert len(problems) == 1
    assert message in problems[0]


def test_all_problems_reported_with_positions() -> None:
    """Every problem is listed, in order, each with line, column and a caret."""

    text = 'contry = "FR"\n  and orders > "5" and interests has "x"'

    with pytest.raises(RuleTypeError) as info:
        load_rule(text, SCHEMA)
    err = info.value

    assert [(i.span.line, i.span.column) for i in err.issues if i.span] == [
        (1, 1), (2, 16), (2, 38)
    ]
    assert (err.line, err.column) == (1, 1)
    assert str(err) == (
        "3 problems in rule:\n"
        "line 1, column 1: unknown field 'contry' (did you mean 'country'?)\n"
        "  contry = \"FR\"\n"
        "  ^^^^^^\n"
        "line 2, column 16: number field 'orders' compared with the string \"5\"\n"
        "    and orders > \"5\" and interests has \"x\"\n"
        "                 ^^^\n"
        "line 2, column 38: \"x\" is not an option of 'interests'; expected one of news, "
        "offers\n"
        "    and orders > \"5\" and interests has \"x\"\n"
        "                                       ^^^"
    )


def test_operator_error_points_at_the_condition() -> None:
    """An operator that does not apply underlines the whole condition."""

    with pytest.raises(RuleTypeError) as info:
        load_rule('vip = true and (first_name within 3 days)', SCHEMA)

    assert info.value.issues[0].path == (1,)
    assert (info.value.line, info.value.column) == (1, 17)
    assert str(info.value).endswith("\n" + " " * 18 + "^" * 24)


def test_in_list_error_points_at_the_bad_value() -> None:
    """A bad value in a list is underlined alone."""

    with pytest.raises(RuleTypeError) as info:
        load_rule('country in ["FR", "XX"]', SCHEMA)

    assert (info.value.line, info.value.column) == (1, 19)


def test_structured_forms_load() -> None:
    """A dict, JSON text and an AST load like text, and are checked the same way."""

    expected = ast.Compare(field="country", op=ast.CompareOp.EQ, value="FR")
    as_dict = {"type": "compare", "field": "country", "op": "=", "value": "FR"}

    assert load_rule(as_dict, SCHEMA) == expected
    assert load_rule(ast.rule_to_json(expected), SCHEMA) == expected
    assert load_rule(expected, SCHEMA) == expected
    assert load_rule('country = "FR"', SCHEMA) == expected


def test_structured_type_errors_name_the_node_path() -> None:
    """Without text, issues say where in the tree they are."""

    data = {"type": "and", "items": [
        {"type": "is_set", "field": "country"},
        {"type": "not", "item": {"type": "has", "field": "country", "value": "FR"}},
    ]}

    with pytest.raises(RuleTypeError) as info:
        load_rule(data, SCHEMA)

    assert info.value.issues[0].path == (1, 0)
    assert "at node 1/0: 'has' does not apply" in str(info.value)
    assert info.value.line is None


def test_malformed_structured_rule() -> None:
    """A dict that is not a rule is a RuleError naming the bad part."""

    with pytest.raises(RuleError, match=r"not a rule in structured form: .*op"):
        load_rule({"type": "compare", "field": "x", "op": "~", "value": 1}, SCHEMA)
    with pytest.raises(RuleError, match="not a rule in structured form"):
        load_rule("{not json", SCHEMA)


def test_syntax_errors_pass_through_load_rule() -> None:
    """load_rule raises the parser's error for text that is not a rule."""

    with pytest.raises(RuleSyntaxError):
        load_rule("country =", SCHEMA)
    assert issubclass(RuleTypeError, RuleError)
    assert issubclass(RuleSyntaxError, ValueError)


def test_parse_iso() -> None:
    """ISO dates stay dates; datetimes without an offset are UTC; other text is None."""

    assert str(parse_iso("2024-01-31")) == "2024-01-31"
    assert str(parse_iso("2024-01-31T08:00:00")) == "2024-01-31 08:00:00+00:00"
    assert str(parse_iso("2024-01-31T08:00:00+02:00")) == "2024-01-31 08:00:00+02:00"
    assert parse_iso("20240131") is None
    assert parse_iso("2024-13-01") is None
