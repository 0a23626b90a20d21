"""Field maps between the canonical model and each platform's records.

A mapping file (shipped inside each connector's package, named by its `default_mapping`; a
user's file in `mappings:` replaces or `extends` it) says, per canonical field, where the value
lives in the platform's record (a dotted `path`), its canonical `type`, which way it flows
(`in`: platform to canonical only; `out`: canonical to platform only; `both`), and how values
change on the way: string `transforms` (trim, lowercase, uppercase, title), a `format` for
dates (`iso`, `epoch_ms`, or a strftime pattern such as `%m/%d`), a `values` map (canonical
value -> platform value, reversed on the way in) and, for list-valued platform data, a
`reduce` (`count`, `sum:<key>`, `max:<key>`). `engagement` entries are always read-only.
`consent` and `tags` record the platform's vocabulary for those built-ins.

`PlatformMapping.to_platform(fields)` turns canonical values into a nested platform dict;
`from_platform(record)` and `engagement_from_platform(record)` read canonical values back.
Files are validated with pydantic; `MappingError` lists every problem with the file path and
YAML path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
from collections.abc import Iterator, Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from segsync.connector import UnknownConnector, registry
from segsync.engagement import AGGREGATES
from segsync.engagement import ENGAGEMENT_FIELDS as _ENGAGEMENT_FIELDS
from segsync.model import ConsentStatus, FieldType, coerce_value

__all__ = [
    "ENGAGEMENT_AGGREGATES",
    "ENGAGEMENT_FIELDS",
    "ConsentMapping",
    "Direction",
    "FieldMapping",
    "MappingError",
    "MappingFile",
    "MappingProblem",
    "MappingValueError",
    "PlatformMapping",
    "TagsMapping",
    "Transform",
    "load_mapping",
    "shipped_mapping",
]

log = logging.getLogger("segsync.mapping")

# canonical engagement fields (aggregates of the platforms' values, usable in rules, never
# written back) and how each is aggregated: declared as data in segsync.engagement
ENGAGEMENT_FIELDS = _ENGAGEMENT_FIELDS
ENGAGEMENT_AGGREGATES = AGGREGATES


class Direction(enum.StrEnum):
    """Which way a mapped field flows."""

    IN = "in"  # platform -> canonical only (read-only on the platform side)
    OUT = "out"  # canonical -> platform only (the platform's copy is not read back)
    BOTH = "both"


class Transform(enum.StrEnum):
    """String normalisations applied to text values in both directions."""

    TRIM = "trim"
    LOWERCASE = "lowercase"
    UPPERCASE = "uppercase"
    TITLE = "title"

    def apply(self, value: str) -> str:
        """The transformed string."""
        match self:
            case Transform.TRIM:
                return value.strip()
            case Transform.LOWERCASE:
                return value.lower()
            case Transform.UPPERCASE:
                return value.upper()
            case Transform.TITLE:
                return value.title()


_DATE_TYPES = (FieldType.DATE, FieldType.DATETIME)


class FieldMapping(BaseModel):
    """One canonical field and where it lives on the platform; see the module docstring."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(min_length=1, description="dotted path in the platform record")
    type: FieldType = FieldType.TEXT
    direction: Direction = Direction.BOTH
    transforms: tuple[Transform, ...] = ()
    format: str = Field(
        default="iso", description="dates: iso, epoch_ms, or a strftime pattern like %m/%d"
    )
    values: dict[str, str] = Field(
        default_factory=dict, description="canonical value -> platform value"
    )
    reduce: str | None = Field(
        default=None, description="list-valued platform data: count, sum:<key> or max:<key>"
    )

    @model_validator(mode="after")
    def _consistent(self) -> FieldMapping:
        if self.format not in ("iso", "epoch_ms") and "%" not in self.format:
            raise ValueError(f"format {self.format!r}: use iso, epoch_ms or a strftime pattern")
        if self.format != "iso" and self.type not in _DATE_TYPES:
            raise ValueError(f"format applies to date and datetime fields, not {self.type.value}")
        if self.reduce is not None:
            kind, _, key = self.reduce.partition(":")
            if kind == "count" and key:
                raise ValueError("reduce 'count' takes no key")
            if kind not in ("count", "sum", "max") or (kind != "count" and not key):
                raise ValueError(f"reduce {self.reduce!r}: use count, sum:<key> or max:<key>")
            if self.direction is not Direction.IN:
                raise ValueError("a reduced field can only be read (direction: in)")
        if len(set(self.values.values())) != len(self.values):
            raise ValueError("values: two canonical values map to the same platform value")
        return self

    @property
    def readable(self) -> bool:
        """Whether the platform's value is read into the canonical field."""
        return self.direction is not Direction.OUT

    @property
    def writable(self) -> bool:
        """Whether the canonical value is written to the platform."""
        return self.direction is not Direction.IN


class ConsentMapping(BaseModel):
    """Where the platform holds email consent, and its vocabulary both ways."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    to_canonical: dict[str, ConsentStatus] = Field(
        description="platform value (as text) -> canonical status"
    )
    to_platform: dict[ConsentStatus, str | bool] = Field(
        default_factory=dict,
        description="canonical status -> platform value; absent = not writable this way",
    )


class TagsMapping(BaseModel):
    """Where tags live on the platform when they are a field (multi-select property/attribute)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    separator: str | None = Field(
        default=None, description="values joined by this separator (None: a JSON list)"
    )


class MappingFile(BaseModel):
    """The content of one mapping file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: str
    extends: Literal["default"] | None = Field(
        default=None, description="start from the shipped file and override entries by name"
    )
    value_encoding: Literal["json", "string"] = Field(
        default="json", description="string: numbers and booleans are written as text"
    )
    clear_value: str | None = Field(
        default=None, description="what is written to clear a field (e.g. an empty string)"
    )
    fields: dict[str, FieldMapping] = Field(default_factory=dict)
    engagement: dict[str, FieldMapping] = Field(default_factory=dict)
    consent: ConsentMapping | None = None
    tags: TagsMapping | None = None

    @field_validator("engagement")
    @classmethod
    def _engagement_read_only(cls, value: dict[str, FieldMapping]) -> dict[str, FieldMapping]:
        writable = [name for name, m in value.items() if m.direction is not Direction.IN]
        if writable:
            raise ValueError(f"engagement fields {writable} must have direction: in")
        return value

    @model_validator(mode="after")
    def _not_twice(self) -> MappingFile:
        both = sorted(set(self.fields) & set(self.engagement))
        if both:
            raise ValueError(f"{both} mapped both as fields and as engagement")
        return self


@dataclasses.dataclass(frozen=True)
class MappingProblem:
    """One problem in a mapping file: where (file, YAML path, line) and what."""

    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class MappingError(ValueError):
    """A mapping file that cannot be used; `problems` lists every reason."""

    def __init__(self, problems: list[MappingProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in problems))


class MappingValueError(ValueError):
    """A platform value that does not fit its canonical field (raised in strict reads)."""


class PlatformMapping:
    """A validated mapping for one platform, applying directions and transforms."""

    def __init__(self, spec: MappingFile, *, source: str | None = None) -> None:
        self.spec = spec
        self.source = source

    def __repr__(self) -> str:
        return f"PlatformMapping(platform={self.platform!r}, fields={len(self.spec.fields)})"

    @property
    def platform(self) -> str:
        return self.spec.platform

    @property
    def fields(self) -> Mapping[str, FieldMapping]:
        return self.spec.fields

    @property
    def engagement(self) -> Mapping[str, FieldMapping]:
        return self.spec.engagement

    def platform_path(self, name: str) -> str | None:
        """The platform path of a canonical field or engagement field, or None."""
        entry = self.spec.fields.get(name) or self.spec.engagement.get(name)
        return entry.path if entry else None

    # -- canonical -> platform -------------------------------------------------------------

    def to_platform(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The platform body for canonical `fields` (nested by path).

        Only writable mapped fields are included; None clears (becomes `clear_value`).
        Unmapped names are left out (see `unmapped`).
        """
        out: dict[str, Any] = {}
        for name, value in fields.items():
            entry = self.spec.fields.get(name)
            if entry is None or not entry.writable:
                continue
            _set_path(out, entry.path, self._encode(entry, value))
        return out

    def unmapped(self, names: Mapping[str, Any] | list[str]) -> list[str]:
        """The canonical names among `names` that this platform does not write."""
        return [n for n in names if not (n in self.spec.fields and self.spec.fields[n].writable)]

    def _encode(self, entry: FieldMapping, value: Any) -> Any:
        if value is None or value == "":
            return self.spec.clear_value
        value = coerce_value(entry.type, value)
        if entry.type in _DATE_TYPES:
            value = _format_date(value, entry.format)
        elif entry.type is FieldType.MULTI_ENUM:
            value = sorted(self._encode_text(entry, str(v)) for v in value)
            return ";".join(value) if self.spec.value_encoding == "string" else value
        if isinstance(value, str):
            return self._encode_text(entry, value)
        if self.spec.value_encoding == "string":
            if isinstance(value, bool):
                return "true" if value else "false"
            return _number_text(value)
        return value

    @staticmethod
    def _encode_text(entry: FieldMapping, value: str) -> str:
        for transform in entry.transforms:
            value = transform.apply(value)
        return entry.values.get(value, value)

    # -- platform -> canonical -------------------------------------------------------------

    def from_platform(
        self, record_fields: Mapping[str, Any], *, strict: bool = False
    ) -> dict[str, Any]:
        """Canonical field values read from a platform record (readable entries only).

        A path absent from the record is left out; an empty value is None (unset). A value
        that does not fit its field is dropped with a warning, or raises MappingValueError
        when `strict`.
        """
        return self._read(self.spec.fields, record_fields, strict)

    def engagement_from_platform(
        self, record_fields: Mapping[str, Any], *, strict: bool = False
    ) -> dict[str, Any]:
        """Canonical engagement values read from a platform record (never written back)."""
        return self._read(self.spec.engagement, record_fields, strict)

    def _read(
        self, entries: Mapping[str, FieldMapping], record: Mapping[str, Any], strict: bool
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        problems: list[str] = []
        for name, entry in entries.items():
            if not entry.readable:
                continue
            found, raw = _get_path(record, entry.path)
            if not found:
                continue
            try:
                out[name] = self._decode(entry, raw)
            except (ValueError, TypeError) as exc:
                problems.append(f"{name} ({entry.path}): {exc}")
        if problems:
            if strict:
                raise MappingValueError("; ".join(problems))
            for problem in problems:
                log.warning("%s: value dropped: %s", self.platform, problem)
        return out

    def _decode(self, entry: FieldMapping, raw: Any) -> Any:
        if entry.reduce is not None:
            raw = _reduce(raw, entry.reduce)
        if raw is None or raw == "" or raw == []:
            return None
        if entry.type is FieldType.MULTI_ENUM:
            items = raw.split(";") if isinstance(raw, str) else list(raw)
            return coerce_value(
                entry.type, [self._decode_text(entry, str(i)) for i in items if str(i) != ""]
            )
        if isinstance(raw, str):
            raw = self._decode_text(entry, raw)
        if entry.type in _DATE_TYPES:
            raw = _parse_date(raw, entry.format, entry.type)
        return coerce_value(entry.type, raw)

    @staticmethod
    def _decode_text(entry: FieldMapping, value: str) -> str:
        reverse = {v: k for k, v in entry.values.items()}
        value = reverse.get(value, value)
        for transform in entry.transforms:
            value = transform.apply(value)
        return value

    # -- consent and tags ------------------------------------------------------------------

    def consent_from_platform(self, record: Mapping[str, Any]) -> ConsentStatus | None:
        """The canonical consent a record holds, or None when unmapped or unknown."""
        consent = self.spec.consent
        if consent is None:
            return None
        found, raw = _get_path(record, consent.path)
        if not found or raw is None:
            return None
        key = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
        return consent.to_canonical.get(key)

    def consent_to_platform(self, status: ConsentStatus) -> dict[str, Any] | None:
        """The platform body that sets `status`, or None when it cannot be written this way."""
        consent = self.spec.consent
        if consent is None or status not in consent.to_platform:
            return None
        out: dict[str, Any] = {}
        _set_path(out, consent.path, consent.to_platform[status])
        return out

    def tags_from_platform(self, record: Mapping[str, Any]) -> frozenset[str] | None:
        """Tags held in a field of the record, or None when tags are not a field here."""
        tags = self.spec.tags
        if tags is None:
            return None
        found, raw = _get_path(record, tags.path)
        if not found or raw in (None, ""):
            return frozenset()
        items = raw.split(tags.separator or ";") if isinstance(raw, str) else raw
        return frozenset(str(i).strip() for i in items if str(i).strip())

    def tags_to_platform(self, tags: frozenset[str] | set[str]) -> dict[str, Any] | None:
        """The platform body holding `tags` as a field, or None when tags are not a field."""
        spec = self.spec.tags
        if spec is None:
            return None
        values = sorted(tags)
        out: dict[str, Any] = {}
        _set_path(out, spec.path, spec.separator.join(values) if spec.separator else values)
        return out


# -- paths, dates, reductions ----------------------------------------------------------------


def _set_path(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = target
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _get_path(record: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _collect(items: Any, key: str) -> Iterator[Any]:
    if isinstance(items, list):
        for item in items:
            yield from _collect(item, key)
        return
    if not key:
        yield items
        return
    head, _, rest = key.partition(".")
    if isinstance(items, Mapping) and head in items:
        yield from _collect(items[head], rest)


def _reduce(raw: Any, how: str) -> Any:
    kind, _, key = how.partition(":")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ValueError(f"reduce {how!r} needs a list, got {type(raw).__name__}")
    if kind == "count":
        return len(raw)
    values = [v for v in _collect(raw, key) if v is not None]
    if kind == "sum":
        return sum(float(v) for v in values)
    if not values:
        return None
    try:  # timestamps with different offsets compare as moments, not as text
        return max(values, key=lambda v: dt.datetime.fromisoformat(str(v).replace("Z", "+00:00")))
    except ValueError:
        return max(values, key=str)


def _format_date(value: dt.date, fmt: str) -> str | int:
    if fmt == "epoch_ms":
        moment = (
            value
            if isinstance(value, dt.datetime)
            else dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        )
        return int(moment.timestamp() * 1000)
    if fmt == "iso":
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        return value.isoformat()
    return value.strftime(fmt)


def _parse_date(raw: Any, fmt: str, ftype: FieldType) -> Any:
    if (isinstance(raw, int | float) and not isinstance(raw, bool)) or (
        isinstance(raw, str) and raw.isdigit() and len(raw) >= 10
    ):
        moment = dt.datetime.fromtimestamp(int(raw) / 1000, tz=dt.UTC)
        return moment.date() if ftype is FieldType.DATE else moment
    if fmt in ("iso", "epoch_ms") or not isinstance(raw, str):
        return raw
    parsed = dt.datetime.strptime(raw, fmt)
    if "%Y" not in fmt and "%y" not in fmt:
        parsed = parsed.replace(year=2000)  # a leap year, so 02/29 parses
    return parsed.date() if ftype is FieldType.DATE else parsed.replace(tzinfo=dt.UTC)


def _number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- loading ---------------------------------------------------------------------------------


def shipped_mapping(platform: str) -> Traversable | None:
    """The mapping file the connector of `platform` ships (its `default_mapping` resource),
    or None when no such connector is installed or it ships none."""
    try:
        cls = registry.get(platform)
    except UnknownConnector:
        return None
    resource = cls.default_mapping_resource()
    return resource if resource is not None and resource.is_file() else None


def _yaml_lines(text: str) -> dict[tuple[str, ...], int]:
    """1-based line of every mapping key path in a YAML document (best effort)."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                lines.setdefault(sub, key.start_mark.line + 1)
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines.setdefault((*path, str(i)), item.start_mark.line + 1)
                walk(item, (*path, str(i)))

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _parse_file(path: Traversable) -> MappingFile:
    from segsync.config import YamlDocument

    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError([MappingProblem(source, "", f"cannot read: {exc.strerror}")]) from None
    doc = YamlDocument.parse(text, source)
    if doc.problems:
        raise MappingError(
            [MappingProblem(source, p.path, p.message, p.line) for p in doc.problems]
        )
    if not isinstance(doc.data, dict):
        raise MappingError([MappingProblem(source, "", "expected a mapping at the top level")])
    try:
        return MappingFile.model_validate(doc.data)
    except ValidationError as exc:
        lines = _yaml_lines(text)
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = tuple(str(p) for p in err["loc"] if not str(p).startswith(("function-", "[")))
            line = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)
            if err["type"] == "extra_forbidden":
                msg = f"unknown key {loc[-1]!r}"
            elif err["type"] == "missing":
                msg = "field required"
            else:
                msg = err["msg"].removeprefix("Value error, ")
            problems.append(MappingProblem(source, ".".join(loc), msg[:1].lower() + msg[1:], line))
        raise MappingError(sorted(problems, key=lambda p: p.line or 0)) from None


def load_mapping(platform: str, path: str | Path | None = None) -> PlatformMapping:
    """Load the mapping of `platform`: `path` when given, else the one its connector ships.

    A file with `extends: default` starts from the shipped file and replaces its entries by
    name. Raises MappingError (every problem, with file and YAML path) or FileNotFoundError
    when no mapping exists.
    """
    if path is None:
        default = shipped_mapping(platform)
        if default is None:
            raise FileNotFoundError(f"the connector {platform!r} ships no mapping")
        return PlatformMapping(_parse_file(default), source=str(default))
    file_path = Path(path)
    spec = _parse_file(file_path)
    if spec.platform != platform:
        raise MappingError(
            [MappingProblem(str(file_path), "platform", f"is {spec.platform!r}, not {platform!r}")]
        )
    if spec.extends == "default":
        base_path = shipped_mapping(platform)
        if base_path is None:
            raise MappingError(
                [MappingProblem(str(file_path), "extends", f"no shipped mapping for {platform!r}")]
            )
        base = _parse_file(base_path)
        merged = base.model_dump(exclude_unset=True) | spec.model_dump(
            exclude_unset=True, exclude={"fields", "engagement", "extends"}
        )
        merged["fields"] = {**base.fields, **spec.fields}
        merged["engagement"] = {**base.engagement, **spec.engagement}
        try:
            spec = MappingFile.model_validate(merged)
        except ValidationError as exc:
            raise MappingError(
                [MappingProblem(str(file_path), "", e["msg"]) for e in exc.errors()]
            ) from None
    return PlatformMapping(spec, source=str(file_path))
