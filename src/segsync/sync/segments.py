"""Segments in a run: compile them per platform, evaluate materialised memberships, and list
the publications (objects to create, publish or delete) of each platform.

A segment compiles, per platform, to a native definition, a split (native definition plus a
residual evaluated locally and carried as a tag), or a materialised static segment whose
members segsync evaluates. `Memberships` collects, contact by contact, the membership
changes of the materialised statics; residual tags become tag deltas of contact changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from segsync import rules
from segsync.connector import Connector
from segsync.engagement import engagement_view
from segsync.model import Consent, ConsentStatus, Contact, FieldSpec, PublishMode, Schema
from segsync.rules import ast
from segsync.rules.compiler import (
    CompiledSegment,
    Diagnostic,
    NotImplementedForPlatform,
    PlatformCannotExpress,
    RuleCompiler,
    Step,
)
from segsync.rules.evaluate import compile_rule
from segsync.rules.typecheck import BUILTIN_FIELDS
from segsync.state.base import OwnedObject
from segsync.state.roles import Snapshots
from segsync.sync.plan import (
    ChangeRow,
    Member,
    MembershipChange,
    Publication,
    PublicationKind,
    RecordError,
)
from segsync.sync.snapshot import CanonicalView, PlatformRecord, dumps

__all__ = [
    "CREATING",
    "SEGMENT_KINDS",
    "Memberships",
    "PlatformSegments",
    "SegmentTarget",
    "StaticTarget",
    "ViewValues",
    "compile_segments",
    "contact_of",
    "depends_on_clock",
    "disowned_objects",
    "dropped_tags",
    "evaluate_rest",
    "name_publications",
    "planned_objects",
    "publications",
    "recall_made",
    "record_made",
    "rule_fingerprint",
]

CREATING = ""
"""The ref of an owned object whose creation started and was not yet confirmed (an intent)."""

_RESIDUAL_KIND = {"tag": "static"}
"""Capabilities.static_segments -> the owned kind of a residual tag (default: "tag")."""

log = logging.getLogger("segsync.sync")

SEGMENT_KINDS = frozenset({"tag", "static", "native"})
"""The owned kinds that hold segments; the others are containers a connector made for itself
(`Connector.made`), never published or deleted as segments."""

_CONSENT_OF = {status: Consent(status=status) for status in ConsentStatus}  # frozen: shared


@dataclasses.dataclass(frozen=True)
class SegmentTarget:
    """A segment to publish: its name, its checked rule, and the mode per platform."""

    name: str
    rule: ast.Rule
    publish: Mapping[str, PublishMode] = dataclasses.field(default_factory=dict)


class StaticTarget(NamedTuple):
    """A membership segsync evaluates: the segment, the static object's name, the rule."""

    segment: str
    name: str
    rule: ast.Rule


@dataclasses.dataclass(frozen=True)
class PlatformSegments:
    """What the segments compiled to on one platform.

    `statics`: the memberships segsync evaluates (materialised segments and residuals of
    split ones); `residual_tags`: the residual tags of split segments, whose membership is
    written as tag deltas (a split definition filters on `tags has "<residual tag>"`);
    `residual_kind`: the owned kind of a residual tag — the static segment where static
    segments are tags, else a tag.
    """

    compiled: tuple[CompiledSegment, ...]
    residual_kind: str

    @classmethod
    def of(cls, compiled: Sequence[CompiledSegment], static_segments: str) -> PlatformSegments:
        """From a platform's compiled segments and its `Capabilities.static_segments`."""
        return cls(tuple(compiled), _RESIDUAL_KIND.get(static_segments, "tag"))

    @property
    def statics(self) -> list[StaticTarget]:
        out = []
        for c in self.compiled:
            if c.mode == "materialised":
                out.append(StaticTarget(c.segment, c.segment, c.rule))
            elif c.mode == "split" and c.residual is not None and c.residual_tag:
                out.append(StaticTarget(c.segment, c.residual_tag, c.residual))
        return out

    @property
    def residual_tags(self) -> frozenset[str]:
        return frozenset(
            c.residual_tag for c in self.compiled if c.mode == "split" and c.residual_tag
        )

    def owned_kind(self, name: str) -> str:
        """The owned kind of the object holding static `name`."""
        return self.residual_kind if name in self.residual_tags else "static"


_LEVELS = ("info", "warning", "error")


def one_diagnostic(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    """A segment's diagnostics on one platform as one (none when none): the ladder's last
    step (the verdict), with what earlier steps said that it does not, at the highest
    level. `segsync segments explain` shows every step."""
    if len(diagnostics) <= 1:
        return list(diagnostics)
    last = diagnostics[-1]
    said = [d.message for d in diagnostics[:-1]
            if d.message.split(": ", 1)[-1] not in last.message]
    level = max((d.level for d in diagnostics),
                key=lambda lv: _LEVELS.index(lv) if lv in _LEVELS else 0)
    message = f"{last.message} ({'; '.join(said)})" if said else last.message
    return [dataclasses.replace(last, level=level, message=message)]


def compile_segments(
    segments: Sequence[SegmentTarget],
    platforms: Sequence[str],
    compiler_of: Callable[[str], RuleCompiler | None],
    diagnostics: list[Diagnostic],
    errors: list[RecordError],
) -> dict[str, list[CompiledSegment]]:
    """Each platform's compiled segments; what cannot be published is an error or, in
    `auto` mode, materialised with a diagnostic."""
    compiled: dict[str, list[CompiledSegment]] = {p: [] for p in platforms}
    for segment in segments:
        for platform in platforms:
            mode = segment.publish.get(platform, PublishMode.AUTO)
            if mode is PublishMode.OFF:
                continue
            compiler = compiler_of(platform)
            try:
                if compiler is None:
                    raise NotImplementedForPlatform(f"{platform} has no rule compiler")
                result = compiler.compile(segment.name, segment.rule, mode)
            except NotImplementedForPlatform as exc:
                if mode is PublishMode.NATIVE:
                    errors.append(RecordError(platform=platform, code="segment",
                                              message=f"{segment.name}: {exc}"))
                    continue
                diag = Diagnostic(segment.name, platform, Step.MATERIALISE, "warning",
                                  f"materialised: {exc}")
                result = CompiledSegment(segment.name, platform, "materialised", segment.rule,
                                         diagnostics=(diag,))
            except PlatformCannotExpress as exc:
                errors.append(RecordError(platform=platform, code="segment",
                                          message=f"{segment.name}: {exc}"))
                continue
            diagnostics.extend(one_diagnostic(result.diagnostics))
            if result.mode != "off":
                compiled[platform].append(result)
    return compiled


def fresh_statics(
    segments: Mapping[str, PlatformSegments], owned: Iterable[OwnedObject]
) -> set[tuple[str, str]]:
    """(platform, name) of the materialised memberships whose owned object (of the kind
    it has now) does not exist yet: created this run, they hold nobody."""
    existing = {(o.platform, o.kind, o.name) for o in owned if o.ref != CREATING}
    return {
        (p, static.name)
        for p, seg in segments.items()
        for static in seg.statics
        if (p, seg.owned_kind(static.name), static.name) not in existing
    }


def dropped_tags(
    segments: Mapping[str, PlatformSegments],
    owned: Iterable[OwnedObject],
    configured: Callable[[str], set[str]],
) -> dict[str, frozenset[str]]:
    """Per platform, the owned residual tags `publications` deletes this run (their segment
    now native, materialised, reworded or gone): deleting a tag leaves it on the people
    carrying it, so they lose it first (`Memberships`)."""
    out: dict[str, frozenset[str]] = {}
    for p, seg in segments.items():
        keep = seg.residual_tags
        compiled_ok = {c.segment for c in seg.compiled}
        names = configured(p)
        gone = frozenset(
            o.name for o in owned
            if o.platform == p and o.kind == "tag" and o.ref != CREATING
            and o.name.startswith("segsync:") and o.name not in keep
            and ((s := _segment_of(o.name, names)) not in names or s in compiled_ok)
        )
        if gone:
            out[p] = gone
    return out


def rule_fingerprint(rule: ast.Rule, owned_kind: str) -> str:
    """The fingerprint of the rule a static segment's members follow (with the kind of object
    holding them): recorded when its members are published, compared in the next runs."""
    text = f"{owned_kind}\n{ast.rule_to_json(rule)}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def contact_of(
    view: CanonicalView, live: Mapping[str, PlatformRecord], schema: Schema
) -> Contact:
    """The contact a rule is evaluated on: the canonical view, with the engagement of every
    platform: each platform's own values (`<platform>.<name>`) and their aggregates (bare
    names, by the functions of `segsync.engagement.AGGREGATES`)."""
    fields: dict[str, Any] = {}
    for name, value in view.fields.items():
        spec = schema.get(name)
        try:
            fields[name] = spec.coerce(value) if spec is not None else value
        except ValueError:
            continue
    facts = {p: record.facts for p, record in live.items()}
    # no platform's engagement at all (most contacts of a first sync): no aggregate either
    engagement = engagement_view(facts) if any(facts.values()) else {}
    return Contact.model_construct(
        email=view.email,
        fields=fields,
        tags=frozenset(view.tags),
        consent=_CONSENT_OF[view.consent],
        ids={},
        engagement=engagement,
        updated_at=None,
    )


class ViewValues:
    """What a rule reads of a reconciled contact, as `contact_of(view, live, schema)` gives
    it (`Contact.value`), without building the `Contact`: a field is coerced when read,
    the engagement aggregated only when a rule reads a name the fields do not hold."""

    __slots__ = ("_engagement", "live", "schema", "view")

    def __init__(
        self, view: CanonicalView, live: Mapping[str, PlatformRecord], schema: Schema
    ) -> None:
        self.view = view
        self.live = live
        self.schema = schema
        self._engagement: Mapping[str, Any] | None = None

    def value(self, name: str) -> Any:
        """`contact_of(...).value(name)`."""
        view = self.view
        if name == "email":
            return view.email
        if name == "tags":
            return frozenset(view.tags)
        if name == "consent":
            return view.consent
        fields = view.fields
        if name in fields:
            value = fields[name]
            spec = self.schema.get(name)
            if spec is None:
                return value
            try:
                return spec.coerce(value)
            except ValueError:
                pass  # not a value of its type: not a field of the contact
        if self._engagement is None:
            facts = {p: record.facts for p, record in self.live.items()}
            self._engagement = engagement_view(facts) if any(facts.values()) else {}
        return self._engagement.get(name)


class Memberships:
    """The membership changes of a plan's materialised statics, collected contact by contact.

    A static's member is added or removed where its rule's verdict differs from the
    membership segsync last wrote (an object created this run holds nobody). A residual
    tag's change is a tag delta of the contact's change row (added to `changes` when the
    contact had none).

    `dropped`: per platform, the residual tags deleted this run (`dropped_tags`): the
    contacts segsync placed in one lose it.

    `recorded`: (platform, name) -> the fingerprint of the rule each static's membership
    follows (`StateStore.rule_fingerprints`); a static whose rule differs (or unknown) is
    `stale`: every contact is evaluated on it (`evaluate_rest`), and once they all were
    (`complete`), `rules_of` gives the fingerprints its publication records.
    """

    def __init__(
        self,
        segments: Mapping[str, PlatformSegments],
        changes: Mapping[str, list[ChangeRow]],
        *,
        fresh: set[tuple[str, str]],
        schema: Schema,
        now: dt.datetime,
        holds: Mapping[str, Callable[[str, ConsentStatus], bool]] | None = None,
        recorded: Mapping[tuple[str, str], str] | None = None,
        dropped: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.segments = segments
        #: per platform, whether a person with a given consent may be in a static
        #: (`Connector.may_hold`); absent: anyone may
        self.holds = dict(holds or {})
        self.statics = {p: seg.statics for p, seg in segments.items()}
        self.residual_tags = {p: seg.residual_tags for p, seg in segments.items()}
        self.changes = changes
        self.fresh = fresh
        self.dropped = {p: tags for p, tags in (dropped or {}).items() if p in segments}
        #: platform -> static name -> fingerprint, of the statics whose rule changed
        self.changed: dict[str, dict[str, str]] = {}
        for p, seg in segments.items():
            for static in seg.statics:
                fp = rule_fingerprint(static.rule, seg.owned_kind(static.name))
                if recorded is None or recorded.get((p, static.name)) != fp:
                    self.changed.setdefault(p, {})[static.name] = fp
        self.stale = {(p, name) for p, names in self.changed.items() for name in names}
        #: every contact was evaluated on the fresh and stale statics (`evaluate_rest`)
        self.complete = False
        self.schema = schema
        self.now = now
        self._now = now if now.tzinfo else now.replace(tzinfo=dt.UTC)
        #: each static's rule, compiled once (`segsync.rules.evaluate.compile_rule`)
        self._rules = {(p, static.name): compile_rule(static.rule, schema)
                       for p, statics in self.statics.items() for static in statics}
        self.added: dict[tuple[str, str], list[Member]] = {}
        self.removed: dict[tuple[str, str], list[Member]] = {}
        self._tag_rows: dict[tuple[str, str], ChangeRow] = {}  # residual-only changes

    @property
    def any(self) -> bool:
        """Whether any platform has a materialised membership (or a residual tag dropped)."""
        return any(self.statics.values()) or any(self.dropped.values())

    @property
    def view_only(self) -> bool:
        """Whether every materialised membership reads only what a record's content hash
        covers (`reads_only_view`): then a contact read again unchanged keeps its verdicts."""
        return all(reads_only_view(s.rule, self.schema)
                   for statics in self.statics.values() for s in statics)

    def evaluate(
        self,
        cid: str,
        view: CanonicalView,
        live: Mapping[str, PlatformRecord],
        writes: Mapping[str, ChangeRow],
        current: Mapping[str, set[str]],
        only: Mapping[str, Sequence[StaticTarget]] | None = None,
    ) -> None:
        """Collect one contact's changes (`only`: these statics, by default all)."""
        contact: ViewValues | None = None
        for p, statics in self.statics.items():
            wanted = statics if only is None else only.get(p, ())
            have = current.get(p, set())
            dropped = self.dropped.get(p, frozenset()) & have
            if not (wanted or dropped) or (p not in live and p not in writes):
                continue
            for tag in sorted(dropped):
                self._tag_delta(p, cid, view, live, writes, tag, False)
            if not wanted:
                continue
            if contact is None:
                contact = ViewValues(view, live, self.schema)
            holds = self.holds.get(p)
            for static in wanted:
                rule = self._rules.get((p, static.name))
                inside = (rule(contact, self._now) if rule is not None
                          else rules.evaluate(static.rule, contact, now=self.now,
                                              schema=self.schema))
                if inside and holds is not None and static.name not in self.residual_tags[p]:
                    inside = holds(static.name, view.consent)
                listed = static.name in have
                member = listed and (p, static.name) not in self.fresh
                if (inside and member) or not (inside or listed):
                    continue
                if static.name in self.residual_tags[p]:
                    self._tag_delta(p, cid, view, live, writes, static.name, inside)
                elif inside:
                    self.added.setdefault((p, static.name), []).append(Member(cid, view.email))
                else:
                    self.removed.setdefault((p, static.name), []).append(Member(cid, view.email))

    def _tag_delta(
        self,
        p: str,
        cid: str,
        view: CanonicalView,
        live: Mapping[str, PlatformRecord],
        writes: Mapping[str, ChangeRow],
        tag: str,
        inside: bool,
    ) -> None:
        row = writes.get(p) or self._tag_rows.get((p, cid))
        if row is None:
            record = live[p]
            row = ChangeRow(cid=cid, email=record.email or view.email,
                            platform_id=record.platform_id)
            self._tag_rows[(p, cid)] = row
            self.changes[p].append(row)
        if inside:
            row["tags_add"] = sorted({*row.get("tags_add", ()), tag})
        else:
            row["tags_remove"] = sorted({*row.get("tags_remove", ()), tag})

    def rules_of(self, platform: str) -> dict[str, str]:
        """The fingerprints of a platform's statics whose rule changed, once every contact was
        evaluated on them (else none): recorded when the plan is applied."""
        return dict(self.changed.get(platform, {})) if self.complete else {}

    def of(self, platform: str) -> list[MembershipChange]:
        """A platform's static segment membership changes (residual tags excluded)."""
        out = []
        for static in self.statics[platform]:
            key = (platform, static.name)
            if static.name in self.residual_tags[platform] or not (
                self.added.get(key) or self.removed.get(key)
            ):
                continue
            out.append(MembershipChange.model_construct(
                segment=static.segment, name=static.name,
                add=self.added.get(key, []), remove=self.removed.get(key, []),
            ))
        return out


async def evaluate_rest(
    memberships: Memberships,
    state: Snapshots,
    seen: set[str],
    *,
    reevaluate: bool,
    chunk_size: int,
) -> None:
    """Evaluate materialised segments on contacts not reconciled this run, when needed.

    With `reevaluate`, every segment; otherwise the segments not yet published (their first
    members), those whose rule changed since their members were published (`stale`), and
    those whose rule depends on the clock (`within`), whose members change as time passes
    though no contact does. Contacts stream from the store `chunk_size` at a time.
    """
    only: Mapping[str, Sequence[StaticTarget]] | None = None
    if not reevaluate:
        every = memberships.fresh | memberships.stale
        only = {
            p: [s for s in statics if (p, s.name) in every or depends_on_clock(s.rule)]
            for p, statics in memberships.statics.items()
        }
        if not (any(only.values()) or any(memberships.dropped.values())):
            memberships.complete = True
            return
    platforms = tuple(memberships.statics)
    batch: list[tuple[str, CanonicalView]] = []

    def flush() -> None:
        cids = [cid for cid, _ in batch]
        current = state.members(cids)
        snaps = {p: state.snapshots(p, cids) for p in platforms}
        for cid, view in batch:
            live = {
                p: PlatformRecord.loads(snaps[p][cid].payload)
                for p in platforms
                if cid in snaps[p] and not snaps[p][cid].deleted
            }
            memberships.evaluate(cid, view, live, {}, current.get(cid, {}), only)
        batch.clear()

    for cid, view, _dirty in state.canonical_contacts():
        if cid in seen:
            continue
        batch.append((cid, CanonicalView.decode(view)))
        if len(batch) >= chunk_size:
            flush()
            await asyncio.sleep(0)
    if batch:
        flush()
    memberships.complete = True


def publications(
    platform: str,
    segments: PlatformSegments,
    owned_objects: Iterable[OwnedObject],
    configured: set[str],
) -> list[Publication]:
    """What to create, publish or delete on a platform for its compiled segments.

    `configured`: the segments configured for the platform (not `off`). Only segsync's own
    objects are deleted, and never one whose segment failed to compile in this run.
    """
    owned = {(o.kind, o.name): o for o in owned_objects if o.kind in SEGMENT_KINDS}
    pubs: list[Publication] = []
    wanted: set[tuple[str, str]] = set()
    for static in segments.statics:
        kind = segments.owned_kind(static.name)
        wanted.add((kind, static.name))
        if (kind, static.name) not in owned or owned[(kind, static.name)].ref == CREATING:
            pubs.append(Publication(
                segment=static.segment, kind=PublicationKind(kind), name=static.name
            ))
    for c in segments.compiled:
        if c.mode in ("native", "split") and c.definition is not None:
            wanted.add(("native", c.segment))
            definition = json.loads(json.dumps(c.definition, default=str))
            digest = hashlib.sha1(dumps(definition).encode(), usedforsecurity=False).hexdigest()
            current = owned.get(("native", c.segment))
            if current is None or current.definition_hash != digest:
                pubs.append(Publication(
                    segment=c.segment, kind=PublicationKind.NATIVE, name=c.segment,
                    definition=definition, definition_hash=digest,
                    ref=current.ref if current and current.ref != CREATING else None,
                ))
    compiled_ok = {c.segment for c in segments.compiled}
    for (kind, name), obj in owned.items():
        if (kind, name) in wanted:
            continue
        segment = _segment_of(name, configured)
        if segment not in configured or segment in compiled_ok:
            pubs.append(Publication(segment=segment, kind=PublicationKind.DELETE, name=name,
                                    ref=obj.ref, owned_kind=kind))
    return pubs


async def disowned_objects(
    connectors: Mapping[str, Connector],
    owned: Sequence[OwnedObject],
    diagnostics: list[dict[str, str]],
) -> set[tuple[str, str, str]]:
    """(platform, kind, name) of the owned objects a connector says are not segsync's by its
    current naming (`Connector.disowned`, e.g. a bare-named tag an older segsync recorded):
    the plan treats them as not owned (never written or deleted; the segment is published
    anew), with a diagnostic naming the object. Called before the read, so that a connector
    knows which objects are segsync's while it reads; a platform that fails here is left to
    fail its read."""
    out: set[tuple[str, str, str]] = set()
    for platform, connector in connectors.items():
        mine = [(o.kind, o.name, o.ref) for o in owned
                if o.platform == platform and o.ref != CREATING and o.kind in SEGMENT_KINDS]
        try:
            found = await connector.disowned(mine)
        except Exception as exc:  # a platform down fails its read, and is reported there
            log.info("%s: could not check owned objects: %s", platform, exc)
            continue
        for (kind, name), why in sorted(found.items()):
            out.add((platform, kind, name))
            diagnostics.append(_ownership(name, platform, why))
    return out


async def recall_made(
    connectors: Mapping[str, Connector], owned: Sequence[OwnedObject], fresh: Iterable[str],
    set_owned: Callable[..., None] | None = None, at: Callable[[], str] | None = None,
) -> None:
    """Tell each connector the objects it made for itself that the state records
    (`Connector.recall`; `fresh`: the platforms the state never read), before it reads or
    writes: it knows them by ref, never by name. With `set_owned` (apply), what a connector
    makes is recorded at once (`at()`: the time recorded)."""
    first = set(fresh)
    for platform, connector in connectors.items():
        mine = [(o.kind, o.name, o.ref) for o in owned
                if o.platform == platform and o.kind not in SEGMENT_KINDS]
        record = None
        if set_owned is not None and at is not None:
            def record(kind: str, name: str, ref: str, platform: str = platform) -> None:
                set_owned(OwnedObject(platform, kind, name, ref), at=at())
        await connector.recall(mine, first_run=platform in first, record=record)


def record_made(
    platform: str, connector: Connector, set_owned: Callable[..., None], at: str
) -> None:
    """Record what a connector made for itself since last asked (`Connector.made`)."""
    for kind, name, ref in connector.made():
        set_owned(OwnedObject(platform, kind, name, ref), at=at)


async def name_publications(
    platform: str,
    connector: Connector,
    pubs: Sequence[Publication],
    diagnostics: list[dict[str, str]],
) -> list[Publication]:
    """The publications with the platform name each object to create will get
    (`Connector.creation_name`); a name held by an object segsync did not create is never
    adopted: the object gets a distinct name, and a diagnostic names both. A segment
    switching kind (static <-> native) gets its name once apply has deleted its old object,
    which may hold it: no platform name is told here (apply names a holder left then)."""
    retired = {(p.name, p.owned_kind or "static") for p in pubs
               if p.kind is PublicationKind.DELETE}
    out = []
    for pub in pubs:
        if pub.ref is None and pub.kind in (PublicationKind.STATIC, PublicationKind.NATIVE):
            named, note = await connector.creation_name(str(pub.kind), pub.name)
            if note and any(n == pub.name and k != str(pub.kind) for n, k in retired):
                out.append(pub)
                continue
            if note:
                diagnostics.append(_ownership(
                    pub.segment, platform,
                    f"{note}; segsync leaves it alone and creates {named!r} instead",
                ))
            pub = pub.model_copy(update={"platform_name": named})
        out.append(pub)
    return out


async def planned_objects(
    platform: str,
    connector: Connector,
    changes: Sequence[ChangeRow],
    pubs: Sequence[Publication],
    fields: Mapping[str, FieldSpec],
    diagnostics: list[dict[str, str]],
) -> list[str]:
    """What applying a platform's part creates besides its publications, as apply will:
    `prepare(fields, tags)` before contact changes or a residual tag (the tags added and the
    residual tags), and what the native definitions need (`Connector.planned_objects`)."""
    prepares = bool(changes) or any(p.kind is PublicationKind.TAG for p in pubs)
    definitions = [p.definition for p in pubs
                   if p.kind is PublicationKind.NATIVE and p.definition]
    if not (prepares or definitions):
        return []
    tags = sorted({t for row in changes for t in row.get("tags_add", ())}
                  | {p.name for p in pubs if p.kind is PublicationKind.TAG})
    try:
        return await connector.planned_objects(fields if prepares else {}, tags, definitions)
    except Exception as exc:  # the plan says it could not tell
        diagnostics.append({"segment": "", "platform": platform, "step": "prepare",
                            "level": "warning",
                            "message": f"could not list what applying creates: {exc}"})
        return []


def _ownership(segment: str, platform: str, message: str) -> dict[str, str]:
    return {"segment": segment, "platform": platform, "step": "ownership",
            "level": "warning", "message": message}


def reads_only_view(rule: ast.Rule, schema: Schema) -> bool:
    """Whether a rule reads only built-ins and the schema's synced fields: not engagement nor
    read-only fields, which an engagement refresh changes without changing the content hash
    of a record (`segsync.sync.snapshot.content_hash` leaves the refreshed values out)."""
    if isinstance(rule, ast.And | ast.Or):
        return all(reads_only_view(item, schema) for item in rule.items)
    if isinstance(rule, ast.Not):
        return reads_only_view(rule.item, schema)
    name = getattr(rule, "field", None)
    if name is None:
        return isinstance(rule, ast.Const)
    spec = schema.fields.get(name)
    return name in BUILTIN_FIELDS or (spec is not None and not spec.read_only)


def depends_on_clock(rule: ast.Rule) -> bool:
    """Whether a rule's verdict can change with time alone (it holds a `within`)."""
    if isinstance(rule, ast.Within):
        return True
    if isinstance(rule, ast.And | ast.Or):
        return any(depends_on_clock(item) for item in rule.items)
    if isinstance(rule, ast.Not):
        return depends_on_clock(rule.item)
    return False


def _segment_of(name: str, segments: set[str]) -> str:
    """The segment an owned object belongs to (residual tags are `segsync:<segment>:<hash>`)."""
    if name in segments or not name.startswith("segsync:"):
        return name
    return name.removeprefix("segsync:").rpartition(":")[0] or name


