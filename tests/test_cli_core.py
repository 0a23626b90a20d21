"""The core commands: --version, init, check, config schema/reference, segments list/explain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

import segsync
from segsync.cli import EXIT_INVALID, app
from segsync.cli.core import starter_config
from segsync.config import render_config_reference
from segsync.connector import Capabilities, Connector, ConnectorConfig, TagRepresentation, registry
from segsync.rules import ast
from segsync.rules.compiler import CompilerCapabilities, RuleCompiler

KEY = "sk-FAKE-segsync-0123456789abcdef"
runner = CliRunner()

BROKEN = """\
schema:
  country: text
segments:
  vip:
    rule: 'country = "FR" and contry = "BE"'
"""


class FlatCompiler(RuleCompiler):
    """Compiles a flat AND of comparisons and tag tests; nothing else."""

    platform = "flatco"
    CAPS = CompilerCapabilities(
        node_types=frozenset({"compare", "has"}),
        connectives=frozenset({"and"}),
        negated_leaves=False,
    )

    def emit(self, rule: ast.Rule) -> dict[str, Any]:
        items = rule.items if isinstance(rule, ast.And) else (rule,)
        return {
            "all": [
                [i.field, "has", i.value] if isinstance(i, ast.Has)
                else [i.field, i.op.value, i.value]  # type: ignore[union-attr]
                for i in items
            ]
        }


class FlatConfig(ConnectorConfig):
    api_key: SecretStr


def _connector(name: str, compiler: type[RuleCompiler] | None) -> type[Connector]:
    namespace: dict[str, Any] = {m: (lambda *a, **k: None) for m in Connector.__abstractmethods__}
    namespace.update(
        name=name,
        title=name,
        config_model=FlatConfig,
        capabilities=Capabilities(
            write_batch_size=1, read_page_size=1, membership_batch_size=1, max_concurrency=1,
            tags=TagRepresentation.TAGS, static_segments="tag",
        ),
        compiler_class=classmethod(lambda cls: compiler),
    )
    return type(f"{name}Connector", (Connector,), namespace)


@pytest.fixture
def fake_platforms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._extra, "flatco", _connector("flatco", FlatCompiler))
    monkeypatch.setitem(registry._extra, "nocompiler", _connector("nocompiler", None))


def write(tmp_path: Path, text: str, name: str = "segsync.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_version() -> None:
    """--version prints the package version."""
    result = runner.invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.output.strip() == f"segsync {segsync.__version__}"


def test_init_writes_a_valid_starter_and_refuses_to_overwrite(tmp_path: Path) -> None:
    """init writes a starter that passes check; a second init needs --force."""
    target = tmp_path / "conf" / "segsync.yaml"

    first = runner.invoke(app, ["init", str(target)])
    again = runner.invoke(app, ["init", str(target)])
    target.write_text("changed")
    forced = runner.invoke(app, ["init", str(target), "--force"])
    check = runner.invoke(app, ["check", "-c", str(target)])

    assert first.exit_code == 0
    assert again.exit_code == EXIT_INVALID
    assert "--force" in again.output
    assert forced.exit_code == 0
    assert target.read_text() == starter_config(registry.available())
    assert check.exit_code == 0, check.output
    assert "OK" in check.output


def test_starter_names_the_installed_connectors_from_their_config_models() -> None:
    """init's platforms come from the connectors given: required settings as placeholders,
    publish modes from their capabilities; no platform is written into the template."""
    text = starter_config([_connector("acme", None)])

    assert "#  acme:\n#    api_key: ${ACME_API_KEY}\n" in text
    assert "# fields: {country: [acme]}" in text
    assert "# publish: {acme: list}" in text
    assert "mailchimp" not in starter_config([])


def test_check_lists_every_problem_with_caret_and_exits_2(tmp_path: Path) -> None:
    """check prints each problem with its place and the rule caret, exit code 2."""
    path = write(tmp_path, BROKEN + "sync: {stricness: warn}\n")

    result = runner.invoke(app, ["check", "-c", str(path)])

    assert result.exit_code == EXIT_INVALID
    assert "2 problems found" in result.output
    assert f"{path}:5:31: segments.vip.rule: 1:20 unknown field 'contry'" in result.output
    assert "sync.stricness: unknown key 'stricness'; did you mean 'strictness'?" in result.output
    caret_line = next(line for line in result.output.splitlines() if "^" in line)
    source_line = result.output.splitlines()[result.output.splitlines().index(caret_line) - 1]
    assert source_line.index("contry") == caret_line.index("^")


def test_check_json(tmp_path: Path) -> None:
    """check --json prints the problems as JSON objects (and ok: true when valid)."""
    bad = runner.invoke(app, ["check", "--json", "-c", str(write(tmp_path, BROKEN))])
    good = runner.invoke(
        app, ["check", "--json", "-c", str(write(tmp_path, "schema: {a: text}\n", "ok.yaml"))]
    )

    assert bad.exit_code == EXIT_INVALID
    report = json.loads(bad.output)
    assert report["ok"] is False
    assert report["problems"][0]["path"] == "segments.vip.rule"
    assert report["problems"][0]["line"] == 5
    assert good.exit_code == 0
    assert json.loads(good.output)["ok"] is True


def test_check_uses_segsync_config_env(tmp_path: Path) -> None:
    """Without -c, $SEGSYNC_CONFIG names the file."""
    path = write(tmp_path, BROKEN)

    result = runner.invoke(app, ["check"], env={"SEGSYNC_CONFIG": str(path)})

    assert result.exit_code == EXIT_INVALID
    assert str(path) in result.output


def test_check_missing_file(tmp_path: Path) -> None:
    """A missing file exits 2 and suggests init."""
    result = runner.invoke(app, ["check", "-c", str(tmp_path / "none.yaml")])

    assert result.exit_code == EXIT_INVALID
    assert "segsync init" in result.output


def test_check_never_prints_the_secret(tmp_path: Path, fake_platforms: None) -> None:
    """Neither a valid nor an invalid config prints the key."""
    path = write(tmp_path, "platforms:\n  flatco: {api_key: ${K}, colour: 1}\n")
    env = {"K": KEY}

    bad = runner.invoke(app, ["check", "-c", str(path)], env=env)
    bad_json = runner.invoke(app, ["check", "--json", "-c", str(path)], env=env)
    path.write_text("platforms:\n  flatco: {api_key: ${K}}\n")
    good = runner.invoke(app, ["check", "-c", str(path)], env=env)

    assert bad.exit_code == EXIT_INVALID
    assert "platforms.flatco.colour: unknown key 'colour'" in bad.output
    assert good.exit_code == 0
    for result in (bad, bad_json, good):
        assert KEY not in result.output


def test_config_schema_and_reference() -> None:
    """config schema prints JSON Schema; config reference prints the docs page."""
    schema = runner.invoke(app, ["config", "schema"])
    reference = runner.invoke(app, ["config", "reference"])

    assert schema.exit_code == 0
    assert json.loads(schema.output)["title"] == "segsync configuration"
    assert reference.output == render_config_reference()


class TestSegments:
    """segments list / explain on one configuration."""

    CONFIG: ClassVar[str] = """\
    schema: {country: text, age: integer}
    platforms:
      flatco: {api_key: k}
      nocompiler: {api_key: k}
    segments:
      adults_fr:
        description: French adults
        rule: 'country = "FR" and age >= 18'
        publish: {nocompiler: off}
      tagged:
        rule: 'tags has "vip" and not (age < 30)'
    """

    def test_list(self, tmp_path: Path, fake_platforms: None) -> None:
        """list shows each segment's rule and publish modes."""
        path = write(tmp_path, self.CONFIG)

        result = runner.invoke(app, ["segments", "list", "--json", "-c", str(path)])

        assert result.exit_code == 0, result.output
        rows = {row["name"]: row for row in json.loads(result.output)}
        assert rows["adults_fr"]["publish"] == {"flatco": "auto", "nocompiler": "off"}
        assert rows["tagged"]["rule"] == 'tags has "vip" and not age < 30'

    def test_explain_json(self, tmp_path: Path, fake_platforms: None) -> None:
        """explain gives text, AST, NNF, DNF and each platform's outcome, tolerating gaps."""
        path = write(tmp_path, self.CONFIG)

        args = ["segments", "explain", "--json", "-c", str(path)]
        native = json.loads(runner.invoke(app, [*args[:2], "adults_fr", *args[2:]]).output)
        split = json.loads(runner.invoke(app, [*args[:2], "tagged", *args[2:]]).output)

        assert native["text"] == 'country = "FR" and age >= 18'
        assert native["ast"]["type"] == "and"
        flat = native["platforms"]["flatco"]
        assert flat["status"] == "native"
        assert flat["definition"] == {"all": [["country", "=", "FR"], ["age", ">=", 18]]}
        assert [d["step"] for d in flat["diagnostics"]] == ["native"]
        assert native["platforms"]["nocompiler"] == {"publish": "off", "status": "off"} or (
            native["platforms"]["nocompiler"]["status"].startswith("unavailable")
        )
        assert split["nnf"] == 'tags has "vip" and (age >= 30 or age is not set)'
        assert split["dnf"] is not None
        assert split["platforms"]["flatco"]["status"] == "split"
        assert split["platforms"]["nocompiler"]["status"].startswith("unavailable")

    def test_explain_split_human(self, tmp_path: Path, fake_platforms: None) -> None:
        """The human view names the fallback step and the residual tag."""
        path = write(tmp_path, self.CONFIG)

        result = runner.invoke(app, ["segments", "explain", "tagged", "-c", str(path)])

        assert result.exit_code == 0, result.output
        assert "flatco (publish: auto): split" in result.output
        assert "residual materialised as tag 'segsync:tagged:" in result.output
        assert 'tags has "vip"' in result.output

    def test_explain_unknown_segment(self, tmp_path: Path, fake_platforms: None) -> None:
        """An unknown name exits 2 and lists the configured ones."""
        path = write(tmp_path, self.CONFIG)

        result = runner.invoke(app, ["segments", "explain", "nope", "-c", str(path)])

        assert result.exit_code == EXIT_INVALID
        assert "adults_fr, tagged" in result.output


class SeeingCompiler(FlatCompiler):
    """Puts what it was built with into the definition it emits."""

    def emit(self, rule: ast.Rule) -> dict[str, Any]:
        config = self.config
        key = config.api_key.get_secret_value() if isinstance(config, FlatConfig) else None
        return {**super().emit(rule), "config_key": key, "mapping": repr(self.mapping)}


def test_explain_builds_the_compiler_with_the_platform_config_and_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`segments explain` builds each compiler through its connector, from the platform's
    config block and mapping, as a sync does."""
    seen = _connector("seeing", SeeingCompiler)
    monkeypatch.setitem(registry._extra, "seeing", seen)
    (tmp_path / "seeing.yaml").write_text(
        "platform: seeing\nfields:\n  country: {path: land}\n", encoding="utf-8"
    )
    path = write(
        tmp_path,
        """\
        schema: {country: text}
        platforms:
          seeing: {api_key: the-seeing-key}
        mappings:
          seeing: seeing.yaml
        segments:
          fr:
            rule: 'country = "FR"'
        """,
    )

    result = runner.invoke(app, ["segments", "explain", "fr", "--json", "-c", str(path)])

    assert result.exit_code == 0, result.output
    definition = json.loads(result.output)["platforms"]["seeing"]["definition"]
    assert definition["config_key"] == "the-seeing-key"
    assert definition["mapping"] == "PlatformMapping(platform='seeing', fields=1)"


def test_explain_filters_on_the_configured_tags_property(tmp_path: Path) -> None:
    """A HubSpot block with `tags_property: my_tags`: the DYNAMIC list filters on my_tags."""
    path = write(
        tmp_path,
        """\
        schema: {country: text}
        platforms:
          hubspot: {token: pat-FAKE-0000, tags_property: my_tags}
        segments:
          vip:
            rule: 'tags has "vip"'
        """,
    )

    result = runner.invoke(app, ["segments", "explain", "vip", "--json", "-c", str(path)])

    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)["platforms"]["hubspot"]
    assert outcome["status"] == "native", outcome
    definition = json.dumps(outcome["definition"])
    assert '"my_tags"' in definition
    assert "segsync_tags" not in definition


@pytest.mark.slow
def test_real_subprocess_check_prints_position_and_caret(tmp_path: Path) -> None:
    """The installed console script reports position + caret and exits 2."""
    script = Path(sys.executable).parent / "segsync"
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable}")
    write(tmp_path, BROKEN, "broken.yaml")

    proc = subprocess.run(
        [str(script), "check", "-c", "broken.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )

    assert proc.returncode == EXIT_INVALID, proc.stderr
    assert "broken.yaml:5:31: segments.vip.rule: 1:20 unknown field 'contry'" in proc.stdout
    assert "did you mean 'country'" in proc.stdout
    assert "^^^^^^" in proc.stdout


def test_readme_commands_and_ci_agree() -> None:
    """The README shows both fresh-machine commands; .ci/run runs exactly the test one."""
    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text(encoding="utf-8")
    ci = (repo / ".ci" / "run").read_text(encoding="utf-8")
    test_command = (
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' "
        "-e examples/connector-template && .venv/bin/python -m pytest"
    )

    assert "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/segsync demo" in readme
    assert test_command in readme
    assert f'TEST_COMMAND="{test_command}"' in ci
    assert "set -euo pipefail" in ci
    assert os.access(repo / ".ci" / "run", os.X_OK)
