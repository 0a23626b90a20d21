"""segsync.yaml loading: interpolation, every-problem validation, positions, secrets."""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from segsync.config import (
    DEFAULT_STATE_URL,
    Config,
    ConfigError,
    FieldDirection,
    bundled_connectors,
    config_json_schema,
    default_config_path,
    example_config,
    load_config,
    parse_config,
    render_config_reference,
)
from segsync.connector import Capabilities, Connector, ConnectorConfig, TagRepresentation, registry
from segsync.model import FieldType, PublishMode
from segsync.rules import ast
from segsync.rules.compiler import Strictness

KEY = "sk-FAKE-segsync-0123456789abcdef-us1"  # ends in a Mailchimp datacenter
REPO = Path(__file__).resolve().parents[1]


class FakeMailchimpConfig(ConnectorConfig):
    api_key: SecretStr
    list_id: str


class FakeHubSpotConfig(ConnectorConfig):
    token: SecretStr


class FakeBrevoConfig(ConnectorConfig):
    api_key: SecretStr


def _fake_connector(name: str, model: type[ConnectorConfig]) -> type[Connector]:
    namespace: dict[str, Any] = {m: (lambda *a, **k: None) for m in Connector.__abstractmethods__}
    namespace.update(
        name=name,
        title=name.title(),
        config_model=model,
        capabilities=Capabilities(
            write_batch_size=10,
            read_page_size=10,
            membership_batch_size=10,
            max_concurrency=1,
            tags=TagRepresentation.TAGS,
            static_segments="tag",
        ),
        # the fake ships the mapping of the installed connector of that name, if any
        default_mapping_resource=classmethod(lambda cls: _installed_mapping(name)),
    )
    return type(f"Fake{name.title()}Connector", (Connector,), namespace)


def _installed_mapping(name: str) -> Any:
    entry = registry._discover().get(name)
    installed = entry.load() if entry is not None else None
    return installed.default_mapping_resource() if installed is not None else None


@pytest.fixture(autouse=True)
def fake_connectors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees two connectors with known config models, whatever is installed."""
    monkeypatch.setitem(
        registry._extra, "mailchimp", _fake_connector("mailchimp", FakeMailchimpConfig)
    )
    monkeypatch.setitem(registry._extra, "hubspot", _fake_connector("hubspot", FakeHubSpotConfig))
    monkeypatch.setitem(registry._extra, "brevo", _fake_connector("brevo", FakeBrevoConfig))


def load(text: str, env: dict[str, str] | None = None, **kw: Any) -> Config:
    return parse_config(textwrap.dedent(text), env=env or {}, **kw)


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, env)
    return [str(p) for p in info.value.problems]


GOOD = """\
state: sqlite:///.segsync/state.db
schema:
  first_name: text
  country: {type: enum, options: [FR, BE, DE]}
  lifetime_value: number
  last_purchase_at: date
platforms:
  mailchimp: {api_key: ${MAILCHIMP_API_KEY}, list_id: "a1b2c3"}
  hubspot:   {token: ${HUBSPOT_TOKEN}}
sync:
  conflicts: {default: latest, fields: {country: [hubspot, mailchimp]}}
  direction: {lifetime_value: {mailchimp: destination-only}}
  strictness: raise
  overlap: 2m
segments:
  actifs_fr:
    rule: 'country = "FR" and open_rate > 0.5 and last_open within 7 days'
    publish: {mailchimp: auto, hubspot: native}
  big_spenders:
    description: spent a lot
    rule: {type: compare, field: lifetime_value, op: ">", value: 1000}
"""
ENV = {"MAILCHIMP_API_KEY": KEY, "HUBSPOT_TOKEN": "pat-FAKE-token-0000"}


def test_design_example_loads_into_typed_frozen_config() -> None:
    """The DESIGN.md sketch (flow mappings with ${VAR}) loads into typed values."""
    config = load(GOOD, ENV)

    assert config.state_url == DEFAULT_STATE_URL
    assert config.schema_fields["country"].type is FieldType.ENUM
    assert config.schema_fields["country"].options == ("FR", "BE", "DE")
    assert isinstance(config.platforms["mailchimp"], FakeMailchimpConfig)
    assert config.platforms["mailchimp"].api_key.get_secret_value() == KEY  # type: ignore[attr-defined]
    assert config.sync.conflicts.fields == {"country": ["hubspot", "mailchimp"]}
    destination_only = FieldDirection.DESTINATION_ONLY
    assert config.sync.direction_for("lifetime_value", "mailchimp") is destination_only
    assert config.sync.direction_for("lifetime_value", "hubspot") is FieldDirection.BOTH
    assert config.sync.priority_for("country") == ["hubspot", "mailchimp"]
    assert config.sync.priority_for("first_name") is None
    assert config.sync.strictness is Strictness.RAISE
    assert config.sync.overlap == dt.timedelta(minutes=2)
    assert config.segments["actifs_fr"].publish["hubspot"] is PublishMode.NATIVE
    with pytest.raises(Exception, match="frozen"):
        config.sync = config.sync  # type: ignore[misc]


def test_rules_are_parsed_and_typed_at_load_time() -> None:
    """Text and structured rules come back as ASTs; engagement fields are known to rules."""
    config = load(GOOD, ENV)

    assert isinstance(config.rule("actifs_fr"), ast.And)
    assert config.rule("big_spenders") == ast.Compare(
        field="lifetime_value", op=ast.CompareOp.GT, value=1000
    )
    assert "open_rate" in config.canonical_schema().fields
    assert config.canonical_schema().fields["open_rate"].read_only


def test_defaults_for_an_empty_file() -> None:
    """An empty file is a valid configuration with the documented defaults."""
    config = load("")

    assert config.state_url == DEFAULT_STATE_URL
    assert config.platforms == {}
    assert config.sync.conflicts.default == "latest"
    assert config.sync.overlap == dt.timedelta(minutes=5)


def test_missing_variable_names_variable_and_path() -> None:
    """A ${VAR} that is not set is an error naming the variable and the YAML path."""
    found = problems(GOOD, {"HUBSPOT_TOKEN": "x"})

    assert len(found) == 1
    assert "platforms.mailchimp.api_key" in found[0]
    assert "MAILCHIMP_API_KEY" in found[0]
    assert found[0].startswith("segsync.yaml:8:")


def test_variable_default_and_dollar_escape() -> None:
    """${VAR:-default} falls back; $$ is a literal dollar; values mix text and variables."""
    config = load(
        """\
        state: "sqlite:///${STATE_DIR:-/tmp/segsync}/state.db"
        segments:
          price:
            description: "costs $$5 for ${WHO}"
            rule: 'first_name = "a"'
        schema: {first_name: text}
        """,
        {"WHO": "everyone"},
    )

    assert config.state_url == "sqlite:////tmp/segsync/state.db"
    assert config.segments["price"].description == "costs $5 for everyone"


def test_every_problem_is_listed_with_its_path() -> None:
    """Problems in several sections are all reported at once, each with its path."""
    found = problems(
        """\
        state: mysql://nope
        schema:
          first_name: txt
          country: text
        platforms:
          mailchimpp: {api_key: x}
          hubspot: {}
        sync:
          conflicts: {fields: {contry: [hubspot]}}
          stricness: warn
        segments:
          vip:
            rule: 'rating > 3 and contry = "FR"'
            publish: {brevoo: list}
        """
    )
    text = "\n".join(found)

    assert len(found) == 8, text
    assert "state: must be sqlite:///" in text
    assert "schema.first_name.type: input should be" in text
    assert "platforms.mailchimpp: no connector called 'mailchimpp'; did you mean 'mailchim" in text
    assert "platforms.hubspot.token: field required" in text
    assert "sync.conflicts.fields.contry: unknown field 'contry'; did you mean 'country'?" in text
    assert "sync.stricness: unknown key 'stricness'; did you mean 'strictness'?" in text
    assert "segments.vip.rule: 1:16 unknown field 'contry'" in text
    assert "did you mean 'country'" in text
    assert "segments.vip.publish.brevoo: 'brevoo' is not a configured platform" in text


def test_rule_error_has_file_position_and_caret() -> None:
    """A rule error points into the file and shows the caret under the bad token."""
    with pytest.raises(ConfigError) as info:
        load(
            """\
            schema: {country: text}
            segments:
              vip:
                rule: 'country = "FR" and contry = "BE"'
            """
        )
    (problem,) = info.value.problems

    assert problem.path == "segments.vip.rule"
    assert (problem.line, problem.column) == (4, 11 + 1 + 19)
    assert problem.message.startswith("1:20 unknown field 'contry'")
    assert problem.detail is not None
    assert problem.detail.splitlines()[-1].strip() == "^^^^^^"
    assert "^^^^^^" in str(problem)


def test_rule_syntax_error_in_block_scalar() -> None:
    """A multi-line rule reports its own line:column and the caret line."""
    with pytest.raises(ConfigError) as info:
        load(
            """\
            schema: {country: text}
            segments:
              vip:
                rule: |
                  country = "FR"
                    and and
            """
        )
    (problem,) = info.value.problems

    assert problem.message.startswith("2:7 ")
    assert problem.detail is not None
    assert "^" in problem.detail


def test_yaml_syntax_error_reports_line_and_column() -> None:
    """Broken YAML is one problem with line:column."""
    found = problems("schema:\n  a: text\n b: [1, 2\n")

    assert len(found) == 1
    assert "YAML syntax error" in found[0]
    assert found[0].startswith("segsync.yaml:3:")


def test_duplicate_segment_names_are_errors_with_lines() -> None:
    """Two segments with one name (duplicate YAML keys) are reported, with both lines."""
    found = problems(
        """\
        schema: {country: text}
        segments:
          vip: {rule: 'country = "FR"'}
          other: {rule: 'country = "BE"'}
          vip: {rule: 'country = "DE"'}
        """
    )

    assert found == [
        "segsync.yaml:5:3: segments.vip: duplicate key 'vip' (first defined at line 3)"
    ]


def test_secret_never_printed() -> None:
    """The API key is absent from repr, str, dumps, JSON dumps and error messages."""
    config = load(GOOD, ENV)
    views = [
        repr(config),
        str(config),
        repr(config.platforms),
        str(config.model_dump()),
        config.model_dump_json(),
        json.dumps(config.model_dump(mode="json")),
    ]
    for view in views:
        assert KEY not in view

    broken = GOOD.replace('list_id: "a1b2c3"', "list_id: [1]").replace("overlap: 2m", "")
    broken += "  bad:\n    rule: 'first_name = 1'\n"
    with pytest.raises(ConfigError) as info:
        load(broken.replace("${MAILCHIMP_API_KEY}", KEY), {"HUBSPOT_TOKEN": "x"})
    assert len(info.value.problems) == 2
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value.problems)


def test_secret_in_a_message_is_redacted() -> None:
    """A validator message quoting a secret value shows *** instead."""
    with pytest.raises(ConfigError) as info:
        load(f"state: 'postgresql://u:{KEY}@'\nplatforms:\n  hubspot: {{token: {KEY}, x: 1}}\n")
    text = str(info.value)

    assert KEY not in text
    assert "platforms.hubspot.x: unknown key 'x'" in text


def test_postgres_password_masked_for_display() -> None:
    """The state URL's password is a secret: masked in output, available to the store."""
    config = load("state: postgresql://segsync:hunter22@db.internal:5432/segsync\n")

    assert config.state_url.endswith("hunter22@db.internal:5432/segsync")
    assert config.state_display == "postgresql://segsync:***@db.internal:5432/segsync"
    assert "hunter22" not in repr(config)


def test_overlap_forms() -> None:
    """The overlap window takes seconds, short durations and ISO 8601; never negative."""
    assert load("sync: {overlap: 90}").sync.overlap == dt.timedelta(seconds=90)
    assert load("sync: {overlap: 1h}").sync.overlap == dt.timedelta(hours=1)
    assert load("sync: {overlap: PT30S}").sync.overlap == dt.timedelta(seconds=30)
    assert "sync.overlap: must not be negative" in problems("sync: {overlap: -5}")[0]


def test_conflict_default_platform_list_is_checked() -> None:
    """A priority list may only name configured platforms."""
    found = problems(
        "platforms:\n  hubspot: {token: t}\nsync:\n  conflicts: {default: [hubspot, hubspt2]}\n"
    )

    assert found == [
        "segsync.yaml:4:34: sync.conflicts.default.1: 'hubspt2' is not a configured platform"
        "; did you mean 'hubspot'?"
    ]


def test_unavailable_connector_is_a_warning_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed connector that fails to import keeps its block (secrets wrapped) + a warning."""
    from segsync.connector import ConnectorEntry

    broken = ConnectorEntry("brokenco", "no_such_module:Nothing", None)
    real_entries = registry.entries
    monkeypatch.setattr(registry, "entries", lambda: [*real_entries(), broken])

    config = load(f"platforms:\n  brokenco: {{api_key: {KEY}, region: eu}}\n")

    assert "platforms.brokenco" in config.warnings[0]
    assert KEY not in repr(config.platforms["brokenco"])
    assert config.platforms["brokenco"].model_extra == {
        "api_key": config.platforms["brokenco"].model_extra["api_key"],  # type: ignore[index]
        "region": "eu",
    }


def test_schema_names_checked() -> None:
    """Field names must be identifiers and may not shadow built-ins."""
    found = problems("schema:\n  first name: text\n  email: text\n")

    assert len(found) == 2
    assert "schema.first name: a field name is letters" in found[0]
    assert "schema.email: 'email' is built in" in found[1]


def test_mapping_override_resolved_relative_to_the_file(tmp_path: Path) -> None:
    """`mappings.<platform>` is relative to the config file; a broken file is a problem."""
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "hubspot.yaml").write_text(
        "platform: hubspot\nextends: default\nfields:\n  first_name: {path: given_name}\n"
    )
    cfg = tmp_path / "segsync.yaml"
    cfg.write_text("platforms:\n  hubspot: {token: t}\nmappings:\n  hubspot: maps/hubspot.yaml\n")

    config = load_config(cfg, env={})

    assert config.mappings["hubspot"] == tmp_path / "maps" / "hubspot.yaml"
    assert config.mapping_for("hubspot").to_platform({"first_name": "Ann"}) == {
        "given_name": "Ann"
    }

    (tmp_path / "maps" / "hubspot.yaml").write_text("platform: hubspot\nfields:\n  a: {pth: x}\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg, env={})
    assert "mappings.hubspot: in mapping" in str(info.value)
    assert "fields.a.path: field required" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing file is reported (exit 2 in the CLI), pointing at `segsync init`."""
    with pytest.raises(ConfigError, match="segsync init"):
        load_config(tmp_path / "nope.yaml", env={})


def test_default_path_from_environment() -> None:
    """$SEGSYNC_CONFIG wins over ./segsync.yaml."""
    assert default_config_path({}) == Path("segsync.yaml")
    assert default_config_path({"SEGSYNC_CONFIG": "/etc/s.yaml"}) == Path("/etc/s.yaml")


def test_segment_models() -> None:
    """Segments convert to the canonical model, structured rules as JSON text."""
    models = {s.name: s for s in load(GOOD, ENV).segment_models()}

    assert models["actifs_fr"].mode_for("hubspot") is PublishMode.NATIVE
    assert json.loads(models["big_spenders"].rule)["field"] == "lifetime_value"


def test_json_schema_describes_the_file() -> None:
    """The JSON Schema lists the sections, field shorthands and installed connectors."""
    schema = config_json_schema()

    assert set(schema["properties"]) == {
        "state", "schema", "platforms", "sync", "segments", "mappings", "engagement", "history"
    }
    assert schema["additionalProperties"] is False
    shorthand = schema["properties"]["schema"]["additionalProperties"]["anyOf"][0]
    assert "multi_enum" in shorthand["enum"]
    assert "api_key" in schema["properties"]["platforms"]["properties"]["mailchimp"]["properties"]
    assert "platforms" not in config_json_schema(include_connectors=False)["properties"][
        "platforms"
    ].get("properties", {})


def test_json_schema_accepts_the_example_and_flags_mistakes() -> None:
    """An editor validating with the JSON Schema accepts the example and flags typos."""
    import yaml

    jsonschema = pytest.importorskip("jsonschema")

    validator = jsonschema.Draft202012Validator(config_json_schema())
    example = yaml.safe_load(example_config(bundled_connectors()))
    broken = {**example, "sync": {"stricness": "warn"}, "schema": {"a": "txt"}}

    assert list(validator.iter_errors(example)) == []
    assert len(list(validator.iter_errors(broken))) == 2


def test_reference_example_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example at the top of docs/configuration.md loads, its keys read from the
    environment, for the connectors segsync installs (the real ones, not this module's fakes)."""
    monkeypatch.setattr(registry, "_extra", {})
    bundled = bundled_connectors()
    example = example_config(bundled)
    placeholders = re.findall(r"\$\{([A-Z_]+)\}", example)
    mapped = [c.name for c in bundled if c.default_mapping is not None][:1]
    for name in mapped:
        (tmp_path / "mappings").mkdir()
        (tmp_path / "mappings" / f"{name}.yaml").write_text(
            f"platform: {name}\nextends: default\n"
        )

    config = parse_config(example, env=dict.fromkeys(placeholders, KEY), base_dir=tmp_path)

    assert set(config.platforms) == {c.name for c in bundled} == {
        "mailchimp", "hubspot", "brevo"
    }
    assert {"MAILCHIMP_API_KEY", "MAILCHIMP_LIST_ID", "HUBSPOT_TOKEN"} <= set(placeholders)
    assert {n: tmp_path / "mappings" / f"{n}.yaml" for n in mapped} == config.mappings


def test_examples_name_only_the_connectors_given() -> None:
    """The example is generated from the connectors' own classes: required settings become
    placeholders, publish modes follow their capabilities; none are hard-coded."""
    fake = _fake_connector("acme", FakeMailchimpConfig)

    example = example_config([fake])

    assert 'acme: {api_key: "${ACME_API_KEY}", list_id: "${ACME_LIST_ID}"}' in example
    assert "fields: {country: [acme]}" in example
    assert "publish: {acme: list}" in example
    assert "mailchimp" not in example
    assert "hubspot" not in example
    assert "platforms: {}" in example_config([])


def test_reference_doc_is_current() -> None:
    """docs/configuration.md is exactly what render_config_reference() generates."""
    doc = REPO / "docs" / "configuration.md"

    assert doc.read_text(encoding="utf-8") == render_config_reference(), (
        "regenerate: segsync config reference > docs/configuration.md"
    )


class TestInterpolationIsOnValuesOnly:
    """${...} in comments or keys is not interpolated."""

    TEXT: ClassVar[str] = (
        "# uses ${NOPE}\nschema:\n  first_name: {type: text, description: '${D}'}\n"
    )

    def test_comment_ignored(self) -> None:
        config = load(self.TEXT, {"D": "given name"})

        assert config.schema_fields["first_name"].description == "given name"
