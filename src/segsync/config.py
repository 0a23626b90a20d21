"""`segsync.yaml` -> a frozen, validated `Config`.

Contract:

- `load_config(path)` / `parse_config(text)` return a `Config` or raise one `ConfigError`
  listing EVERY problem found, each with its YAML path (``platforms.<name>.api_key``), its
  line:column in the file where known, and for segment rules the rule's own position and a
  caret rendering.
- The file is `-c FILE`, else ``$SEGSYNC_CONFIG``, else the first ``segsync.yaml`` found in
  the working directory or one of its parents (`default_config_path`).
- ``${VAR}`` and ``${VAR:-default}`` are replaced from the environment in every string value
  (``$$`` is a literal ``$``); a missing variable is a problem naming the variable and the path,
  reported once (not again as the invalid value it leaves). A ``.env`` file beside the
  configuration fills variables the environment does not set (it never overrides one).
- With ``secrets=False`` (commands that call no platform), a missing variable in a platform's
  secret setting is a warning, not a problem, and that block is built unchecked of it.
- Duplicate keys anywhere in the file (e.g. two segments with one name) are problems.
- Each `platforms` block is validated by its connector's `config_model` (found through
  `segsync.connector.registry`); an unknown platform name is a problem with a suggestion.
- Segment rules are parsed and type-checked against the canonical schema (declared fields plus
  the engagement fields of `segsync.mapping.ENGAGEMENT_FIELDS`) at load time.
- Secrets (connector `SecretStr` fields, the state URL) never appear in reprs, dumps or
  problem messages.

`config_json_schema()` is the JSON Schema of the file (for editors) and
`render_config_reference()` the Markdown of docs/configuration.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import enum
import json
import os
import re
import types
import typing
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    SerializeAsAny,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from segsync.connector import Connector, ConnectorConfig, SegmentRepresentation, registry
from segsync.engagement import (
    AGGREGATES,
    ALIASES,
    AggregateFunction,
    qualified_fields,
    split_qualified,
)
from segsync.mapping import ENGAGEMENT_FIELDS, MappingError, PlatformMapping, load_mapping
from segsync.model import FieldSpec, FieldType, PublishMode, Schema, Segment
from segsync.rules import RuleError, RuleSyntaxError, RuleTypeError, ast, load_rule
from segsync.rules.compiler import Strictness
from segsync.rules.parser import render_caret

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_STATE_URL",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "ConflictPolicy",
    "EngagementConfig",
    "FieldDirection",
    "HistoryConfig",
    "SegmentConfig",
    "SyncConfig",
    "YamlDocument",
    "bundled_connectors",
    "config_json_schema",
    "default_config_path",
    "dotenv_for",
    "example_config",
    "example_publish_mode",
    "load_config",
    "parse_config",
    "placeholder_settings",
    "render_config_reference",
]

DEFAULT_CONFIG_FILE = "segsync.yaml"
DEFAULT_STATE_URL = "sqlite:///.segsync/state.db"
_DISTRIBUTION = "segsync"  # this package's distribution: the connectors it installs

YamlPath = tuple[str | int, ...]


# -- problems --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a configuration: where it is and what it is.

    `path` is the dotted YAML path; `line`/`column` the 1-based position in `file` when known;
    `detail` an extra rendering (the rule's caret line) shown indented under the message.
    """

    path: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    detail: str | None = None

    @property
    def where(self) -> str:
        """`file:line:column`, as much of it as is known."""
        parts = [self.file or ""]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        head = f"{self.path}: {self.message}" if self.path else self.message
        where = self.where
        text = f"{where}: {head}" if where else head
        if self.detail:
            text += "\n" + "\n".join(f"    {line}" for line in self.detail.splitlines())
        return text

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (for `segsync check --json`)."""
        return dataclasses.asdict(self)


class ConfigError(ValueError):
    """An invalid configuration; `problems` holds every problem found, in file order, and
    `warnings` the non-fatal findings of the same load (shown with them)."""

    def __init__(
        self,
        problems: list[ConfigProblem] | tuple[ConfigProblem, ...],
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.problems = tuple(problems)
        self.warnings = warnings
        count = len(self.problems)
        header = f"{count} problem{'s' if count != 1 else ''} in the configuration"
        super().__init__(header + ":\n" + "\n".join(str(p) for p in self.problems))


def _dotted(path: YamlPath) -> str:
    return ".".join(str(p) for p in path)


# -- YAML with positions and duplicate-key detection -----------------------------------------


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping that holds the same key twice."""


class UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate mapping keys (with both line numbers).

    With `allow_duplicates` set (after they were reported), the last value wins.
    """

    allow_duplicates = False

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if self.allow_duplicates:
            return super().construct_mapping(node, deep=deep)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, typing.Hashable) and key in seen:
                raise DuplicateKeyError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {seen[key]})",
                    key_node.start_mark,
                )
            if isinstance(key, typing.Hashable):
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


@dataclasses.dataclass
class YamlDocument:
    """A parsed YAML file: its data, where every value is, and the problems found."""

    source: str
    data: Any = None
    positions: dict[YamlPath, tuple[int, int]] = dataclasses.field(default_factory=dict)
    styles: dict[YamlPath, str | None] = dataclasses.field(default_factory=dict)
    problems: list[ConfigProblem] = dataclasses.field(default_factory=list)

    @classmethod
    def parse(cls, text: str, source: str) -> YamlDocument:
        """Parse `text`; syntax errors and duplicate keys become problems with line:column."""
        doc = cls(source)
        loader = UniqueKeyLoader(text)
        try:
            root = loader.get_single_node()
            if root is not None:
                doc._walk(root, ())
                loader.allow_duplicates = bool(doc.problems)
                doc.data = loader.construct_document(root)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
            doc.problems.append(
                ConfigProblem(
                    "",
                    f"YAML syntax error: {message}",
                    source,
                    mark.line + 1 if mark else None,
                    mark.column + 1 if mark else None,
                )
            )
        except yaml.YAMLError as exc:
            doc.problems.append(ConfigProblem("", f"YAML error: {exc}", source))
        finally:
            loader.dispose()
        return doc

    def _walk(self, node: yaml.Node, path: YamlPath) -> None:
        self.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.ScalarNode):
            self.styles[path] = node.style
        elif isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = str(key_node.value)
                sub = (*path, key)
                if key in seen:
                    self.problems.append(
                        ConfigProblem(
                            _dotted(sub),
                            f"duplicate key {key!r} (first defined at line {seen[key]})",
                            self.source,
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                        )
                    )
                    continue
                seen[key] = key_node.start_mark.line + 1
                self._walk(value_node, sub)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*path, index))

    def position(self, path: YamlPath) -> tuple[int, int] | None:
        """The line:column of `path`, or of its nearest ancestor present in the file."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(tuple(path[:end]))
            if found:
                return found
        return None

    def problem(self, path: YamlPath, message: str, detail: str | None = None) -> ConfigProblem:
        """A problem at `path`, placed in the file."""
        pos = self.position(path)
        return ConfigProblem(
            _dotted(path), message, self.source, pos[0] if pos else None,
            pos[1] if pos else None, detail,
        )


# -- ${VAR} interpolation --------------------------------------------------------------------

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")
_REFERENCE = re.compile(r"\$\{([^}\n]*)\}")
# `${VAR}` is not valid YAML inside flow mappings (`{api_key: ${KEY}}`), so references are
# swapped for private-use characters of the same length before parsing (positions do not
# move) and swapped back before interpolation.
_OPEN, _CLOSE = "\ue000\ue001", "\ue002"


def _protect_references(text: str) -> str:
    return _REFERENCE.sub(lambda m: f"{_OPEN}{m.group(1)}{_CLOSE}", text)


def _restore_references(text: str) -> str:
    return text.replace(_OPEN, "${").replace(_CLOSE, "}")


def _interpolate(
    value: Any,
    path: YamlPath,
    env: Mapping[str, str],
    doc: YamlDocument,
    problems: list[ConfigProblem],
    missing: dict[YamlPath, ConfigProblem],
) -> Any:
    if isinstance(value, dict):
        return {
            _restore_references(k) if isinstance(k, str) else k: _interpolate(
                v, (*path, str(k)), env, doc, problems, missing
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _interpolate(v, (*path, i), env, doc, problems, missing) for i, v in enumerate(value)
        ]
    if not isinstance(value, str):
        return value
    value = _restore_references(value)
    if "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name is None:
            problems.append(doc.problem(path, "unterminated '${' (write '$$' for a literal '$')"))
            return token
        if name in env:
            return env[name]
        if default is not None:
            return default
        problem = doc.problem(
            path,
            f"environment variable {name} is not set "
            f"(set it, or write ${{{name}:-default}} for a default)",
        )
        problems.append(problem)
        missing.setdefault(path, problem)
        return ""

    return _VAR.sub(replace, value)


# -- the configuration models ----------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ConflictPolicy(_Frozen):
    """Which side wins when several platforms changed a field since the last run."""

    default: Literal["latest"] | list[str] = Field(
        default="latest",
        description="'latest' (newest change wins) or a platform priority list",
    )
    fields: dict[str, list[str]] = Field(
        default_factory=dict, description="per field: platform priority list, first wins"
    )


class FieldDirection(enum.StrEnum):
    """How a field flows for one platform."""

    BOTH = "both"
    SOURCE_ONLY = "source-only"  # read from that platform, never written to it
    DESTINATION_ONLY = "destination-only"  # written to that platform, never read from it


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class SyncConfig(_Frozen):
    """How the engine reconciles platforms."""

    conflicts: ConflictPolicy = Field(
        default_factory=ConflictPolicy, description="which change wins when platforms disagree"
    )
    direction: dict[str, dict[str, FieldDirection]] = Field(
        default_factory=dict,
        description="per field, per platform: both, source-only or destination-only",
    )
    strictness: Strictness = Field(
        default=Strictness.WARN,
        description="what a segment fallback past 'rewrite' does: ignore, warn or raise",
    )
    reconfirm: list[str] = Field(
        default_factory=list,
        description=(
            "platforms with a re-confirmation path (a newer opt-in given elsewhere is sent "
            "there as 'pending' where they hold an opt-out); other platforms keep the opt-out"
        ),
    )
    overlap: dt.timedelta = Field(
        default=dt.timedelta(minutes=5),
        description="incremental reads re-read this much before the cursor ('90s', '5m', '1h')",
    )
    erasure: Literal["report", "enforce"] = Field(
        default="report",
        description=(
            "a person erased by `segsync erase` whom a platform holds again: 'report' skips "
            "and reports them, 'enforce' also erases them there again"
        ),
    )
    on_delete: dict[str, Literal["keep", "archive_elsewhere"]] = Field(
        default_factory=dict,
        description=(
            "per platform: what a contact deleted or archived there does elsewhere. 'keep' "
            "(default) leaves the other platforms as they are; 'archive_elsewhere' archives "
            "the person on the others (the least destructive removal each has). Either way "
            "it is recorded once, never written or re-created there"
        ),
    )

    def direction_for(self, field: str, platform: str) -> FieldDirection:
        """How `field` flows for `platform` (both unless configured)."""
        return self.direction.get(field, {}).get(platform, FieldDirection.BOTH)

    def priority_for(self, field: str) -> list[str] | None:
        """The platform priority for `field`, or None when the latest change wins."""
        order = self.conflicts.fields.get(field, self.conflicts.default)
        return None if order == "latest" else list(order)

    @field_validator("overlap", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str) and (match := _DURATION.match(value)):
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        return value

    @field_validator("overlap")
    @classmethod
    def _non_negative(cls, value: dt.timedelta) -> dt.timedelta:
        if value < dt.timedelta(0):
            raise ValueError("must not be negative")
        return value


class EngagementConfig(_Frozen):
    """How engagement (opens, clicks, rates: platform facts, read only) is kept fresh."""

    refresh: dt.timedelta = Field(
        default=dt.timedelta(hours=24),
        description=(
            "how often a run re-reads each platform's engagement that changes without "
            "moving its change cursor ('24h', '30m', '7d'; at least 1m)"
        ),
    )

    platforms: dict[str, dt.timedelta | None] = Field(
        default_factory=dict,
        description=(
            "per platform, a period replacing `refresh` there, or `off`; a connector whose "
            "refresh is dear (one call per contact) refreshes only when set here"
        ),
    )

    @field_validator("refresh", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return _period(value)

    @field_validator("platforms", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: None if v in ("off", False, None) else _period(v) for k, v in value.items()}

    @field_validator("refresh")
    @classmethod
    def _at_least_a_minute(cls, value: dt.timedelta) -> dt.timedelta:
        return _at_least_1m(value)

    @field_validator("platforms")
    @classmethod
    def _each_at_least_a_minute(
        cls, value: dict[str, dt.timedelta | None]
    ) -> dict[str, dt.timedelta | None]:
        return {k: None if v is None else _at_least_1m(v) for k, v in value.items()}

    def period(self, platform: str, by_default: bool) -> dt.timedelta | None:
        """How often `platform`'s engagement is refreshed (None: never); `by_default` is the
        connector's `engagement_refresh_by_default`."""
        if platform in self.platforms:
            return self.platforms[platform]
        return self.refresh if by_default else None


def _unread_warnings(config: Config) -> list[str]:
    """Per segment reading engagement of a platform whose engagement no run reads: which
    platform, the key that turns its refresh on, and what it costs (the connector's words)."""
    unread = config.unread_engagement()
    out: list[str] = []
    for platform in unread:
        cost = getattr(registry.get(platform), "engagement_refresh_cost", "")
        for segment in config.segments:
            names = {getattr(leaf, "field", "") for leaf in _rule_leaves(config.rule(segment))}
            used = sorted(n for n in names if _reads(n, platform))
            if used:
                out.append(
                    f"segments.{segment}: {', '.join(repr(n) for n in used)} read no {platform} "
                    f"engagement: its engagement refresh is off{f' ({cost})' if cost else ''}; "
                    f"turn it on with engagement.platforms.{platform}: 24h"
                )
    return out


def _reads(name: str, platform: str) -> bool:
    """Whether a rule field reads `platform`'s engagement (its own, or an aggregate over the
    platforms other than the first one reporting it)."""
    qualified = split_qualified(name)
    if qualified is not None:
        return qualified[0] == platform
    agg = AGGREGATES.get(ALIASES.get(name, name))
    return agg is not None and agg.function is not AggregateFunction.FIRST


def _rule_leaves(rule: ast.Rule) -> list[ast.Rule]:
    if isinstance(rule, ast.And | ast.Or):
        return [leaf for item in rule.items for leaf in _rule_leaves(item)]
    if isinstance(rule, ast.Not):
        return _rule_leaves(rule.item)
    return [rule]


def _period(value: Any) -> Any:
    """'24h', '30m', '7d' as seconds (other values as given, for pydantic to judge)."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return value


def _at_least_1m(value: dt.timedelta) -> dt.timedelta:
    if value < dt.timedelta(minutes=1):
        raise ValueError("must be at least 1m (a refresh every run costs every run)")
    return value


class HistoryConfig(_Frozen):
    """How long the state keeps past runs (`segsync runs`): their reports, errors and
    diagnostics are forgotten at the end of each sync or apply past either limit."""

    keep_runs: int | None = Field(
        default=200, ge=1, description="keep this many latest runs (null: no count limit)"
    )
    keep_days: int | None = Field(
        default=None, ge=1, description="forget runs started more than this many days ago"
    )


class SegmentConfig(_Frozen):
    """One segment: its rule (text or structured), where it is published, what it is for."""

    rule: str | dict[str, Any] = Field(description="rule text, or the structured (JSON) form")
    publish: dict[str, PublishMode] = Field(
        default_factory=dict,
        description="per platform: auto (default), native, materialise, list or off",
    )
    description: str | None = Field(default=None, description="what the segment is for")

    @field_validator("publish", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `off` as false (and `on` as true).
        if isinstance(value, dict):
            return {k: {False: "off", True: "auto"}.get(v, v) if isinstance(v, bool) else v
                    for k, v in value.items()}
        return value


def _field_shorthand(value: Any) -> Any:
    return {"type": value} if isinstance(value, str) else value


class Config(_Frozen):
    """A validated segsync.yaml. Load it with `load_config` or `parse_config`."""

    state: SecretStr = Field(
        default=SecretStr(DEFAULT_STATE_URL),
        description="state store URL: sqlite:///path (default) or postgresql://...",
    )
    schema_fields: dict[str, FieldSpec] = Field(
        default_factory=dict,
        alias="schema",
        description="canonical fields: name -> type, or {type, options, description}",
    )
    platforms: dict[str, SerializeAsAny[ConnectorConfig]] = Field(
        default_factory=dict, description="platform name -> that connector's settings"
    )
    sync: SyncConfig = Field(
        default_factory=SyncConfig, description="how the engine reconciles platforms"
    )
    segments: dict[str, SegmentConfig] = Field(
        default_factory=dict, description="segment name -> rule and publish modes"
    )
    engagement: EngagementConfig = Field(
        default_factory=EngagementConfig,
        description="engagement refresh (read only, kept per platform)",
    )
    mappings: dict[str, Path] = Field(
        default_factory=dict,
        description="platform -> mapping file replacing the shipped one (relative to this file)",
    )
    history: HistoryConfig = Field(
        default_factory=HistoryConfig,
        description="how many past runs (or days of runs) the state keeps",
    )

    _rules: dict[str, ast.Rule] = PrivateAttr(default_factory=dict)
    _warnings: tuple[str, ...] = PrivateAttr(default=())
    _source: Path | None = PrivateAttr(default=None)

    @field_validator("state")
    @classmethod
    def _state_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
            return value
        if re.match(r"^postgres(ql)?://[^/]", url):
            return value
        raise ValueError(
            "must be sqlite:///path/to/state.db or postgresql://user@host:port/database"
        )

    @field_validator("schema_fields", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: _field_shorthand(v) for k, v in value.items()}
        return value

    @property
    def state_url(self) -> str:
        """The state store URL itself (it may hold a password: never log it)."""
        return self.state.get_secret_value()

    @property
    def state_display(self) -> str:
        """The state store URL with any password masked, for output."""
        return _mask_url_password(self.state_url)

    @property
    def source(self) -> Path | None:
        """The file this configuration was loaded from, if any."""
        return self._source

    @property
    def warnings(self) -> tuple[str, ...]:
        """Non-fatal findings of the load (e.g. a connector installed but unavailable)."""
        return self._warnings

    def canonical_schema(self) -> Schema:
        """The declared fields plus the read-only engagement fields rules may use."""
        return Schema(fields={**ENGAGEMENT_FIELDS,
                              **qualified_fields(self.platforms, self.unread_engagement()),
                              **self.schema_fields})

    def unread_engagement(self) -> list[str]:
        """The platforms whose engagement no run reads: a connector that reads it only in a
        dear refresh (`engagement_refresh_by_default` False) with no period set for it."""
        out = []
        for name, block in self.platforms.items():
            if not getattr(block, "enabled", True):
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    cls = registry.get(name)
            except Exception:  # unavailable: its settings were not checked either  # noqa: S112
                continue
            by_default = cls.engagement_refresh_by_default
            if not by_default and self.engagement.period(name, by_default) is None:
                out.append(name)
        return out

    def rule(self, segment: str) -> ast.Rule:
        """The parsed and type-checked rule of a segment (KeyError for an unknown name)."""
        return self._rules[segment]

    def segment_models(self) -> list[Segment]:
        """The segments as `segsync.model.Segment` values (structured rules as JSON text)."""
        out = []
        for name, seg in self.segments.items():
            text = seg.rule if isinstance(seg.rule, str) else json.dumps(seg.rule, sort_keys=True)
            out.append(
                Segment(name=name, rule=text, description=seg.description, publish=seg.publish)
            )
        return out

    def mapping_for(self, platform: str) -> PlatformMapping:
        """The mapping of `platform`: the configured override, or the shipped default."""
        return load_mapping(platform, self.mappings.get(platform))


def _mask_url_password(url: str) -> str:
    return re.sub(r"^([a-z+]+://[^:/@]*):[^@]*@", r"\1:***@", url)


# -- loading ---------------------------------------------------------------------------------

_SECRET_KEY = re.compile(r"(key|token|secret|password|passwd|credential)", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SEGMENT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-. ]{0,99}$")
_BUILTIN_NAMES = ("email", "tags", "consent")
_DIRECTED_BUILTINS = ("consent", "tags", "*")
"""Names `sync.direction` takes besides schema fields (the engine's policy reads them)."""
_MIN_SECRET_LENGTH = 6
_TYPE_LABELS = {"str", "int", "float", "bool", "dict", "list", "none"}


class _UnvalidatedPlatform(ConnectorConfig):
    """The block of a connector that is installed but cannot be loaded: kept, secrets wrapped."""

    model_config = ConfigDict(frozen=True, extra="allow")


def default_config_path(
    env: Mapping[str, str] | None = None, *, start: Path | None = None
) -> Path:
    """`$SEGSYNC_CONFIG` when set, else the first segsync.yaml in `start` (default: the
    working directory) or one of its parents, else ./segsync.yaml (which may not exist)."""
    env = os.environ if env is None else env
    if env.get("SEGSYNC_CONFIG"):
        return Path(env["SEGSYNC_CONFIG"])
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / DEFAULT_CONFIG_FILE
        if candidate.is_file():
            return candidate if directory != Path.cwd().resolve() else Path(DEFAULT_CONFIG_FILE)
    return Path(DEFAULT_CONFIG_FILE)


def dotenv_for(config_file: Path) -> dict[str, str]:
    """The variables of the `.env` beside `config_file` ({} when there is none)."""
    path = config_file.parent / ".env"
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    secrets: bool = True,
) -> Config:
    """Load and validate a configuration file (default: `default_config_path()`), with the
    `.env` beside it under `env` (default: the process environment); `secrets=False` for
    commands that call no platform (see the module docstring).

    Raises:
        ConfigError: every problem found, each with its place.
    """
    env = os.environ if env is None else env
    file = Path(path) if path is not None else default_config_path(env)
    if file.is_file():
        env = {**dotenv_for(file), **env}
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [ConfigProblem("", "configuration file not found (create one with `segsync init`)",
                           str(file))]
        ) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem("", f"cannot read: {exc.strerror}", str(file))]) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [ConfigProblem("", f"not UTF-8 text (byte {exc.start}: {exc.reason})", str(file),
                           line)]
        ) from None
    return parse_config(
        text, source=str(file), env=env, base_dir=file.resolve().parent, secrets=secrets
    )


def parse_config(
    text: str,
    *,
    source: str = DEFAULT_CONFIG_FILE,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    secrets: bool = True,
) -> Config:
    """Validate configuration text; relative mapping paths resolve against `base_dir`.

    Raises:
        ConfigError: every problem found, each with its place.
    """
    env = os.environ if env is None else env
    return _Loader(text, source, env, base_dir, secrets=secrets).load()


class _Loader:
    """One load: collects problems section by section, then builds the Config."""

    def __init__(
        self,
        text: str,
        source: str,
        env: Mapping[str, str],
        base_dir: Path | None,
        *,
        secrets: bool = True,
    ) -> None:
        self.doc = YamlDocument.parse(_protect_references(text), source)
        self.env = env
        self.need_secrets = secrets
        # path -> the problem of the missing ${VAR} there (its value is not checked again)
        self.missing: dict[YamlPath, ConfigProblem] = {}
        self.base_dir = base_dir or Path.cwd()
        self.problems: list[ConfigProblem] = list(self.doc.problems)
        self.warnings: list[str] = []
        self.secrets: set[str] = set()

    def load(self) -> Config:
        if self.problems and self.doc.data is None:
            raise ConfigError(self.problems)
        raw = self.doc.data
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError([self.doc.problem((), "expected a mapping of sections at the top")])
        data: dict[str, Any] = _interpolate(
            raw, (), self.env, self.doc, self.problems, self.missing
        )
        self._collect_secrets(data, ())
        for key in ("platforms", "schema", "segments", "mappings", "sync", "engagement"):
            if data.get(key) is None and key in data:
                data[key] = {}

        core = {k: v for k, v in data.items() if k != "platforms"}
        base: Config | None = None
        try:
            base = Config.model_validate(core)
        except ValidationError as exc:
            self._pydantic_problems(exc, Config, (), core)

        # Cross-references and rules are checked on the raw data, so that a broken section
        # does not hide the problems of the others.
        platforms = self._platforms(data.get("platforms", {}))
        configured = _as_dict(data.get("platforms"))
        schema_fields = _valid_fields(data.get("schema"))
        self._check_names(data)
        self._check_references(data, configured, schema_fields)
        rules = self._rules(data.get("segments"), schema_fields, configured)
        self._mappings(data.get("mappings"), configured)
        if self.problems or base is None:
            raise ConfigError(self._sorted(self.problems), tuple(self.warnings))
        mappings = {name: self._resolve(path) for name, path in base.mappings.items()}
        config = base.model_copy(update={"platforms": platforms, "mappings": mappings})
        config._rules = rules
        self.warnings.extend(_unread_warnings(config))
        config._warnings = tuple(self.warnings)
        config._source = Path(self.doc.source)
        return config

    # -- helpers ---------------------------------------------------------------------------

    def _sorted(self, problems: list[ConfigProblem]) -> list[ConfigProblem]:
        redacted = [self._redact(p) for p in problems]
        return sorted(redacted, key=lambda p: (p.line or 0, p.column or 0))

    def _redact(self, problem: ConfigProblem) -> ConfigProblem:
        message, detail = problem.message, problem.detail
        for secret in sorted(self.secrets, key=len, reverse=True):
            message = message.replace(secret, "***")
            detail = detail.replace(secret, "***") if detail else detail
        return dataclasses.replace(problem, message=message, detail=detail)

    def _collect_secrets(self, value: Any, path: YamlPath) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                self._collect_secrets(v, (*path, str(k)))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self._collect_secrets(v, (*path, i))
        elif isinstance(value, str):
            last = str(path[-1]) if path else ""
            if _SECRET_KEY.search(last):
                self._add_secret(value)
            if path == ("state",):
                match = re.match(r"^[a-z+]+://[^:/@]*:([^@]+)@", value)
                if match:
                    self._add_secret(match.group(1))

    def _add_secret(self, value: str) -> None:
        """Remember a secret for redaction (short values would mangle every message)."""
        if len(value) >= _MIN_SECRET_LENGTH:
            self.secrets.add(value)

    def _resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path)

    def _pydantic_problems(
        self, exc: ValidationError, model: type[BaseModel], prefix: YamlPath, data: Any
    ) -> None:
        for err in exc.errors(include_url=False, include_input=False):
            path = _data_path(data, tuple(err["loc"]))
            full = (*prefix, *path)
            if self._caused_by_missing(full, prefix):
                continue  # the missing ${VAR} is the problem, reported once
            if err["type"] == "extra_forbidden":
                allowed = _allowed_keys(model, path[:-1])
                close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                known = f" (known: {', '.join(sorted(allowed))})" if allowed and not close else ""
                message = f"unknown key {path[-1]!r}{hint}{known}"
            elif err["type"] == "missing":
                message = "field required"
            else:
                msg = str(err["msg"]).removeprefix("Value error, ")
                message = msg[:1].lower() + msg[1:]
            self.problems.append(self.doc.problem(full, message))

    def _caused_by_missing(self, path: YamlPath, block: YamlPath) -> bool:
        """Whether an invalid value at `path` (in the block at `block`) follows from a missing
        ${VAR}: at or under its place, or a check of the whole platform block holding one."""
        if any(path[: len(m)] == m for m in self.missing):
            return True
        is_platform = len(block) == 2 and block[0] == "platforms"
        return is_platform and path == block and any(m[:2] == block for m in self.missing)

    def _unneeded_secrets(self, path: YamlPath, model: type[ConnectorConfig]) -> set[str]:
        """Without `need_secrets`: the secret settings of the block at `path` whose ${VAR} is
        missing; their problems become warnings."""
        if self.need_secrets:
            return set()
        secret_keys = {
            info.alias or name
            for name, info in model.model_fields.items()
            if _is_secret_annotation(info.annotation)
        }
        found = set()
        for where, problem in self.missing.items():
            key = str(where[2]) if len(where) == 3 and where[:2] == path else None
            if key is not None and (key in secret_keys or _SECRET_KEY.search(key)):
                found.add(key)
                if problem in self.problems:
                    self.problems.remove(problem)
                self.warnings.append(
                    f"{problem}; only commands that call the platform need it"
                )
        return found

    def _unchecked(
        self, model: type[ConnectorConfig], block: dict[str, Any], unset: set[str]
    ) -> ConnectorConfig:
        """The block with its `unset` secrets empty, each other setting converted to its type
        (the block validated but for those secrets and the checks that need them)."""
        values: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            key = info.alias or name
            if key in unset:
                values[name] = SecretStr("")
            elif key in block:
                kind: Any = info.annotation
                values[name] = TypeAdapter(kind).validate_python(block[key])
        return model.model_construct(**values)

    # -- sections --------------------------------------------------------------------------

    def _platforms(self, blocks: Any) -> dict[str, ConnectorConfig]:
        out: dict[str, ConnectorConfig] = {}
        if not isinstance(blocks, dict):
            self.problems.append(self.doc.problem(("platforms",), "expected a mapping"))
            return out
        entries = {e.name: e for e in registry.entries()}
        for name, block in blocks.items():
            path: YamlPath = ("platforms", name)
            block = {} if block is None else block
            if not isinstance(block, dict):
                self.problems.append(self.doc.problem(path, "expected a mapping of settings"))
                continue
            entry = entries.get(name)
            if entry is None:
                close = difflib.get_close_matches(name, list(entries), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                installed = ", ".join(entries) or "none"
                self.problems.append(
                    self.doc.problem(
                        path, f"no connector called {name!r}{hint} (installed: {installed})"
                    )
                )
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                cls = entry.load()
            if cls is None:
                self.warnings.append(
                    f"platforms.{name}: connector unavailable ({entry.error}); "
                    "its settings were not checked"
                )
                out[name] = self._unvalidated(path, block)
                continue
            model = cls.config_model
            for field_name, info in model.model_fields.items():
                value = block.get(info.alias or field_name)
                if isinstance(value, str) and _is_secret_annotation(info.annotation):
                    self._add_secret(value)
            unset = self._unneeded_secrets(path, model)
            try:
                out[name] = model.model_validate(block)
            except ValidationError as exc:
                before = len(self.problems)
                self._pydantic_problems(exc, model, path, block)
                if unset and len(self.problems) == before:
                    out[name] = self._unchecked(model, block, unset)
        return out

    def _unvalidated(self, path: YamlPath, block: dict[str, Any]) -> ConnectorConfig:
        wrapped = {
            k: SecretStr(v) if isinstance(v, str) and _SECRET_KEY.search(str(k)) else v
            for k, v in block.items()
        }
        base_keys = set(ConnectorConfig.model_fields)
        try:
            return _UnvalidatedPlatform.model_validate(wrapped)
        except ValidationError as exc:
            self._pydantic_problems(exc, ConnectorConfig, path, block)
            return _UnvalidatedPlatform.model_validate(
                {k: v for k, v in wrapped.items() if k not in base_keys}
            )

    def _check_names(self, data: dict[str, Any]) -> None:
        schema = data.get("schema")
        if isinstance(schema, dict):
            for name in schema:
                if not _NAME.match(str(name)):
                    self.problems.append(
                        self.doc.problem(
                            ("schema", str(name)),
                            "a field name is letters, digits and _, not starting with a digit",
                        )
                    )
                elif name in _BUILTIN_NAMES:
                    self.problems.append(
                        self.doc.problem(("schema", str(name)), f"{name!r} is built in")
                    )
                elif name in ENGAGEMENT_FIELDS:
                    self.problems.append(self.doc.problem(
                        ("schema", str(name)),
                        f"{name!r} is an engagement fact segsync reads from the platforms "
                        "(read only, never written; rules use it as it is): name your field "
                        f"otherwise, e.g. 'crm_{name}'",
                    ))
        segments = data.get("segments")
        if isinstance(segments, dict):
            for name in segments:
                if not _SEGMENT_NAME.match(str(name)):
                    self.problems.append(
                        self.doc.problem(
                            ("segments", str(name)),
                            "a segment name is 1-100 letters, digits, _ - . and spaces",
                        )
                    )

    def _known_platform(self, path: YamlPath, name: str, configured: Mapping[str, Any]) -> None:
        if name in configured:
            return
        close = difflib.get_close_matches(name, list(configured), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        self.problems.append(
            self.doc.problem(path, f"{name!r} is not a configured platform{hint}")
        )

    def _known_field(self, path: YamlPath, name: str, fields: Mapping[str, FieldSpec]) -> None:
        if name in fields:
            return
        close = difflib.get_close_matches(name, list(fields), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        self.problems.append(self.doc.problem(path, f"unknown field {name!r}{hint}"))

    def _check_references(
        self,
        data: dict[str, Any],
        configured: Mapping[str, Any],
        fields: Mapping[str, FieldSpec],
    ) -> None:
        sync = _as_dict(data.get("sync"))
        conflicts = _as_dict(sync.get("conflicts"))
        default = conflicts.get("default")
        if isinstance(default, list):
            for i, name in enumerate(default):
                if isinstance(name, str):
                    self._known_platform(("sync", "conflicts", "default", i), name, configured)
        for field_name, order in _as_dict(conflicts.get("fields")).items():
            self._known_field(("sync", "conflicts", "fields", field_name), field_name, fields)
            for i, name in enumerate(order if isinstance(order, list) else []):
                if isinstance(name, str):
                    path: YamlPath = ("sync", "conflicts", "fields", field_name, i)
                    self._known_platform(path, name, configured)
        for field_name, per_platform in _as_dict(sync.get("direction")).items():
            if field_name not in _DIRECTED_BUILTINS:  # consent, tags and "*" flow too
                self._known_field(("sync", "direction", field_name), field_name, fields)
            for name in _as_dict(per_platform):
                self._known_platform(("sync", "direction", field_name, name), name, configured)
        reconfirm = sync.get("reconfirm")
        for i, name in enumerate(reconfirm if isinstance(reconfirm, list) else []):
            if isinstance(name, str):
                self._known_platform(("sync", "reconfirm", i), name, configured)
        for name in _as_dict(sync.get("on_delete")):
            self._known_platform(("sync", "on_delete", name), name, configured)
        for name in _as_dict(_as_dict(data.get("engagement")).get("platforms")):
            self._known_platform(("engagement", "platforms", name), name, configured)
        for seg_name, seg in _as_dict(data.get("segments")).items():
            for name in _as_dict(_as_dict(seg).get("publish")):
                self._known_platform(("segments", seg_name, "publish", name), name, configured)
        for name in _as_dict(data.get("mappings")):
            self._known_platform(("mappings", name), name, configured)

    def _rules(
        self, segments: Any, fields: Mapping[str, FieldSpec], platforms: Mapping[str, Any]
    ) -> dict[str, ast.Rule]:
        schema = Schema(fields={**ENGAGEMENT_FIELDS, **qualified_fields(platforms), **fields})
        rules: dict[str, ast.Rule] = {}
        for name, seg in _as_dict(segments).items():
            source = _as_dict(seg).get("rule")
            if not isinstance(source, str | dict):
                continue  # reported by the model validation
            path: YamlPath = ("segments", name, "rule")
            try:
                rules[name] = load_rule(source, schema)
            except RuleError as exc:
                self.problems.extend(self._rule_problems(path, source, exc))
        return rules

    def _rule_problems(
        self, path: YamlPath, source: str | dict[str, Any], exc: RuleError
    ) -> list[ConfigProblem]:
        """One problem per rule issue: `line:column message` and the caret rendering."""
        text = source if isinstance(source, str) else None
        if isinstance(exc, RuleTypeError):
            found = [(i.message, i.span) for i in exc.issues]
        elif isinstance(exc, RuleSyntaxError):
            found = [(exc.message, exc.span)]
        else:
            found = [(str(exc), None)]
        problems = []
        for message, span in found:
            problem = self.doc.problem(path, message)
            if span is not None and text is not None:
                problem = dataclasses.replace(
                    problem,
                    message=f"{span.line}:{span.column} {message}",
                    detail=render_caret(text, span),
                    column=self._rule_column(path, span.line, span.column, problem.column),
                )
            problems.append(problem)
        return problems

    def _rule_column(
        self, path: YamlPath, line: int, column: int, fallback: int | None
    ) -> int | None:
        """The file column of a rule position, when the rule is a one-line scalar."""
        pos = self.doc.positions.get(path)
        style = self.doc.styles.get(path)
        if pos is None or line != 1 or style not in (None, '"', "'"):
            return fallback
        return pos[1] + (1 if style else 0) + column - 1

    def _mappings(self, overrides: Any, configured: Mapping[str, Any]) -> None:
        files = {k: v for k, v in _as_dict(overrides).items() if isinstance(v, str)}
        for name in configured:
            override = files.get(name)
            path: YamlPath = ("mappings", name) if override else ("platforms", name)
            try:
                load_mapping(name, self._resolve(Path(override)) if override else None)
            except FileNotFoundError as exc:
                if override is not None:
                    self.problems.append(
                        self.doc.problem(path, f"mapping file not found: {exc.filename or exc}")
                    )
            except MappingError as exc:
                for p in exc.problems:
                    where = f"{p.file}:{p.line}" if p.line else p.file
                    inner = f"{p.path}: " if p.path else ""
                    self.problems.append(
                        self.doc.problem(path, f"in mapping {where}: {inner}{p.message}")
                    )


def _as_dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _valid_fields(schema: Any) -> dict[str, FieldSpec]:
    """The schema entries that are valid on their own (the others are reported elsewhere)."""
    out: dict[str, FieldSpec] = {}
    for name, value in _as_dict(schema).items():
        if not _NAME.match(str(name)) or name in _BUILTIN_NAMES:
            continue
        try:
            out[str(name)] = FieldSpec.model_validate(_field_shorthand(value))
        except ValidationError:
            continue
    return out


def _data_path(data: Any, loc: tuple[str | int, ...]) -> YamlPath:
    """The part of a pydantic error location that names places in the data."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            out.append(part)
            node = node[part]
        elif (
            i == len(loc) - 1
            and isinstance(part, str)
            and not any(ch in part for ch in "[]()-")
            and part not in _TYPE_LABELS
        ):
            out.append(part)
    return tuple(out)


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            arms = [a for a in typing.get_args(tp) if a is not type(None)]
            structured = [
                a for a in arms
                if (isinstance(a, type) and issubclass(a, BaseModel))
                or typing.get_origin(a) in (dict, list, tuple)
            ]
            tp = (structured or arms)[0]
        else:
            return tp


def _allowed_keys(model: type[BaseModel], path: YamlPath) -> list[str]:
    """The keys a model accepts at `path` (for did-you-mean on unknown keys)."""
    tp: Any = model
    for part in path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            by_alias = {(info.alias or name): info for name, info in tp.model_fields.items()}
            info = by_alias.get(str(part))
            if info is None:
                return []
            tp = info.annotation
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) in (list, tuple):
            tp = typing.get_args(tp)[0]
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [info.alias or name for name, info in tp.model_fields.items()]
    return []


def _is_secret_annotation(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret_annotation(a) for a in typing.get_args(annotation))


# -- JSON Schema and the reference document -------------------------------------------------


def config_json_schema(*, include_connectors: bool = True) -> dict[str, Any]:
    """The JSON Schema of segsync.yaml, for editors.

    With `include_connectors`, each installed and loadable connector's settings are described
    under `platforms`; without, only the settings every connector shares.
    """
    schema = Config.model_json_schema(by_alias=True)
    schema["title"] = "segsync configuration"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    props = schema["properties"]
    field_types = [t.value for t in FieldType]
    props["schema"]["additionalProperties"] = {
        "anyOf": [{"type": "string", "enum": field_types}, {"$ref": "#/$defs/FieldSpec"}]
    }
    props["state"] = {
        "type": "string",
        "default": DEFAULT_STATE_URL,
        "description": props["state"].get("description", ""),
        "title": "State",
    }
    sync_props = schema["$defs"]["SyncConfig"]["properties"]
    sync_props["overlap"] = {
        "anyOf": [{"type": "number", "minimum": 0}, {"type": "string"}],
        "default": "5m",
        "description": sync_props["overlap"].get("description", ""),
        "title": "Overlap",
    }
    shared = ConnectorConfig.model_json_schema()
    platforms: dict[str, Any] = {
        "type": "object",
        "description": props["platforms"].get("description", ""),
        "title": "Platforms",
        "additionalProperties": {
            "type": "object",
            "description": "a connector's settings; every connector accepts: "
            + ", ".join(sorted(shared.get("properties", {}))),
        },
    }
    if include_connectors:
        connector_props: dict[str, Any] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for entry in registry.entries():
                cls = entry.load()
                if cls is not None:
                    connector_props[entry.name] = cls.config_model.model_json_schema()
        if connector_props:
            platforms["properties"] = connector_props
    props["platforms"] = platforms
    schema["$defs"].pop("ConnectorConfig", None)
    return schema


def _schema_type(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "enum" in prop:
        return " | ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if "anyOf" in prop:
        return " or ".join(_schema_type(p, defs) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_schema_type(prop.get('items', {}), defs)}"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"map of name -> {_schema_type(prop['additionalProperties'], defs)}"
    return str(kind)


def _table(title: str, node: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    lines = [f"### {title}", ""]
    if node.get("description"):
        lines += [" ".join(str(node["description"]).split()), ""]
    if "enum" in node:
        values = ", ".join(f"`{v}`" for v in node["enum"])
        return [*lines, f"One of: {values}.", ""]
    lines += ["| key | type | default | description |", "|---|---|---|---|"]
    required = set(node.get("required", []))
    for key, prop in node.get("properties", {}).items():
        if key in required:
            default = "(required)"
        elif "default" in prop:
            default = f"`{json.dumps(prop['default'])}`"
        else:
            default = "empty"
        desc = " ".join(str(prop.get("description", "")).split()).replace("|", "\\|")
        kind = _schema_type(prop, defs).replace("|", "\\|")
        lines.append(f"| `{key}` | {kind} | {default.replace('|', chr(92) + '|')} | {desc} |")
    return [*lines, ""]


def placeholder_settings(connector: type[Connector]) -> dict[str, str]:
    """The required settings of `connector`'s config block, each as a `${PLATFORM_FIELD}`
    environment placeholder (what `segsync init` and the reference's example show)."""
    return {
        key: "${" + f"{connector.name}_{key}".upper() + "}"
        for name, info in connector.config_model.model_fields.items()
        if info.is_required()
        for key in (info.alias or name,)
    }


def example_publish_mode(connector: type[Connector]) -> PublishMode:
    """The publish mode an example gives a platform: auto where it has native segments,
    else a list (its only form)."""
    if connector.capabilities.native_segments is SegmentRepresentation.NONE:
        return PublishMode.LIST
    return PublishMode.AUTO


def bundled_connectors() -> list[type[Connector]]:
    """The loadable connectors installed with segsync's own distribution, by name (the
    reference document describes these, whatever else is installed)."""
    return [
        cls
        for entry in registry.installed()
        if entry.distribution == _DISTRIBUTION and (cls := entry.load()) is not None
    ]


def _flow(entries: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{key}: {json.dumps(value)}" for key, value in entries.items()) + "}"


def example_config(connectors: list[type[Connector]]) -> str:
    """The example segsync.yaml at the top of docs/configuration.md, for `connectors`."""
    names = [c.name for c in connectors]
    platforms = "".join(f"\n  {c.name}: {_flow(placeholder_settings(c))}" for c in connectors)
    publish = ", ".join(f"{c.name}: {example_publish_mode(c).value}" for c in connectors)
    with_mapping = [c.name for c in connectors if c.default_mapping is not None]
    lines = [
        "state: sqlite:///.segsync/state.db",
        "schema:",
        "  first_name: text",
        "  country: {type: enum, options: [FR, BE, DE]}",
        "  lifetime_value: number",
        "  last_purchase_at: date",
        "platforms:" + (platforms or " {}"),
        "sync:",
        "  conflicts: {default: latest"
        + (f", fields: {{country: [{', '.join(names)}]}}" if names else "")
        + "}",
        *([f"  direction: {{lifetime_value: {{{names[0]}: destination-only}}}}"] if names else []),
        "  strictness: warn",
        "  overlap: 5m",
        "segments:",
        "  actifs_fr:",
        "    description: engaged contacts in France",
        "    rule: 'country = \"FR\" and open_rate > 0.5 and last_open within 7 days'",
        *([f"    publish: {{{publish}}}"] if publish else []),
    ]
    if with_mapping:
        lines += [
            "mappings:",
            f"  {with_mapping[0]}: mappings/{with_mapping[0]}.yaml"
            "   # optional: replaces (or `extends: default`) the shipped mapping",
        ]
    return "\n".join(lines) + "\n"


def render_config_reference() -> str:
    """The Markdown of docs/configuration.md, generated from `config_json_schema`."""
    schema = config_json_schema(include_connectors=False)
    defs = schema["$defs"]
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by segsync.config.render_config_reference(); do not edit by hand."
        " Regenerate with `segsync config reference > docs/configuration.md`. -->",
        "",
        "segsync reads the file named by `-c FILE` (before or after the command), else by"
        " `$SEGSYNC_CONFIG`, else the first `segsync.yaml` in the current directory or one of"
        " its parents; a `.env` beside it sets the variables the environment does not (it"
        " never overrides one). `segsync check` validates it and lists every problem"
        " with its place (`segsync check --online` also calls each platform: its checks, and"
        " the account the block reaches; see [troubleshooting.md](troubleshooting.md) for a"
        " block now reaching another account than the state's, and `segsync rebind`);"
        " `segsync config schema` prints the JSON Schema (with the settings of"
        " every installed connector) for editors.",
        "",
        "Every string value may use `${VAR}` or `${VAR:-default}` to read the environment"
        " (`$$` is a literal `$`). Keep API keys in the environment: connector secrets are"
        " never printed. segsync also accepts `${VAR}` unquoted inside `{...}` flow mappings,"
        " but YAML editors do not: quote it there (`{api_key: \"${KEY}\"}`).",
        "",
        "## Example",
        "",
        "```yaml",
        *example_config(bundled_connectors()).splitlines(),
        "```",
        "",
        "## Top-level keys",
        "",
    ]
    out += _table("segsync.yaml", schema, defs)[2:]
    shared = ConnectorConfig.model_json_schema()
    shared["description"] = (
        "Settings every connector accepts, next to its own (`segsync config schema` lists "
        "them for the installed connectors; `segsync connectors` shows what each can do)."
    )
    out += _table("Platform settings shared by all connectors", shared, defs)
    out += ["## Sections", ""]
    for name in sorted(defs):
        out += _table(name, defs[name], defs)
    out += [
        "## Canonical engagement fields",
        "",
        "Read from the platforms, usable in rules, never written back.",
        "",
        "| field | type | description |",
        "|---|---|---|",
    ]
    for name, spec in ENGAGEMENT_FIELDS.items():
        out.append(f"| `{name}` | {spec.type.value} | {spec.description or ''} |")
    return "\n".join(out).rstrip() + "\n"
