"""The sync engine: pull -> reconcile -> segments -> plan -> apply -> report.

`Engine.plan()` pulls every platform incrementally into the state store's staging (page by
page, so memory does not grow with the audience), reconciles the staged and dirty contacts
chunk by chunk, evaluates materialised segments, and returns a `Plan`. `Engine.apply(plan)`
writes it: per platform concurrently, in batches of the connector's `write_batch_size`,
at most `max_concurrency` in flight; every batch's verdicts are committed in one transaction,
the base advancing only for records the platform confirmed. `Engine.sync()` does both under
one run lock. See docs/sync.md for the semantics.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from segsync.clock import Clock, SystemClock
from segsync.connector import ChangeResult, Connector, RemoteContact
from segsync.http import ApiError
from segsync.model import (
    Consent,
    ConsentStatus,
    Contact,
    InvalidEmail,
    PublishMode,
    Schema,
    normalize_email,
)
from segsync.rules import ast
from segsync.rules.compiler import (
    CompiledSegment,
    Diagnostic,
    NotImplementedForPlatform,
    PlatformCannotExpress,
    RuleCompiler,
    Step,
    Strictness,
)
from segsync.state.base import BaseRow, LedgerEntry, OwnedObject, RunLocked, StateStore, decode
from segsync.sync.plan import Plan, PlanStale, PlatformPlan, RecordError, to_change
from segsync.sync.policy import OWNED_TAG_PREFIX, SyncPolicy
from segsync.sync.progress import (
    NO_PROGRESS,
    ApplyDone,
    ApplyStarted,
    MembersChanged,
    PageRead,
    ProgressObserver,
    Published,
    PullDone,
    PullStarted,
    WriteBatch,
)
from segsync.sync.reconcile import reconcile
from segsync.sync.snapshot import (
    apply_change,
    content_hash,
    dumps,
    encode_record,
    record_snapshot,
)

__all__ = ["Engine", "PlatformReport", "RunReport", "SegmentTarget", "depends_on_clock"]

log = logging.getLogger("segsync.sync")
_CONSENT_OF = {status: Consent(status=status) for status in ConsentStatus}  # frozen: shared

CREATING = ""
"""The ref of an owned object whose creation started and was not yet confirmed (an intent)."""

_RESIDUAL_KIND = {"tag": "static"}
"""Capabilities.static_segments -> the owned kind of a residual tag (default: "tag")."""


@dataclasses.dataclass(frozen=True)
class SegmentTarget:
    """A segment to publish: its name, its checked rule, and the mode per platform."""

    name: str
    rule: ast.Rule
    publish: Mapping[str, PublishMode] = dataclasses.field(default_factory=dict)


class PlatformReport(BaseModel):
    """What a run did on one platform."""

    model_config = ConfigDict(extra="forbid")

    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    tags_added: int = 0
    tags_removed: int = 0
    members_added: int = 0
    members_removed: int = 0
    consent_changes: int = 0
    publications: int = 0
    errors: int = 0
    api_calls: int = 0


class RunReport(BaseModel):
    """The report of a run: per platform counts, errors, diagnostics, time."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    plan_id: str
    config: str
    status: str = "running"  # ok | errors | failed
    started_at: str
    finished_at: str | None = None
    duration_s: float = 0.0
    platforms: dict[str, PlatformReport] = Field(default_factory=dict)
    errors: list[RecordError] = Field(default_factory=list)
    diagnostics: list[dict[str, str]] = Field(default_factory=list)
    conflicts: int = 0

    @property
    def writes(self) -> int:
        """Records created or updated, membership changes and publications, in all."""
        return sum(
            r.created + r.updated + r.members_added + r.members_removed + r.publications
            for r in self.platforms.values()
        )


def _new_id(clock: Clock) -> str:
    return clock.now().strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(8)


def _iso(clock: Clock) -> str:
    return clock.now().astimezone(dt.UTC).isoformat()


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class Engine:
    """Syncs a set of connectors through one state store (see the module docstring).

    Args:
        connectors: platform name -> connector.
        store: the state store.
        config: the name of this sync configuration (the run lock and the state's namespace).
        policy: the sync policy (default: latest change wins, every field both ways).
        schema: the canonical schema (coerces values written and evaluated).
        segments: segments to publish.
        compilers: platform -> rule compiler (default: each connector's `compiler_path`).
        clock: the injected clock.
        chunk_size: contacts reconciled per chunk.
        wait: wait for the run lock instead of failing with `RunLocked`.
        lock_poll: seconds between two attempts when waiting.
        lock_timeout: give up waiting after this many seconds (None: wait forever).
        reevaluate: evaluate materialised segments on every contact, not only changed ones
            (for rules on time, like `within 7 days`).
        progress: the observer of progress events (segsync.sync.progress; default: none).
    """

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        store: StateStore,
        *,
        config: str = "default",
        policy: SyncPolicy | None = None,
        schema: Schema | None = None,
        segments: Sequence[SegmentTarget] = (),
        compilers: Mapping[str, RuleCompiler] | None = None,
        strictness: Strictness = Strictness.WARN,
        clock: Clock | None = None,
        chunk_size: int = 1000,
        wait: bool = False,
        lock_poll: float = 1.0,
        lock_timeout: float | None = None,
        reevaluate: bool = False,
        progress: ProgressObserver | None = None,
    ) -> None:
        self.connectors = dict(connectors)
        self.progress: ProgressObserver = progress or NO_PROGRESS
        self.store = store
        self.config = config
        self.schema = schema or Schema()
        self.segments = tuple(segments)
        self.clock = clock or SystemClock()
        self.chunk_size = chunk_size
        self.wait = wait
        self.lock_poll = lock_poll
        self.lock_timeout = lock_timeout
        self.reevaluate = reevaluate
        self.strictness = strictness
        self._compilers = dict(compilers) if compilers is not None else None
        static_names = {s.name for s in self.segments}
        base_policy = policy or SyncPolicy(platforms=tuple(self.connectors))
        self.policy = base_policy.model_copy(
            update={"excluded_tags": base_policy.excluded_tags | static_names}
        )
        self._holding = False

    def __repr__(self) -> str:
        return f"Engine(config={self.config!r}, platforms={list(self.connectors)})"

    # -- the run lock ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Hold the run lock of this configuration (re-entrant within this engine)."""
        if self._holding:
            yield
            return
        started = self.clock.monotonic()
        while True:
            try:
                with self.store.lock(self.config):
                    self._holding = True
                    try:
                        yield
                    finally:
                        self._holding = False
                return
            except RunLocked:
                if self._holding:
                    raise
                waited = self.clock.monotonic() - started
                if not self.wait or (
                    self.lock_timeout is not None and waited >= self.lock_timeout
                ):
                    raise
                await self.clock.sleep(self.lock_poll)

    # -- pull -----------------------------------------------------------------------------

    async def _pull(self, errors: list[RecordError]) -> tuple[dict[str, int], set[str]]:
        """Stage every platform's changes since its cursor; returns reads and failed platforms."""
        self.store.begin_stage(self.config)
        reads: dict[str, int] = {}
        failed: set[str] = set()
        self.progress(PullStarted(tuple(self.connectors)))

        async def one(name: str) -> None:
            try:
                reads[name] = await self._pull_platform(name, errors)
                self.progress(PullDone(name))
            except Exception as exc:
                message = f"read failed: {exc}"
                last = getattr(self.connectors[name].stats, "last", None)
                if not isinstance(exc, ApiError) and last:  # an answer the connector misread
                    message = (
                        f"read failed: unexpected answer to {name} {last} "
                        f"({type(exc).__name__}: {exc})"
                    )
                log.warning("reading %s failed: %s", name, message)
                errors.append(RecordError(platform=name, code="read_failed", message=message))
                self.store.discard_pulled(self.config, name)
                failed.add(name)
                self.progress(PullDone(name, ok=False))

        await asyncio.gather(*(one(name) for name in self.connectors))
        renamed = self.store.new_records_of_renamed(self.config)
        if renamed:  # the platform renamed the contact away: the new record is someone new
            taken = self.store.known_cids(self.config, [key for _, _, key in renamed])
            self.store.set_pulled_cids(
                self.config, [(p, pid, self._new_cid(key, taken)) for p, pid, key in renamed]
            )
        self.store.relink_pulled(self.config)
        for name in self.connectors:
            if name not in failed:
                self._settle(name, errors)
        return reads, failed

    async def _pull_platform(self, name: str, errors: list[RecordError]) -> int:
        connector = self.connectors[name]
        count = 0
        async for page in connector.read(self.store.cursor(self.config, name)):
            count += len(page.contacts)
            with self.store.transaction():  # the page and the cursor reaching past it
                self._stage_page(name, page.contacts, errors)
                if page.cursor is not None:
                    self.store.set_pending_cursor(self.config, name, page.cursor)
            self.progress(PageRead(name, len(page.contacts)))
        return count

    def _settle(self, name: str, errors: list[RecordError]) -> None:
        """Report and set aside a platform's duplicate records; one staged record per contact."""
        duplicates = self.store.duplicate_records(self.config, name)
        for cid, pid, kept in duplicates:
            errors.append(
                RecordError(
                    platform=name,
                    email=cid,
                    platform_id=pid,
                    code="duplicate",
                    message=(
                        f"record {pid} has the same normalised email as record {kept}; "
                        "not synced (merge or fix them on the platform)"
                    ),
                )
            )
        if duplicates:
            self.store.drop_pulled(self.config, name, [pid for _, pid, _ in duplicates])
        self.store.settle_pulled(self.config, name)

    def _stage_page(
        self, name: str, contacts: Sequence[RemoteContact], errors: list[RecordError]
    ) -> None:
        keyed: list[tuple[RemoteContact, str | None]] = []
        for remote in contacts:
            try:
                key: str | None = normalize_email(remote.email)
            except InvalidEmail as exc:
                if not remote.deleted:
                    errors.append(
                        RecordError(
                            platform=name,
                            email=remote.email,
                            platform_id=remote.platform_id,
                            code="invalid_email",
                            message=str(exc),
                        )
                    )
                    continue
                key = None
            keyed.append((remote, key))
        by_id = self.store.cids_by_platform_id(
            self.config, name, [remote.platform_id for remote, _ in keyed]
        )
        unlinked = [key for remote, key in keyed if remote.platform_id not in by_id and key]
        by_email = self.store.cids_by_email(self.config, unlinked)
        fresh = [key for key in unlinked if key not in by_email]
        taken = self.store.known_cids(self.config, fresh)
        rows: list[tuple[str, str, str, str, str, bool]] = []
        for remote, key in keyed:
            cid = by_id.get(remote.platform_id)
            if cid is None:
                if remote.deleted or key is None:
                    continue  # a deletion of a record never seen: nothing to do
                cid = by_email.get(key) or self._new_cid(key, taken)
            payload, digest = encode_record(record_snapshot(remote, key or ""))
            rows.append((remote.platform_id, cid, key or "", payload, digest, remote.deleted))
        self.store.stage_pulled(self.config, name, rows)

    def _new_cid(self, key: str, taken: set[str]) -> str:
        """A contact id for a new email: the email, or email#n if a renamed contact had it."""
        if key not in taken:
            return key
        n = 2
        while True:
            candidate = f"{key}#{n}"
            if not self.store.known_cids(self.config, [candidate]):
                return candidate
            n += 1

    # -- segments -------------------------------------------------------------------------

    def _compiler(self, platform: str) -> RuleCompiler | None:
        if self._compilers is not None:
            return self._compilers.get(platform)
        path = getattr(self.connectors[platform], "compiler_path", None)
        if not path:
            return None
        module, _, attr = path.partition(":")
        import importlib

        cls = getattr(importlib.import_module(module), attr)
        compiler: RuleCompiler = cls(self.schema, strictness=self.strictness)
        return compiler

    def _compile(
        self, platforms: Sequence[str], diagnostics: list[Diagnostic], errors: list[RecordError]
    ) -> dict[str, list[CompiledSegment]]:
        compiled: dict[str, list[CompiledSegment]] = {p: [] for p in platforms}
        for segment in self.segments:
            for platform in platforms:
                mode = segment.publish.get(platform, PublishMode.AUTO)
                if mode is PublishMode.OFF:
                    continue
                compiler = self._compiler(platform)
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
                diagnostics.extend(result.diagnostics)
                if result.mode != "off":
                    compiled[platform].append(result)
        return compiled

    @staticmethod
    def _statics(compiled: Sequence[CompiledSegment]) -> list[tuple[str, str, ast.Rule]]:
        """(segment, static name, rule) of every materialised membership on a platform."""
        out = []
        for c in compiled:
            if c.mode == "materialised":
                out.append((c.segment, c.segment, c.rule))
            elif c.mode == "split" and c.residual is not None and c.residual_tag:
                out.append((c.segment, c.residual_tag, c.residual))
        return out

    @staticmethod
    def _residual_tags(compiled: Sequence[CompiledSegment]) -> frozenset[str]:
        """The residual tags of a platform's split segments.

        A split segment's native definition filters on `tags has "<residual tag>"`, so the
        residual's members carry that tag on the platform: their membership is written as
        tag deltas of the contact changes, never through a static segment (on a platform
        whose static segments are lists, a list is not what the definition filters on).
        """
        return frozenset(
            c.residual_tag for c in compiled if c.mode == "split" and c.residual_tag
        )

    def _residual_kind(self, platform: str) -> str:
        """The owned kind of a residual tag: the static segment where static segments are
        tags (it is the tag, and has the ref the platform deletes by), else a tag."""
        statics = self.connectors[platform].capabilities.static_segments
        return _RESIDUAL_KIND.get(statics, "tag")

    def _publications(
        self, platform: str, compiled: Sequence[CompiledSegment]
    ) -> list[dict[str, Any]]:
        owned = {(o.kind, o.name): o for o in self.store.owned(self.config, platform)}
        residuals = self._residual_tags(compiled)
        pubs: list[dict[str, Any]] = []
        wanted: set[tuple[str, str]] = set()
        for segment, name, _rule in self._statics(compiled):
            kind = self._residual_kind(platform) if name in residuals else "static"
            wanted.add((kind, name))
            if (kind, name) not in owned or owned[(kind, name)].ref == CREATING:
                pubs.append({"segment": segment, "kind": kind, "name": name, "ref": None})
        for c in compiled:
            if c.mode in ("native", "split") and c.definition is not None:
                wanted.add(("native", c.segment))
                definition = json.loads(json.dumps(c.definition, default=str))
                digest = hashlib.sha1(dumps(definition).encode(), usedforsecurity=False)
                current = owned.get(("native", c.segment))
                if current is None or current.definition_hash != digest.hexdigest():
                    pubs.append({
                        "segment": c.segment, "kind": "native", "name": c.segment,
                        "definition": definition, "definition_hash": digest.hexdigest(),
                        "ref": current.ref if current and current.ref != CREATING else None,
                    })
        configured = {
            s.name for s in self.segments if s.publish.get(platform) is not PublishMode.OFF
        }
        compiled_ok = {c.segment for c in compiled}
        for (kind, name), obj in owned.items():
            if (kind, name) in wanted:
                continue
            segment = _segment_of(name, configured)
            # only segsync's own objects, and never one whose segment failed to compile now
            if segment not in configured or segment in compiled_ok:
                pubs.append({"segment": segment, "kind": "delete", "name": name,
                             "ref": obj.ref, "owned_kind": kind})
        return pubs

    def _contact(self, view: Mapping[str, Any], live: Mapping[str, Mapping[str, Any]]) -> Contact:
        fields: dict[str, Any] = {}
        for name, value in view.get("f", {}).items():
            spec = self.schema.get(name)
            try:
                fields[name] = spec.coerce(value) if spec is not None else value
            except ValueError:
                continue
        engagement: dict[str, Any] = {}
        for snap in live.values():  # several platforms: the highest value (latest date)
            for name, value in snap.get("e", {}).items():
                if name not in engagement or _greater(value, engagement[name]):
                    engagement[name] = value
        for name, value in list(engagement.items()):
            spec = self.schema.get(name)
            with contextlib.suppress(ValueError):
                engagement[name] = spec.coerce(value) if spec is not None else value
        return Contact.model_construct(
            email=view["email"],
            fields=fields,
            tags=frozenset(view.get("t", ())),
            consent=_CONSENT_OF[ConsentStatus(view.get("c", "non_subscribed"))],
            ids={},
            engagement=engagement,
            updated_at=None,
        )

    # -- plan -----------------------------------------------------------------------------

    async def plan(self) -> Plan:
        """Pull and reconcile; return the plan (staged in the store until applied)."""
        async with self.locked():
            return await self._plan()

    async def _plan(self) -> Plan:
        from segsync.rules import evaluate

        errors: list[RecordError] = []
        reads, failed = await self._pull(errors)
        platforms = tuple(p for p in self.policy.platforms if p not in failed)
        policy = self.policy.model_copy(update={"platforms": platforms})
        diagnostics: list[Diagnostic] = []
        compiled = self._compile(platforms, diagnostics, errors)
        statics = {p: self._statics(compiled[p]) for p in platforms}
        residuals = {p: self._residual_tags(compiled[p]) for p in platforms}
        any_static = any(statics.values())
        fresh = self._fresh_statics(platforms, statics, residuals)
        now = self.clock.now()
        plan_id = _new_id(self.clock)
        changes: dict[str, list[dict[str, Any]]] = {p: [] for p in platforms}
        members_add: dict[tuple[str, str], list[list[str]]] = {}
        members_remove: dict[tuple[str, str], list[list[str]]] = {}
        unchanged = dict.fromkeys(platforms, 0)
        events: list[dict[str, Any]] = []
        conflicts = 0
        seen: set[str] = set()
        tag_rows: dict[tuple[str, str], dict[str, Any]] = {}  # residual-only changes

        def memberships(
            cid: str, view: Mapping[str, Any], live: Mapping[str, Mapping[str, Any]],
            writes: Mapping[str, dict[str, Any]], current: Mapping[str, set[str]],
            only: Mapping[str, Sequence[tuple[str, str, ast.Rule]]] | None = None,
        ) -> None:
            """Membership changes of one contact (`only`: these statics, default all)."""
            contact = None
            for p in platforms:
                wanted = statics[p] if only is None else only.get(p, ())
                if not wanted or (p not in live and p not in writes):
                    continue
                if contact is None:
                    contact = self._contact(view, live)
                have = current.get(p, set())
                for _segment, name, rule in wanted:
                    inside = evaluate(rule, contact, now=now, schema=self.schema)
                    listed = name in have
                    # an object created this run holds nobody yet, whatever rows were left
                    member = listed and (p, name) not in fresh
                    if (inside and member) or not (inside or listed):
                        continue
                    if name in residuals[p]:  # a tag delta of the contact's change
                        row = writes.get(p) or tag_rows.get((p, cid))
                        if row is None:
                            snap = live[p]
                            row = {"cid": cid, "email": snap.get("email") or view["email"],
                                   "platform_id": snap["id"]}
                            tag_rows[(p, cid)] = row
                            changes[p].append(row)
                        key = "tags_add" if inside else "tags_remove"
                        row[key] = sorted({*row.get(key, ()), name})
                    elif inside:
                        members_add.setdefault((p, name), []).append([cid, view["email"]])
                    else:
                        members_remove.setdefault((p, name), []).append([cid, view["email"]])

        for cids in self.store.worklist(self.config, self.chunk_size):
            with self.store.transaction():
                canonical_rows, base_rows, pulled_rows = self.store.load(self.config, cids)
                current_members = self.store.members(self.config, cids) if any_static else {}
            staged: list[tuple[str, str, str]] = []
            if any_static:
                seen.update(cids)
            for cid in cids:
                canon_row = canonical_rows.get(cid)
                bases = base_rows.get(cid, {})
                pulled = pulled_rows.get(cid, {})
                if (
                    canon_row is not None
                    and not canon_row[1]
                    and not any_static
                    and all(p in bases and bases[p].hash == row.hash for p, row in pulled.items())
                ):
                    for p in pulled:  # read again, unchanged (an echo or an overlap)
                        if p in unchanged and not bases[p].deleted:
                            unchanged[p] += 1
                    continue
                canonical = decode(canon_row[0]) if canon_row else None
                result = reconcile(
                    cid,
                    canonical,
                    {p: decode(r.payload) for p, r in bases.items()},
                    {p: decode(r.payload) for p, r in pulled.items() if p in unchanged},
                    policy,
                )
                staged.append((cid, result.view["email"], dumps(result.view)))
                for p, change in result.writes.items():
                    changes[p].append(change)
                for p in result.live:  # read this run, and already matching
                    if p in pulled and p not in result.writes:
                        unchanged[p] += 1
                conflicts += len(result.conflicts)
                events.extend(
                    {"cid": cid, "email": result.view["email"], "platform": e.platform,
                     "previous": e.previous, "new": e.new, "source": e.source,
                     "at": e.at or now.isoformat(), "legal_basis": e.legal_basis}
                    for e in result.events
                )
                if any_static:
                    memberships(cid, result.view, result.live, result.writes,
                                current_members.get(cid, {}))
            # with a platform sitting out, every contact is reconciled again next run
            self.store.stage_planned(self.config, staged, plan_id=plan_id, retry=bool(failed))

        if any_static:
            await self._evaluate_rest(seen, statics, platforms, memberships, fresh)

        platform_plans: dict[str, PlatformPlan] = {}
        for p in platforms:
            memberships_p = [
                {"segment": seg, "name": name,
                 "add": members_add.get((p, name), []), "remove": members_remove.get((p, name), [])}
                for seg, name, _rule in statics[p]
                if name not in residuals[p]
                and (members_add.get((p, name)) or members_remove.get((p, name)))
            ]
            platform_plans[p] = PlatformPlan.model_construct(
                changes=changes[p],
                publications=self._publications(p, compiled[p]),
                memberships=memberships_p,
                counts={"read": reads.get(p, 0), "unchanged": unchanged[p]},
            )
        generation = self.store.seal_plan(self.config, plan_id)
        return Plan.model_construct(
            format=1,
            plan_id=plan_id,
            config=self.config,
            generation=generation,
            created_at=now.isoformat(),
            platforms=platform_plans,
            consent_events=events,
            errors=errors,
            diagnostics=[d.as_dict() for d in diagnostics],
            conflicts=conflicts,
        )

    def _fresh_statics(
        self,
        platforms: Sequence[str],
        statics: Mapping[str, Sequence[tuple[str, str, ast.Rule]]],
        residuals: Mapping[str, frozenset[str]],
    ) -> set[tuple[str, str]]:
        """(platform, name) of the materialised memberships whose owned object (of the kind
        it has now) does not exist yet: created this run, they hold nobody."""
        existing = {
            (o.platform, o.kind, o.name) for o in self.store.owned(self.config)
            if o.ref != CREATING
        }
        return {
            (p, name)
            for p in platforms
            for _s, name, _r in statics[p]
            if (p, self._residual_kind(p) if name in residuals[p] else "static", name)
            not in existing
        }

    async def _evaluate_rest(
        self,
        seen: set[str],
        statics: Mapping[str, Sequence[tuple[str, str, ast.Rule]]],
        platforms: Sequence[str],
        memberships: Any,
        fresh: set[tuple[str, str]],
    ) -> None:
        """Evaluate materialised segments on contacts not reconciled this run, when needed.

        Every segment, for a segment not yet published (its first members) and with
        `reevaluate`; otherwise only the segments whose rule depends on the clock (`within`),
        whose members change as time passes though no contact does. Contacts stream from
        the store `chunk_size` at a time.
        """
        only: Mapping[str, Sequence[tuple[str, str, ast.Rule]]] | None = None
        if not (fresh or self.reevaluate):
            only = {p: [s for s in statics[p] if depends_on_clock(s[2])] for p in platforms}
            if not any(only.values()):
                return
        batch: list[tuple[str, dict[str, Any]]] = []

        def flush() -> None:
            cids = [cid for cid, _ in batch]
            current = self.store.members(self.config, cids)
            snaps = {p: self.store.snapshots(self.config, p, cids) for p in platforms}
            for cid, view in batch:
                live = {
                    p: decode(snaps[p][cid].payload)
                    for p in platforms
                    if cid in snaps[p] and not snaps[p][cid].deleted
                }
                memberships(cid, view, live, {}, current.get(cid, {}), only)
            batch.clear()

        for cid, view, _dirty in self.store.canonical_contacts(self.config):
            if cid in seen:
                continue
            batch.append((cid, view))
            if len(batch) >= self.chunk_size:
                flush()
                await asyncio.sleep(0)
        if batch:
            flush()

    # -- apply ----------------------------------------------------------------------------

    async def apply(self, plan: Plan) -> RunReport:
        """Apply a plan exactly; refused (`PlanStale`) when the state moved since it was made."""
        async with self.locked():
            return await self._apply(plan)

    async def _apply(self, plan: Plan) -> RunReport:
        if plan.config != self.config:
            raise PlanStale(f"the plan is for {plan.config!r}, not {self.config!r}")
        generation = self.store.generation(self.config)
        staged = self.store.plan_id(self.config)
        if generation != plan.generation or staged != plan.plan_id:
            raise PlanStale(
                f"the state moved since plan {plan.plan_id} was made (generation "
                f"{plan.generation}, now {generation}); make a new plan"
            )
        started = self.clock.monotonic()
        run_id = _new_id(self.clock)
        report = RunReport(
            run_id=run_id, plan_id=plan.plan_id, config=self.config, started_at=_iso(self.clock),
            errors=list(plan.errors), diagnostics=list(plan.diagnostics), conflicts=plan.conflicts,
        )
        self.store.start_run(self.config, run_id, at=report.started_at)
        calls_before = {name: c.stats.calls for name, c in self.connectors.items()}
        for name, pplan in plan.platforms.items():
            report.platforms[name] = PlatformReport(
                read=pplan.counts.get("read", 0), unchanged=pplan.counts.get("unchanged", 0)
            )
        try:
            # consent changes seen and decided are recorded before anything is written: a
            # run killed mid-apply may not see them again (recording twice is harmless)
            self.store.add_ledger(
                self.config,
                [LedgerEntry(e["cid"], e["email"], e["platform"], e["at"], e["previous"],
                             e["new"], e["source"], e.get("legal_basis"), run_id)
                 for e in plan.consent_events],
            )
            await asyncio.gather(
                *(self._apply_platform(name, pplan, report, run_id)
                  for name, pplan in plan.platforms.items() if name in self.connectors)
            )
            self.store.finish(self.config)
        except BaseException:
            report.status = "failed"
            self._end(report, started, calls_before)
            raise
        report.status = "errors" if report.errors else "ok"
        self._end(report, started, calls_before)
        return report

    def _end(self, report: RunReport, started: float, calls_before: Mapping[str, int]) -> None:
        for name, connector in self.connectors.items():
            if name in report.platforms:
                report.platforms[name].api_calls = connector.stats.calls - calls_before[name]
                report.platforms[name].errors = sum(
                    1 for e in report.errors if e.platform == name
                )
        report.finished_at = _iso(self.clock)
        report.duration_s = round(self.clock.monotonic() - started, 6)
        self.store.end_run(
            report.run_id,
            at=report.finished_at,
            status=report.status,
            report=report.model_dump(mode="json"),
            errors=[e.row() for e in report.errors],
            diagnostics=[
                (d.get("platform"), d.get("segment"), d.get("level", "info"), d.get("message", ""))
                for d in report.diagnostics
            ],
        )

    async def _apply_platform(
        self, name: str, pplan: PlatformPlan, report: RunReport, run_id: str
    ) -> None:
        connector = self.connectors[name]
        caps = connector.capabilities
        counts = report.platforms[name]
        gate = asyncio.Semaphore(caps.max_concurrency)
        unprepared: str | None = None
        self.progress(ApplyStarted(
            name, len(pplan.changes),
            sum(len(m["add"]) + len(m["remove"]) for m in pplan.memberships),
        ))
        if pplan.changes:  # fields, properties and tag options must exist before writes
            tags = sorted({t for row in pplan.changes for t in row.get("tags_add", ())})
            try:
                await connector.prepare(self.schema.fields, tags)
            except Exception as exc:  # every write of the platform fails, reported per record
                unprepared = f"preparing {name} failed: {exc}"
        refs = await self._publish(name, pplan.publications, report)

        async def write(batch: Sequence[dict[str, Any]]) -> None:
            async with gate:
                try:
                    if unprepared is not None:
                        raise RuntimeError(unprepared)
                    results = await connector.write([self._change(row) for row in batch])
                except Exception as exc:  # a failed call fails its records
                    results = [
                        ChangeResult(email=row["email"], ok=False, error=str(exc), code="call")
                        for row in batch
                    ]
                created, updated = counts.created, counts.updated
                self._commit(name, batch, results, counts, report, run_id)
                created, updated = counts.created - created, counts.updated - updated
                self.progress(WriteBatch(name, created, updated, len(batch) - created - updated))

        await asyncio.gather(*(write(b) for b in _chunks(pplan.changes, caps.write_batch_size)))
        for membership in pplan.memberships:
            ref = refs.get(membership["name"])
            if ref is None:
                report.errors.extend(
                    RecordError(platform=name, email=email, code="segment",
                                message=f"segment {membership['name']!r} could not be created")
                    for _cid, email in membership["add"]
                )
                self.progress(MembersChanged(name, 0, 0, len(membership["add"])))
                continue
            await self._members(name, ref, membership, counts, report, gate)
        self.progress(ApplyDone(name))

    def _change(self, row: Mapping[str, Any]) -> Any:
        change = dict(row)
        if change.get("fields"):
            fields = {}
            for key, value in change["fields"].items():
                spec = self.schema.get(key)
                try:
                    fields[key] = spec.coerce(value) if spec is not None else value
                except ValueError:
                    fields[key] = value
            change["fields"] = fields
        return to_change(change)

    def _commit(
        self,
        name: str,
        batch: Sequence[dict[str, Any]],
        results: Sequence[ChangeResult],
        counts: PlatformReport,
        report: RunReport,
        run_id: str,
    ) -> None:
        """Record a batch's verdicts: the base advances for confirmed records only."""
        with self.store.transaction():
            self._commit_batch(name, batch, results, counts, report, run_id)

    def _commit_batch(
        self,
        name: str,
        batch: Sequence[dict[str, Any]],
        results: Sequence[ChangeResult],
        counts: PlatformReport,
        report: RunReport,
        run_id: str,
    ) -> None:
        at = _iso(self.clock)
        snaps = self.store.snapshots(self.config, name, [row["cid"] for row in batch])
        confirmed: list[BaseRow] = []
        failed: list[str] = []
        ledger: list[LedgerEntry] = []
        residual_add: dict[str, list[str]] = {}
        residual_remove: dict[str, list[str]] = {}
        for index, row in enumerate(batch):
            result = results[index] if index < len(results) else None
            pid = (result.platform_id if result else None) or row.get("platform_id")
            if result is None or not result.ok or result.partial or pid is None:
                failed.append(row["cid"])
                message = "no result for this record" if result is None else (
                    result.error or "not confirmed")
                report.errors.append(
                    RecordError(platform=name, email=row["email"], platform_id=pid,
                                code=result.code if result else None, message=message)
                )
                continue
            before_row = snaps.get(row["cid"])
            before = decode(before_row.payload) if before_row and not row.get("create") else None
            key = normalize_email(row.get("new_email") or row["email"])
            target = apply_change(before, row, pid, key=key, at=at)
            confirmed.append(
                BaseRow(name, row["cid"], pid, dumps(target), hash=content_hash(target))
            )
            for key, moved in (("tags_add", residual_add), ("tags_remove", residual_remove)):
                for tag in row.get(key, ()):
                    if tag.startswith(OWNED_TAG_PREFIX):  # a residual tag: its membership
                        moved.setdefault(tag, []).append(row["cid"])
            if row.get("create"):
                counts.created += 1
            else:
                counts.updated += 1
            counts.tags_added += len(row.get("tags_add", ()))
            counts.tags_removed += len(row.get("tags_remove", ()))
            if row.get("consent") is not None:
                counts.consent_changes += 1
                ledger.append(LedgerEntry(
                    row["cid"], key, name, at, before.get("c") if before else None,
                    str(row["consent"]), "sync", row.get("consent_basis"), run_id,
                ))
        self.store.commit_writes(self.config, name, confirmed, failed, ledger)
        for tag in sorted(residual_add.keys() | residual_remove.keys()):
            added, removed = residual_add.get(tag, []), residual_remove.get(tag, [])
            self.store.commit_members(self.config, name, tag, added, removed)
            counts.members_added += len(added)
            counts.members_removed += len(removed)

    async def _publish(
        self, name: str, publications: Sequence[Mapping[str, Any]], report: RunReport
    ) -> dict[str, str]:
        """Create static segments, publish native ones, delete owned ones no longer wanted."""
        connector = self.connectors[name]
        owned = self.store.owned(self.config, name)
        refs = {o.name: o.ref for o in owned if o.kind == "static" and o.ref != CREATING}
        intents = {(o.kind, o.name) for o in owned if o.ref == CREATING}
        at = _iso(self.clock)
        kinds = ("static", "tag", "native", "delete")  # residual tags exist before natives
        ordered = sorted(publications, key=lambda p: kinds.index(p["kind"]))
        for pub in ordered:
            try:
                if pub["kind"] == "tag":  # a residual tag: the platform's tag option, by name
                    await connector.prepare(self.schema.fields, [pub["name"]])
                    self.store.set_owned(
                        self.config, OwnedObject(name, "tag", pub["name"], pub["name"]), at=at
                    )
                elif pub["kind"] in ("static", "native"):
                    ref = await self._known_or_adopted(name, pub, intents, at)
                    if pub["kind"] == "static":
                        ref = await connector.ensure_static(pub["name"], ref)
                        self.store.set_owned(
                            self.config, OwnedObject(name, "static", pub["name"], ref), at=at
                        )
                        refs[pub["name"]] = ref
                    else:
                        ref = await connector.publish_native(
                            pub["name"], pub["definition"], ref
                        )
                        self.store.set_owned(
                            self.config,
                            OwnedObject(name, "native", pub["name"], ref, pub["definition_hash"]),
                            at=at,
                        )
                else:
                    kind = pub.get("owned_kind", "static")
                    ref = pub["ref"]
                    if ref == CREATING:  # a creation a killed run may or may not have made
                        ref = await connector.find_owned(kind, pub["name"])
                    if ref is not None:
                        await connector.delete_owned(kind, ref)
                    self.store.forget_owned(self.config, name, kind, pub["name"])
                report.platforms[name].publications += 1
                self.progress(Published(name, pub["kind"], pub["name"], ok=True))
            except Exception as exc:
                report.errors.append(RecordError(
                    platform=name, code="segment", message=f"{pub['kind']} {pub['name']!r}: {exc}"
                ))
                self.progress(Published(name, pub["kind"], pub["name"], ok=False))
        return refs

    async def _known_or_adopted(
        self, platform: str, pub: Mapping[str, Any], intents: set[tuple[str, str]], at: str
    ) -> str | None:
        """The ref to update for a publication, or None to create one.

        Before a creation, the intent (kind, name, ref `CREATING`) is recorded, so that a run
        killed before recording the platform's answer leaves a trace: the next run adopts
        the object of that exact owned name (`Connector.find_owned`) instead of creating a
        second one or failing on a duplicate name.
        """
        ref: str | None = pub.get("ref")
        if ref is not None:
            return ref
        kind, obj_name = pub["kind"], pub["name"]
        if (kind, obj_name) in intents:
            ref = await self.connectors[platform].find_owned(kind, obj_name)
            if ref is not None:
                return ref
        else:
            self.store.set_owned(
                self.config, OwnedObject(platform, kind, obj_name, CREATING), at=at
            )
        return None

    async def _members(
        self,
        name: str,
        ref: str,
        membership: Mapping[str, Any],
        counts: PlatformReport,
        report: RunReport,
        gate: asyncio.Semaphore,
    ) -> None:
        connector = self.connectors[name]
        size = connector.capabilities.membership_batch_size
        adds: list[list[str]] = membership["add"]
        removes: list[list[str]] = membership["remove"]
        for start in range(0, max(len(adds), len(removes)), size):
            add = adds[start : start + size]
            remove = removes[start : start + size]
            async with gate:
                try:
                    results = await connector.change_static_members(
                        ref, [e for _, e in add], [e for _, e in remove]
                    )
                except Exception as exc:
                    results = [ChangeResult(email=e, ok=False, error=str(exc))
                               for _, e in [*add, *remove]]
            verdict = {}
            for r in results:
                with contextlib.suppress(InvalidEmail):
                    verdict[normalize_email(r.email)] = r
            ok_add = [cid for cid, e in add if (v := verdict.get(e)) is not None and v.ok]
            ok_remove = [cid for cid, e in remove if (v := verdict.get(e)) is not None and v.ok]
            for _cid, email in [*add, *remove]:
                v = verdict.get(email)
                if v is None or not v.ok:
                    report.errors.append(RecordError(
                        platform=name, email=email, code=v.code if v else None,
                        message=(v.error if v else None) or "membership not confirmed",
                    ))
            self.store.commit_members(self.config, name, membership["name"], ok_add, ok_remove)
            counts.members_added += len(ok_add)
            counts.members_removed += len(ok_remove)
            self.progress(MembersChanged(
                name, len(ok_add), len(ok_remove),
                len(add) + len(remove) - len(ok_add) - len(ok_remove),
            ))

    # -- sync and status ------------------------------------------------------------------

    async def sync(self) -> RunReport:
        """Plan and apply under one run lock."""
        async with self.locked():
            plan = await self._plan()
            return await self._apply(plan)

    def status(self, limit: int = 5) -> dict[str, Any]:
        """The state of this configuration: counts, cursors, owned objects, latest runs."""
        return {
            "config": self.config,
            "state": self.store.url,
            "schema_version": self.store.schema_version(),
            "generation": self.store.generation(self.config),
            "counts": self.store.counts(self.config),
            "cursors": {p: self.store.cursor(self.config, p) for p in self.connectors},
            "owned": [dataclasses.asdict(o) for o in self.store.owned(self.config)],
            "runs": self.store.runs(self.config, limit),
        }


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


def _greater(a: Any, b: Any) -> bool:
    try:
        return bool(a > b)
    except TypeError:
        return False
