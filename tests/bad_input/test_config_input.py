"""Invalid and hostile configuration files, through the CLI and `load_config`.

Each case of `CATALOGUE` is a file and the places its error must name (file:line[:column],
YAML path, the word at fault). Every command that reads the configuration must refuse it
with exit code 2, print every problem with its place, never a traceback and never a secret.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segsync.cli import EXIT_INVALID, app
from segsync.config import ConfigError, load_config
from segsync.state import SQLiteStateStore

runner = CliRunner()

MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us21"
HUBSPOT_TOKEN = "pat-na1-SECRET-0000-1111-2222-333333333333"

HEAD = f"""\
state: sqlite:///state.db
schema:
  first_name: text
  country: {{type: enum, options: [FR, BE, DE]}}
  lifetime_value: number
  last_purchase_at: date
platforms:
  mailchimp: {{api_key: "{MAILCHIMP_KEY}", list_id: a1b2c3}}
"""


@dataclasses.dataclass(frozen=True)
class Case:
    """A bad file and the fragments its error must contain."""

    id: str
    text: str | bytes
    names: tuple[str, ...]


def segments(body: str) -> str:
    return HEAD + "segments:\n" + body


CATALOGUE = [
    Case(
        "malformed_yaml",
        HEAD + "segments:\n  a: {rule: 'country = \"FR\"'\n  b: x\n",
        ("cfg.yaml:11:", "YAML syntax error"),
    ),
    Case("tab_indented_yaml", HEAD + "segments:\n\ta:\n", ("cfg.yaml:10:", "YAML")),
    Case("not_a_mapping", "- a\n- b\n", ("cfg.yaml:1:1", "mapping")),
    Case("not_utf8", b"state: \xff\xfe\x00 garbage\n", ("cfg.yaml:1", "UTF-8")),
    Case("unknown_top_level_key", HEAD + "segmnts: {}\n", ("cfg.yaml:9:", "segmnts")),
    Case(
        "unknown_platform_key",
        HEAD + "  hubspot: {token: x, api_version: v3, tokn: y}\n",
        ("cfg.yaml:9:", "platforms.hubspot.tokn", "token"),
    ),
    Case(
        "unknown_platform",
        HEAD + "  hubspt: {token: x}\n",
        ("cfg.yaml:9:", "platforms.hubspt", "hubspot"),
    ),
    Case(
        "unknown_field_type",
        HEAD.replace("first_name: text", "first_name: txt"),
        ("cfg.yaml:3:", "schema.first_name", "text"),
    ),
    Case(
        "unknown_field_in_rule",
        segments("  a:\n    rule: 'contry = \"FR\"'\n"),
        ("cfg.yaml:11:", "segments.a.rule", "contry", "country"),
    ),
    Case(
        "unknown_operator",
        segments("  a:\n    rule: 'country ~= \"FR\"'\n"),
        ("cfg.yaml:11:", "segments.a.rule", "1:9", "~"),
    ),
    Case(
        "unknown_operator_word",
        segments("  a:\n    rule: 'country resembles \"FR\"'\n"),
        ("cfg.yaml:11:", "segments.a.rule", "resembles"),
    ),
    Case(
        "type_mismatch_number",
        segments("  a:\n    rule: 'lifetime_value > \"lots\"'\n"),
        ("cfg.yaml:11:", "segments.a.rule", "lifetime_value", '"lots"'),
    ),
    Case(
        "type_mismatch_date",
        segments("  a:\n    rule: 'first_name within 7 days'\n"),
        ("cfg.yaml:11:", "segments.a.rule", "first_name"),
    ),
    Case(
        "enum_value_not_an_option",
        segments("  a:\n    rule: 'country = \"XX\"'\n"),
        ("cfg.yaml:11:", "segments.a.rule", "XX"),
    ),
    Case(
        "duplicate_segment_names",
        segments("  a:\n    rule: 'country = \"FR\"'\n  a:\n    rule: 'country = \"BE\"'\n"),
        ("cfg.yaml:12:", "duplicate", "'a'", "line 10"),
    ),
    Case(
        "rule_nested_too_deep",
        segments("  a:\n    rule: '" + "(" * 3000 + 'country = "FR"' + ")" * 3000 + "'\n"),
        ("cfg.yaml:11:", "segments.a.rule", "deeper"),
    ),
    Case(
        "unterminated_string",
        segments("  a:\n    rule: 'country = \"FR'\n"),
        ("cfg.yaml:11:", "segments.a.rule"),
    ),
    Case(
        "bad_segment_name",
        segments("  'drop table; --':\n    rule: 'country = \"FR\"'\n"),
        ("cfg.yaml:11:", "segments.drop table; --"),
    ),
    Case(
        "missing_environment_variable",
        HEAD + "  hubspot: {token: '${SEGSYNC_TEST_UNSET_TOKEN}'}\n",
        ("cfg.yaml:9:", "platforms.hubspot.token", "SEGSYNC_TEST_UNSET_TOKEN"),
    ),
    Case(
        "secret_of_wrong_type",
        HEAD + f"  hubspot: {{token: ['{HUBSPOT_TOKEN}']}}\n",
        ("cfg.yaml:9:", "platforms.hubspot.token"),
    ),
    Case(
        "secret_beside_an_unknown_key",
        HEAD + f"  hubspot: {{token: '{HUBSPOT_TOKEN}', colour: blue}}\n",
        ("cfg.yaml:9:", "platforms.hubspot.colour"),
    ),
    Case(
        "wrong_state_url",
        HEAD.replace("sqlite:///state.db", "mysql://root:hunter2@db/segsync"),
        ("cfg.yaml:1:", "state"),
    ),
]

SECRETS = (MAILCHIMP_KEY, HUBSPOT_TOKEN, "hunter2")


def write(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / "cfg.yaml"
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_text(case.text, encoding="utf-8")
    return path


def commands() -> list[list[str]]:
    """Every registered command that reads the configuration, with its arguments."""
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    wanted = [["check"], ["plan"], ["sync"], ["status"], ["segments", "list"]]
    return [cmd for cmd in wanted if cmd[0] in names or cmd[0] == "segments"]


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda c: c.id)
def test_check_names_the_place_of_each_problem(tmp_path: Path, case: Case) -> None:
    """`segsync check` names file:line, YAML path and the word at fault (exit 2, except a
    missing secret, which only commands that call the platform need)."""
    path = write(tmp_path, case)

    result = runner.invoke(app, ["check", "-c", str(path)], env={"COLUMNS": "200"})

    # `check` calls no platform, so a missing secret is a warning there (still located);
    # commands that call platforms refuse it (tests/test_cli_conventions.py)
    wanted = 0 if case.id == "missing_environment_variable" else EXIT_INVALID
    assert result.exit_code == wanted, result.output
    assert "Traceback" not in result.output
    for fragment in case.names:
        assert fragment in result.output, f"{fragment!r} not in:\n{result.output}"
    for secret in SECRETS:
        assert secret not in result.output


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda c: c.id)
def test_load_config_raises_one_config_error(tmp_path: Path, case: Case) -> None:
    """The library raises `ConfigError` (nothing else), its problems carrying the places."""
    path = write(tmp_path, case)

    with pytest.raises(ConfigError) as info:
        load_config(path, env={})

    text = str(info.value)
    assert all(p.file == str(path) for p in info.value.problems)
    for fragment in case.names:
        assert fragment in text
    for secret in SECRETS:
        assert secret not in text
        assert secret not in repr(info.value.problems)


@pytest.mark.parametrize("command", commands(), ids=" ".join)
def test_every_command_refuses_an_invalid_file(tmp_path: Path, command: list[str]) -> None:
    """Commands that read the configuration refuse a bad one the same way, state untouched."""
    case = next(c for c in CATALOGUE if c.id == "unknown_field_in_rule")
    state = tmp_path / "state.db"
    SQLiteStateStore(state).close()  # a store that exists already
    assert isinstance(case.text, str)
    path = tmp_path / "cfg.yaml"
    path.write_text(case.text.replace("sqlite:///state.db", f"sqlite:///{state}"))
    before = state.read_bytes()

    result = runner.invoke(app, [*command, "-c", str(path)], env={"COLUMNS": "200"})

    assert result.exit_code == EXIT_INVALID, result.output
    assert "segments.a.rule" in result.output
    assert state.read_bytes() == before


def test_a_rule_that_explodes_in_dnf_is_explained_quickly(tmp_path: Path) -> None:
    """2**24 DNF terms: refused by the size cap at once, and the segment is materialised."""
    rule = " and ".join(f'(first_name = "a{i}" or lifetime_value > {i})' for i in range(24))
    path = tmp_path / "cfg.yaml"
    path.write_text(segments(f"  wide:\n    rule: '{rule}'\n"), encoding="utf-8")

    started = time.monotonic()
    result = runner.invoke(app, ["segments", "explain", "wide", "-c", str(path)])
    elapsed = time.monotonic() - started

    assert result.exit_code == 0, result.output
    assert "over the cap" in result.output
    assert "materialised" in result.output
    assert elapsed < 10


@pytest.mark.slow
def test_an_oversized_rule_is_loaded_or_refused_quickly(tmp_path: Path) -> None:
    """A 1 MB string literal in a rule neither hangs nor crashes the loader."""
    big = "x" * 1_000_000
    path = tmp_path / "cfg.yaml"
    path.write_text(segments(f"  big:\n    rule: 'first_name = \"{big}\"'\n"), encoding="utf-8")

    started = time.monotonic()
    result = runner.invoke(app, ["check", "-c", str(path)])

    assert result.exit_code in (0, EXIT_INVALID), result.output
    assert "Traceback" not in result.output
    assert time.monotonic() - started < 20
