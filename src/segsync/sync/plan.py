"""The plan: a value listing the minimal writes of a run, per platform.

A plan is JSON (`to_json` / `from_json`), printable (`render`, terraform-like: a summary per
platform, then the first rows), and applied exactly by `Engine.apply`. It records the state
generation it was made from and, per record it writes, the content hash of the snapshot it
was planned on (`bases`): a plan that is no longer the staged one still applies while none of
those records moved, and is refused (`PlanStale`, naming them) once one did (`moved_records`).

Contact changes are held as `ChangeRow` dicts (the fields of `ContactChange` plus `cid`),
not as models, so a plan for a large audience stays small in memory.
"""

from __future__ import annotations

import enum
import itertools
import json
import pickle
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, Required, overload

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, ValidationError
from pydantic_core import core_schema
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from segsync.connector import ContactChange
from segsync.model import ConsentStatus

__all__ = [
    "PLAN_FORMAT",
    "ChangeRow",
    "ConsentChange",
    "ConsentEvents",
    "Member",
    "MembershipChange",
    "OwedRow",
    "Plan",
    "PlanFileError",
    "PlanStale",
    "PlatformPlan",
    "Publication",
    "PublicationKind",
    "RecordError",
    "base_hash",
    "moved_records",
    "plan_bases",
    "to_change",
    "writes_something",
]

PLAN_FORMAT = 2
"""2: the plan carries `bases` (the snapshot each written record was planned on)."""


class PlanStale(Exception):
    """What the plan relies on moved since it was made; make a new plan."""


class PlanFileError(ValueError):
    """A plan file that is not a readable plan of this version: the message says where
    (`line:column` in the JSON text, or the path of the offending value)."""


class RecordError(BaseModel):
    """One record a platform (or segsync) refused, with the platform's own message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: str
    email: str | None = None
    platform_id: str | None = None
    code: str | None = None
    message: str

    def row(self) -> tuple[str, str | None, str | None, str | None, str]:
        """As stored: (platform, email, platform_id, code, message)."""
        return (self.platform, self.email, self.platform_id, self.code, self.message)


class ChangeRow(TypedDict, total=False):
    """The minimal write for one contact on one platform: `cid` and the fields of
    `ContactChange` that are set (an update holds `platform_id`, a creation `create`)."""

    cid: Required[str]
    email: Required[str]
    platform_id: str
    create: bool
    fields: dict[str, Any]
    tags_add: list[str]
    tags_remove: list[str]
    consent: ConsentStatus
    consent_basis: str
    consent_source: str  # the platform the consent came from (for the ledger, not sent)
    consent_evidence: str  # what it rests on there (for the ledger, not sent)
    new_email: str
    archive: bool  # archive the record (the `on_delete: archive_elsewhere` policy)
    foreign_opt_in: bool  # the record's opt-in is its former person's (`ContactChange`)


def writes_something(row: ChangeRow) -> bool:
    """Whether a row changes anything (more than naming its contact and record)."""
    return bool(
        row.get("create") or row.get("archive") or row.get("fields") or row.get("tags_add")
        or row.get("tags_remove")
        or row.get("consent") is not None or row.get("new_email")
    )


def to_change(row: ChangeRow) -> ContactChange:
    """The `ContactChange` of a plan row."""
    return ContactChange.model_validate({k: v for k, v in row.items() if k not in _NOT_SENT})


_NOT_SENT = frozenset({"cid", "consent_source", "consent_evidence"})
"""The keys of a `ChangeRow` that are the engine's own (the ledger's), not the platform's."""


class OwedRow(BaseModel):
    """A record write still owed on a platform (`segsync.state.base.OwedWrite`), as a plan
    shows it: the contact, its last error, its first and last failure, how many runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: str
    email: str
    error: str
    code: str | None = None
    first_failed: str
    last_failed: str
    failures: int = 1


class PublicationKind(enum.StrEnum):
    """What a publication does: create a static segment or a residual tag, publish a native
    segment, or delete an owned object no longer wanted (in this order when applied)."""

    STATIC = "static"
    TAG = "tag"
    NATIVE = "native"
    DELETE = "delete"


class Publication(BaseModel):
    """One segment object to create, publish or delete on a platform.

    `ref` is the platform's reference of the object segsync owns (None: to create);
    `definition` and `definition_hash` are a native segment's; `owned_kind` is the owned
    kind of the object a deletion removes; `platform_name` is the name an object to create
    gets on the platform (`Connector.creation_name`; a distinct one where people use the
    name segsync would choose).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    segment: str
    kind: PublicationKind
    name: str
    ref: str | None = None
    definition: dict[str, Any] | None = None
    definition_hash: str | None = None
    owned_kind: str | None = None
    platform_name: str | None = None


class Member(NamedTuple):
    """A contact in a membership change: its id and the email the platform knows."""

    cid: str
    email: str


class MembershipChange(BaseModel):
    """Static segment `name` (of `segment`) on a platform: contacts to add and to remove."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    segment: str
    name: str
    add: list[Member] = Field(default_factory=list)
    remove: list[Member] = Field(default_factory=list)


class ConsentChange(NamedTuple):
    """A consent change seen or decided by a plan, as the ledger records it (a plan file
    holds it as an object with these keys)."""

    cid: str
    email: str
    platform: str  # "canonical" for the reconciled view
    previous: str | None
    new: str
    source: str
    at: str
    legal_basis: str | None = None
    evidence: str | None = None


class _ConsentChangeIn(BaseModel):
    """A `ConsentChange` as a plan file holds it (validated strictly)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cid: str
    email: str
    platform: str
    previous: str | None
    new: str
    source: str
    at: str
    legal_basis: str | None = None
    evidence: str | None = None


_CHANGE_FIELDS = ConsentChange._fields
_make_change = ConsentChange._make


class ConsentEvents(Sequence[ConsentChange]):
    """The consent changes of a plan, in order, held compactly: a first sync sees every
    person's consent on every platform (millions of changes for a million people), so
    they are kept as plain tuples, packed (pickled and compressed, by this process only)
    `CHUNK` at a time. Iterating gives `ConsentChange` values; a plan file holds a list
    of objects (`Plan.to_json`)."""

    CHUNK = 4096

    __slots__ = ("_count", "_packed", "_rows")

    def __init__(self, changes: Iterable[ConsentChange | tuple[Any, ...]] = ()) -> None:
        self._packed: list[bytes] = []
        self._rows: list[tuple[Any, ...]] = []
        self._count = 0
        for change in changes:
            self.add(tuple(change))

    def add(self, row: tuple[Any, ...]) -> None:
        """Append one change, given as a tuple in `ConsentChange` order."""
        self._rows.append(row)
        self._count += 1
        if len(self._rows) >= self.CHUNK:
            self._pack()

    def extend(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Append changes, each a tuple as `add` takes it."""
        before = len(self._rows)
        self._rows.extend(rows)
        self._count += len(self._rows) - before
        while len(self._rows) >= self.CHUNK:
            rest = self._rows[self.CHUNK:]
            self._rows = self._rows[:self.CHUNK]
            self._pack()
            self._rows = rest

    def _pack(self) -> None:
        if self._rows:
            self._packed.append(zlib.compress(pickle.dumps(self._rows, protocol=5), 1))
            self._rows = []

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[ConsentChange]:
        return map(_make_change, self.rows())

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """The changes as the plain tuples `add` took."""
        for blob in list(self._packed):
            rows: list[tuple[Any, ...]] = pickle.loads(zlib.decompress(blob))  # noqa: S301 - packed by `_pack` in this process
            yield from rows
        yield from list(self._rows)

    @overload
    def __getitem__(self, index: int) -> ConsentChange: ...

    @overload
    def __getitem__(self, index: slice) -> list[ConsentChange]: ...

    def __getitem__(self, index: int | slice) -> ConsentChange | list[ConsentChange]:
        if isinstance(index, slice):
            return list(self)[index]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("consent change index out of range")
        return next(itertools.islice(self, index, None))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ConsentEvents | list | tuple):
            return len(self) == len(other) and all(
                a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"ConsentEvents({self._count} change(s))"

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConsentEvents, (list(self),))

    @staticmethod
    def _validated(value: Any, handler: core_schema.ValidatorFunctionWrapHandler) -> Any:
        """A `ConsentEvents` as it is; a list of changes (`ConsentChange` tuples or
        mappings with its keys) validated strictly."""
        if isinstance(value, ConsentEvents):
            return value
        if isinstance(value, list | tuple):
            value = [dict(zip(_CHANGE_FIELDS, item, strict=False))
                     if isinstance(item, tuple) else item for item in value]
        return handler(value)

    @classmethod
    def _from_models(cls, items: list[_ConsentChangeIn]) -> ConsentEvents:
        return cls(tuple(getattr(item, name) for name in _CHANGE_FIELDS) for item in items)

    def _dumped(self) -> list[dict[str, Any]]:
        return [dict(zip(_CHANGE_FIELDS, change, strict=True)) for change in self]

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        from_json = core_schema.no_info_after_validator_function(
            cls._from_models, handler.generate_schema(list[_ConsentChangeIn]))
        return core_schema.json_or_python_schema(
            json_schema=from_json,
            python_schema=core_schema.no_info_wrap_validator_function(cls._validated, from_json),
            serialization=core_schema.plain_serializer_function_ser_schema(
                cls._dumped,
                return_schema=handler.generate_schema(list[dict[str, str | None]]),
            ),
        )


class PlatformPlan(BaseModel):
    """What a plan does on one platform.

    `changes`: contact changes; `publications`: segment objects to create, publish or
    delete; `memberships`: static segment membership changes; `counts`: read, unchanged
    and the like, for the report; `objects`: what applying creates on the platform besides
    the publications (merge fields, properties, attributes, options, tags, groups, tag
    lists: `Connector.planned_objects`), one line each; `rules`: static name -> the
    fingerprint of the changed rule its memberships were evaluated on for every contact,
    recorded once applied (`StateStore.set_rule_fingerprints`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    changes: list[ChangeRow] = Field(default_factory=list)
    publications: list[Publication] = Field(default_factory=list)
    memberships: list[MembershipChange] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    objects: list[str] = Field(default_factory=list)
    rules: dict[str, str] = Field(default_factory=dict)

    @property
    def creates(self) -> int:
        return sum(1 for c in self.changes if c.get("create"))

    @property
    def updates(self) -> int:
        return len(self.changes) - self.creates

    @property
    def is_empty(self) -> bool:
        return not (self.changes or self.publications or self.memberships)

    def tally(self) -> dict[str, int]:
        """How many creates, updates, tag, consent and membership changes."""
        return {
            "create": self.creates,
            "update": self.updates,
            "tags_added": sum(len(c.get("tags_add", ())) for c in self.changes),
            "tags_removed": sum(len(c.get("tags_remove", ())) for c in self.changes),
            "consent": sum(1 for c in self.changes if c.get("consent") is not None),
            "members_added": sum(len(m.add) for m in self.memberships),
            "members_removed": sum(len(m.remove) for m in self.memberships),
            "publications": len(self.publications),
        }


class Plan(BaseModel):
    """The writes of a run, per platform, and what the run found on the way."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = PLAN_FORMAT
    plan_id: str
    config: str
    generation: int
    created_at: str
    platforms: dict[str, PlatformPlan]
    consent_events: ConsentEvents = Field(default_factory=ConsentEvents)
    errors: list[RecordError] = Field(default_factory=list)
    diagnostics: list[dict[str, str]] = Field(default_factory=list)
    conflicts: int = 0
    #: record writes still owed (failed before, retried by this plan where it writes the
    #: contact, until written or acknowledged: `segsync owed ack`)
    owed: list[OwedRow] = Field(default_factory=list)
    #: per platform, per contact written (changes and memberships), `base_hash` of the
    #: snapshot the plan was made on ("" where the platform held no record)
    bases: dict[str, dict[str, str]] = Field(default_factory=dict)
    #: what the run covered (`segsync.sync.pull.RunScope.as_dict`; empty: everything): a
    #: plan with a `limit` commits no cursor when applied
    scope: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        """True when applying would write nothing."""
        return all(p.is_empty for p in self.platforms.values())

    @property
    def write_count(self) -> int:
        """Contact changes, publications and membership changes, in all."""
        return sum(
            len(p.changes) + len(p.publications) + sum(
                len(m.add) + len(m.remove) for m in p.memberships
            )
            for p in self.platforms.values()
        )

    def to_json(self) -> str:
        """The plan as JSON text."""
        return self.model_dump_json(indent=None)

    @classmethod
    def from_json(cls, text: str | bytes) -> Plan:
        """A plan from its JSON text; `PlanFileError` (a ValueError) saying where the text
        is not a plan of this format (never the validator's own links)."""
        try:
            data = json.loads(text)
        except UnicodeDecodeError as exc:
            raise PlanFileError(f"byte {exc.start}: not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            ends = exc.pos >= len(exc.doc.rstrip()) or exc.msg.startswith("Unterminated")
            what = "truncated" if ends else "not JSON"
            raise PlanFileError(
                f"line {exc.lineno} column {exc.colno}: {what} ({exc.msg})"
            ) from None
        if not isinstance(data, dict) or "plan_id" not in data or "format" not in data:
            raise PlanFileError("top level: not a segsync plan (no plan_id or format)")
        if data.get("format") != PLAN_FORMAT:
            raise PlanFileError(
                f"format: {data.get('format')!r} is another version of segsync's plan "
                f"(this segsync reads format {PLAN_FORMAT}); make a new plan"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)
            where = ".".join(str(part) for part in first[0]["loc"]) or "top level"
            more = f" (and {len(first) - 1} more)" if len(first) > 1 else ""
            raise PlanFileError(f"{where}: {first[0]['msg']}{more}") from None

    def summary(self) -> dict[str, dict[str, int]]:
        """Per platform, the tally of writes."""
        return {name: p.tally() for name, p in self.platforms.items()}

    def render(self, rows: int = 10) -> str:
        """A terraform-like text: the totals per platform, then the first rows of each."""
        return "\n".join(self._lines(rows))

    def _owed_lines(self, rows: int) -> Iterator[str]:
        """The section "owed writes": each record still owed and its last error."""
        if not self.owed:
            return
        yield (f"{len(self.owed)} owed write(s) (failed before, retried until written or "
               "acknowledged: `segsync owed ack`):")
        for owed in self.owed[:rows]:
            since = owed.first_failed if owed.failures > 1 else owed.last_failed
            runs = f", {owed.failures} runs" if owed.failures > 1 else ""
            yield f"  ! [{owed.platform}] {owed.email}: {owed.error} (since {since}{runs})"
        if len(self.owed) > rows:
            yield f"  ... and {len(self.owed) - rows} more (`segsync owed`)"

    def _lines(self, rows: int) -> Iterator[str]:
        yield f"plan {self.plan_id} for {self.config!r} (state generation {self.generation})"
        if self.scope:
            yield "scope: " + ", ".join(
                f"{key} {','.join(value) if isinstance(value, list) else value}"
                for key, value in sorted(self.scope.items()))
        if self.is_empty and not self.owed and not self.errors:
            yield "No changes. The platforms match the canonical view."
        elif self.is_empty and not self.owed:  # e.g. a duplicate or an erased person standing
            yield "No writes planned; the platforms do not match for the record error(s) below."
        for name, platform in self.platforms.items():
            t = platform.tally()
            yield (
                f"{name}: {t['create']} to create, {t['update']} to update, "
                f"+{t['tags_added']}/-{t['tags_removed']} tags, {t['consent']} consent, "
                f"+{t['members_added']}/-{t['members_removed']} members, "
                f"{t['publications']} segment publications"
            )
            for made in platform.objects:
                yield f"  + create {made}"
            for change in platform.changes[:rows]:
                yield "  " + _describe(change)
            if len(platform.changes) > rows:
                yield f"  ... and {len(platform.changes) - rows} more"
            for pub in platform.publications:
                verb = "update" if pub.ref else "create"
                named = (f" as {pub.platform_name!r}"
                         if pub.platform_name and pub.platform_name != pub.name else "")
                yield f"  ~ {verb} {pub.kind} segment {pub.name!r}{named}"
            for m in platform.memberships:
                yield f"  ~ segment {m.name!r}: +{len(m.add)} -{len(m.remove)} members"
        for diag in self.diagnostics:
            where = f"[{diag.get('platform')}]" + (
                f" {diag['segment']}" if diag.get("segment") else "")
            yield f"diagnostic: {where}: {diag.get('message')}"
        if self.errors:
            yield f"{len(self.errors)} record error(s):"
            for error in self.errors[:rows]:
                who = error.email or error.platform_id or "(platform)"
                yield f"  ! [{error.platform}] {who}: {error.message}"
        yield from self._owed_lines(rows)


def _describe(change: ChangeRow) -> str:
    if change.get("archive"):
        return f"- {change['email']}: archive (deleted on another platform: on_delete)"
    sign = "+" if change.get("create") else "~"
    parts: list[str] = []
    for name, value in sorted((change.get("fields") or {}).items()):
        parts.append(f"{name}={value!r}")
    if change.get("tags_add"):
        parts.append("tags +" + ",".join(sorted(change["tags_add"])))
    if change.get("tags_remove"):
        parts.append("tags -" + ",".join(sorted(change["tags_remove"])))
    if change.get("consent"):
        parts.append(f"consent={change['consent']}")
    if change.get("new_email"):
        parts.append(f"email->{change['new_email']}")
    return f"{sign} {change['email']}: " + (" ".join(parts) or "(create)")


# -- what a plan relies on ----------------------------------------------------------------


class _Snapshots(Protocol):
    def snapshots(self, platform: str, cids: Sequence[str]) -> Mapping[str, Any]: ...

    def owned(self, platform: str | None = None) -> Sequence[Any]: ...


def base_hash(row: Any | None) -> str:
    """The content hash of a snapshot row (`BaseRow`; times left out), "" for none and
    `deleted:<hash>` for a record known deleted. The hash the store keeps with the row is
    that hash (`segsync.sync.snapshot.encode_record`); it is computed only where none is kept."""
    if row is None:
        return ""
    digest = getattr(row, "hash", "")
    if not digest:
        from segsync.sync.snapshot import PlatformRecord, content_hash  # snapshot imports plan

        digest = content_hash(PlatformRecord.loads(row.payload))
    return f"deleted:{digest}" if row.deleted else digest


def _written_cids(pplan: PlatformPlan) -> list[str]:
    cids = dict.fromkeys(row["cid"] for row in pplan.changes)
    for m in pplan.memberships:
        cids.update(dict.fromkeys(member.cid for member in (*m.add, *m.remove)))
    return list(cids)


def plan_bases(
    state: _Snapshots, platforms: Mapping[str, PlatformPlan], chunk: int = 1000
) -> dict[str, dict[str, str]]:
    """Per platform, per contact a plan writes, `base_hash` of its snapshot now."""
    out: dict[str, dict[str, str]] = {}
    for name, pplan in platforms.items():
        cids = _written_cids(pplan)
        bases: dict[str, str] = {}
        for start in range(0, len(cids), chunk):
            part = cids[start : start + chunk]
            snaps = state.snapshots(name, part)
            bases.update({cid: base_hash(snaps.get(cid)) for cid in part})
        if bases:
            out[name] = bases
    return out


class Moved(NamedTuple):
    """A record (or owned object) a plan writes that changed since the plan was made."""

    platform: str
    what: str  # an email, or "segment <kind> <name>"
    reason: str


def moved_records(plan: Plan, state: _Snapshots, chunk: int = 1000) -> list[Moved]:
    """What the plan writes that moved since it was made: a contact whose snapshot on the
    platform is no longer the one planned on (read again changed, or written since), and a
    publication whose owned object was created, republished or deleted since."""
    moved: list[Moved] = []
    creating = ""  # segsync.sync.segments.CREATING (segments imports plan)
    for name, pplan in plan.platforms.items():
        planned = plan.bases.get(name, {})
        emails = {row["cid"]: row["email"] for row in pplan.changes}
        for m in pplan.memberships:
            for member in (*m.add, *m.remove):
                emails.setdefault(member.cid, member.email)
        cids = list(emails)
        for start in range(0, len(cids), chunk):
            part = cids[start : start + chunk]
            snaps = state.snapshots(name, part)
            for cid in part:
                now = base_hash(snaps.get(cid))
                if now != planned.get(cid, ""):
                    reason = "written since" if planned.get(cid) is None else (
                        "created since" if not planned.get(cid) else "changed since")
                    moved.append(Moved(name, emails[cid], f"record {reason} the plan"))
        owned = {(o.kind, o.name): o for o in state.owned(name)}
        for pub in pplan.publications:
            kind = (pub.owned_kind or "static") if pub.kind is PublicationKind.DELETE else pub.kind
            current = owned.get((str(kind), pub.name))
            ref = None if current is None or current.ref == creating else current.ref
            if pub.kind is PublicationKind.DELETE:
                stale = current is None or (pub.ref != creating and current.ref != pub.ref)
            elif pub.kind is PublicationKind.NATIVE:
                stale = ref != pub.ref or (
                    current is not None and current.definition_hash == pub.definition_hash)
            else:
                stale = ref is not None
            if stale:
                moved.append(Moved(name, f"segment {kind} {pub.name!r}",
                                   "owned object changed since the plan"))
    return moved
