"""The sync engine: pull -> reconcile -> segments -> plan -> apply -> report.

`Engine.plan()` first checks each platform's account (`segsync.sync.binding`), then pulls
every platform incrementally into the state store's staging
(`segsync.sync.pull`; a record read as its base was read is left unstaged), merges the
staged and dirty contacts chunk by chunk (`segsync.sync.merge`, each contact by
`segsync.sync.reconcile`; by two forked processes for a large run), evaluates materialised
segments (`segsync.sync.segments`), and returns a `Plan`. `Engine.apply(plan)` re-reads each
platform incrementally first (`segsync.sync.recheck`: contacts changed since the read wait for
the next run), then writes it per platform concurrently (`segsync.sync.apply`).
`Engine.sync()` does both under one run lock.
See docs/sync.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import secrets
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from segsync.clock import Clock, SystemClock
from segsync.connector import Connector
from segsync.logs import bind_log, redactor, run_finished, run_started
from segsync.model import PublishMode, Schema
from segsync.rules.compiler import Diagnostic, RuleCompiler, Step, Strictness
from segsync.state.base import OwnedObject, StateStore
from segsync.state.roles import Snapshots
from segsync.sync.apply import Apply, Interrupt, RunStart, iso_now
from segsync.sync.binding import AccountGate
from segsync.sync.engagement import EngagementRefresh
from segsync.sync.lock import RunLock
from segsync.sync.merge import Merge, merged_by_workers
from segsync.sync.plan import (
    PLAN_FORMAT,
    Plan,
    PlanStale,
    PlatformPlan,
    RecordError,
    moved_records,
    plan_bases,
)
from segsync.sync.policy import Direction, SyncPolicy
from segsync.sync.progress import NO_PROGRESS, ProgressObserver
from segsync.sync.pull import Pull, RunScope, ScopeError, refresh_differences
from segsync.sync.recheck import Recheck
from segsync.sync.report import PlatformReport, RunReport
from segsync.sync.segments import (
    Memberships,
    PlatformSegments,
    SegmentTarget,
    compile_segments,
    depends_on_clock,
    disowned_objects,
    dropped_tags,
    evaluate_rest,
    fresh_statics,
    name_publications,
    planned_objects,
    publications,
    reads_only_view,
    recall_made,
)
from segsync.sync.timing import lap, phase, timed_commits

__all__ = ["Engine", "PlatformReport", "RunReport", "SegmentTarget", "depends_on_clock"]


PARALLEL_RECORDS = 60_000
"""Records staged from which a run's merge is shared by two processes (`Engine.workers`)."""


def read_only_sources(
    policy: SyncPolicy, schema: Schema, connectors: Mapping[str, Connector]
) -> SyncPolicy:
    """`policy` with the schema's read-only fields (engagement, CRM lifecycle: platforms
    report them, segsync never writes them) `source-only` for every platform, whatever the
    policy said: a plan never lists them as writes to a platform."""
    directions = {field: dict(per) for field, per in policy.directions.items()}
    platforms = (*policy.platforms, *(p for p in connectors if p not in policy.platforms))
    for name, spec in schema.fields.items():
        if spec.read_only:
            directions.setdefault(name, {}).update(
                dict.fromkeys(platforms, Direction.SOURCE_ONLY)
            )
    if directions == policy.directions:
        return policy
    return policy.model_copy(update={"directions": directions})


def consent_held(policy: SyncPolicy, connectors: Mapping[str, Connector]) -> SyncPolicy:
    """`policy` knowing the consent statuses each platform cannot hold
    (`Capabilities.consent_not_held`), so that none is planned there."""
    not_held = {name: c.capabilities.consent_not_held for name, c in connectors.items()
                if c.capabilities.consent_not_held}
    if not not_held or not_held == policy.consent_not_held:
        return policy
    return policy.model_copy(update={"consent_not_held": {**not_held,
                                                          **policy.consent_not_held}})


def _new_id(clock: Clock) -> str:
    return clock.now().strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(8)


class Engine:
    """Syncs a set of connectors through one state store (see the module docstring).

    Args:
        connectors: platform name -> connector.
        store: the state store; the engine uses its state of `config` (`store.scoped`).
        config: the name of this sync configuration (the run lock and the state's namespace).
        policy: the sync policy (default: latest change wins, every field both ways).
        schema: the canonical schema (coerces values written and evaluated).
        segments: segments to publish.
        compilers: platform -> rule compiler (default: each connector's `compiler()`).
        strictness: what a compiler does with a rule the platform cannot express.
        clock: the injected clock.
        chunk_size: contacts reconciled per chunk.
        wait: wait for the run lock instead of failing with `RunLocked`.
        lock_poll: seconds between two attempts when waiting.
        lock_timeout: give up waiting after this many seconds (None: wait forever).
        reevaluate: evaluate materialised segments on every contact, not only changed ones
            (for rules on time, like `within 7 days`).
        progress: the observer of progress events (segsync.sync.progress; default: none).
        enforce_erasure: a sync erases again the erased people a platform holds
            (`sync.erasure: enforce`); otherwise they are only skipped and reported.
        scope: what the runs cover (`segsync.sync.pull.RunScope`: platforms, segments, a
            sample, a full refresh; default: everything, incrementally).
        workers: processes merging the worklist (`segsync.sync.merge.merged_by_workers`);
            None: two for a large run where the machine and the state allow it, else one.
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
        enforce_erasure: bool = False,
        engagement_refresh: dt.timedelta | Mapping[str, dt.timedelta | None] = (
            dt.timedelta(hours=24)
        ),
        scope: RunScope | None = None,
        workers: int | None = None,
    ) -> None:
        self.connectors = dict(connectors)
        self.workers = workers
        self.scope = scope or RunScope()
        #: how often each platform's engagement is re-read (`engagement.refresh`)
        self.engagement_refresh = engagement_refresh
        self.enforce_erasure = enforce_erasure
        self._erase_on_pull = False  # only a sync erases (a plan writes nothing)
        self.progress: ProgressObserver = progress or NO_PROGRESS
        self.store = store
        self.config = config
        self.state = store.scoped(config)
        self.schema = schema or Schema()
        self.segments = tuple(segments)
        self.clock = clock or SystemClock()
        self.chunk_size = chunk_size
        self.run_lock = RunLock(self.state, self.clock, wait=wait, poll=lock_poll,
                                timeout=lock_timeout)
        self.reevaluate = reevaluate
        self.strictness = strictness
        #: set (by a signal handler) to stop taking new batches (segsync.sync.apply)
        self.interrupt = Interrupt()
        self._compilers = dict(compilers) if compilers is not None else None
        # a person's tag named like a segment is an ordinary tag: connectors name the objects
        # holding segments (a static segment that is a tag) `segsync:...`, never synced
        self.policy = consent_held(read_only_sources(
            policy or SyncPolicy(platforms=tuple(self.connectors)), self.schema, self.connectors
        ), self.connectors)

    def __repr__(self) -> str:
        return f"Engine(config={self.config!r}, platforms={list(self.connectors)})"

    def locked(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the run lock of this configuration (re-entrant within this engine)."""
        return self.run_lock.held()

    def _compiler(self, platform: str) -> RuleCompiler | None:
        if self._compilers is not None:
            return self._compilers.get(platform)
        return self.connectors[platform].compiler(self.strictness)

    # -- plan -----------------------------------------------------------------------------

    async def plan(self) -> Plan:
        """Pull and reconcile; return the plan (staged in the store until applied)."""
        async with self.locked():
            return await self._plan()

    async def _plan(self) -> Plan:
        errors: list[RecordError] = []
        diagnostics: list[Diagnostic] = []
        # the account gate (segsync.sync.binding): a platform now reaching another account,
        # or whose changed config fails its check, sits the run out before any read
        bind_log(phase="check")
        lap("check")
        # platforms outside the run's scope sit it out: not read, not written, their state kept
        covered = {p: c for p, c in self.connectors.items() if self.scope.covers(p)}
        gate = await AccountGate(covered, self.state, self.clock).run(errors)
        reading = {p: c for p, c in covered.items() if p not in gate.stopped}
        # owned objects a connector says are not segsync's (an older segsync's bare names);
        # told before the read, a connector knows which of its objects are segsync's
        owning: list[dict[str, str]] = []
        disowned = await disowned_objects(reading, self.state.owned(), owning)
        await recall_made(reading, self.state.owned(), [
            p for p in reading if self.scope.full_refresh or self.state.cursor(p) is None])
        bind_log(phase="pull")
        lap("pull")
        pulled = await Pull(reading, self.state, self.progress, erase=self._erase_on_pull,
                            scope=self.scope, unchanged=self._leaves_unchanged()).run(errors)
        if self.scope.full_refresh:
            pulled.diagnostics.extend(
                refresh_differences(self.state, p, self.store.base_rows(self.config, p),
                                    sample=pulled.sample)
                for p in reading if p not in pulled.failed)
        pulled.failed.update(gate.stopped)
        pulled.failed.update(p for p in self.connectors if p not in covered)
        if pulled.sample is not None:  # a sample's run would mark them done, undone
            waiting = sorted({d.email for d in self.state.deletions(pending=True)
                              if d.cid not in pulled.sample})
            if waiting:
                raise ScopeError(
                    f"--limit: {len(waiting)} deletion(s) found by the last run await an "
                    f"unlimited run (e.g. {waiting[0]}); run `segsync sync` without --limit")
        lap("engagement")
        refreshed = await EngagementRefresh(
            {p: c for p, c in reading.items() if p not in pulled.failed},
            self.state, self.clock, self.engagement_refresh,
        ).run(errors)
        pulled.failed.update(refreshed.unavailable)
        platforms = tuple(p for p in self.policy.platforms if p not in pulled.failed)
        bind_log(phase="segments")
        lap("segments")
        segments = self._compile(platforms, diagnostics, errors)
        bind_log(phase="reconcile")
        lap("reconcile")
        now, plan_id = self.clock.now(), _new_id(self.clock)
        policy = self.policy.model_copy(update={"platforms": platforms})
        memberships = Memberships(segments, {p: [] for p in platforms}, schema=self.schema,
                                  now=now, fresh=fresh_statics(segments, self._owned(disowned)),
                                  holds={p: self.connectors[p].may_hold for p in platforms},
                                  recorded=self.state.rule_fingerprints(),
                                  dropped=dropped_tags(segments, self._owned(disowned),
                                                       self._configured))
        merge = Merge(self.state, policy, memberships, now.isoformat(),
                      normalise={p: self.connectors[p].normalise_field for p in platforms},
                      unstaged=pulled.unstaged)
        sample = pulled.sample

        def chunks(state: Snapshots) -> Iterator[list[str]]:
            for cids in state.worklist(self.chunk_size):
                if sample is not None:  # a sample's run merges nobody else (dirty ones wait)
                    cids = [cid for cid in cids if cid in sample]
                yield cids

        # what the worklist holds, about: the records staged (read but not left unstaged)
        staged = sum(pulled.reads.values()) - sum(
            pulled.unstaged.live.values() if pulled.unstaged is not None else ())
        workers = self._merge_workers(staged)
        merged = (merged_by_workers(merge, chunks, self.store, self.config, workers)
                  if workers > 1 else map(merge.chunk, chunks(self.state)))
        for views in merged:
            # with a platform or a segment sitting out, every contact is reconciled again
            # next run (an unchanged one is skipped otherwise: its memberships must be decided)
            with phase("staging"):
                self.state.stage_planned(views, plan_id=plan_id, retry=bool(
                    pulled.failed or self.scope.segments is not None))
        lap("segments")
        if memberships.any and pulled.sample is None:
            await evaluate_rest(memberships, self.state, merge.seen,
                                reevaluate=self.reevaluate, chunk_size=self.chunk_size)
        owned = self._owned(disowned)
        pubs = {
            p: await name_publications(p, self.connectors[p], publications(
                p, segments[p], [o for o in owned if o.platform == p], self._configured(p),
            ), owning)
            for p in platforms
        }
        objects = {
            p: await planned_objects(p, self.connectors[p], merge.changes[p], pubs[p],
                                     self.schema.fields, owning)
            for p in platforms
        }
        lap("plan")
        platform_plans = {
            p: PlatformPlan.model_construct(
                changes=merge.changes[p],
                publications=pubs[p],
                objects=objects[p],
                memberships=memberships.of(p),
                counts={"read": pulled.reads.get(p, 0), "unchanged": merge.unchanged[p],
                        "engagement_calls": refreshed.calls.get(p, 0)},
                rules=memberships.rules_of(p),
            )
            for p in platforms
        }
        return Plan.model_construct(
            format=PLAN_FORMAT, plan_id=plan_id, config=self.config,
            generation=self.state.seal_plan(plan_id), created_at=now.isoformat(),
            platforms=platform_plans, consent_events=merge.events, errors=errors,
            diagnostics=[*gate.diagnostics, *pulled.diagnostics,
                         *(d.as_dict() for d in diagnostics), *merge.notes, *owning],
            conflicts=merge.conflicts, owed=merge.owed_rows,
            bases=plan_bases(self.state, platform_plans, self.chunk_size),
            scope=self.scope.as_dict(),
        )

    def _merge_workers(self, records: int) -> int:
        """How many processes merge the worklist (`workers`; None: two for a run staging
        `PARALLEL_RECORDS` records or more, on Linux with two cores or more and a state
        with connections for workers; else this one)."""
        wanted = self.workers
        if wanted is None:
            wanted = 2 if records >= PARALLEL_RECORDS and (os.cpu_count() or 1) > 1 else 1
        if wanted <= 1 or sys.platform != "linux" or not hasattr(os, "fork"):
            return 1
        probe = self.store.worker_store()  # forked workers each open one like it
        if probe is None:
            return 1
        probe.close()
        return wanted

    def _leaves_unchanged(self) -> bool:
        """Whether the pull may leave a record read unchanged unstaged (`Pull`): not while a
        segment's rule reads engagement or read-only fields (an engagement refresh changes
        them without changing a record's read, so every contact read is evaluated again)."""
        return all(reads_only_view(s.rule, self.schema) for s in self.segments)

    def _owned(self, disowned: set[tuple[str, str, str]]) -> list[OwnedObject]:
        """The owned objects of the state, but those the connectors disowned this run."""
        return [o for o in self.state.owned() if (o.platform, o.kind, o.name) not in disowned]

    def _compile(
        self, platforms: tuple[str, ...], diagnostics: list[Diagnostic], errors: list[RecordError]
    ) -> dict[str, PlatformSegments]:
        """What the segments compile to on each platform read this run."""
        selected = [s for s in self.segments
                    if self.scope.segments is None or s.name in self.scope.segments]
        compiled = compile_segments(selected, platforms, self._compiler, diagnostics, errors)
        out = {
            p: PlatformSegments.of(compiled[p], self.connectors[p].capabilities.static_segments)
            for p in platforms
        }
        if self.scope.limited:  # a sample cannot give a static segment its first members
            fresh = fresh_statics(out, self.state.owned())
            for p, seg in out.items():
                held = {s.segment for s in seg.statics if (p, s.name) in fresh}
                if not held or self.state.cursor(p) is None:  # the next run reads everyone
                    continue
                out[p] = PlatformSegments.of([c for c in seg.compiled if c.segment not in held],
                                             self.connectors[p].capabilities.static_segments)
                diagnostics.extend(
                    Diagnostic(name, p, Step.MATERIALISE, "info",
                               "not published by a run limited to a sample (--limit): the "
                               "next unlimited run publishes it with all its members")
                    for name in sorted(held))
        return out

    def _configured(self, platform: str) -> set[str]:
        """The segments published on a platform (not `off`)."""
        return {s.name for s in self.segments if s.publish.get(platform) is not PublishMode.OFF}

    # -- apply ----------------------------------------------------------------------------

    async def apply(self, plan: Plan) -> RunReport:
        """Apply a plan exactly; refused (`PlanStale`, naming them) when records it writes
        moved since it was made (docs/sync.md, "Saved plans"), or when a platform it writes
        now reaches another account than the one its state is bound to."""
        async with self.locked():
            gate = AccountGate(
                {p: c for p, c in self.connectors.items() if p in plan.platforms},
                self.state, self.clock,
            )
            elsewhere = await gate.verify()
            if elsewhere:
                raise PlanStale(f"plan {plan.plan_id}: " + "; ".join(elsewhere))
            return await self._apply(plan)

    async def _apply(
        self, plan: Plan, start: RunStart | None = None, run_id: str | None = None
    ) -> RunReport:
        if plan.config != self.config:
            raise PlanStale(f"the plan is for {plan.config!r}, not {self.config!r}")
        staged = (self.state.plan_id() == plan.plan_id
                  and self.state.generation() == plan.generation)
        if not staged:
            # another run or plan came in between: still applicable while nothing the plan
            # writes moved; the staging (another plan's reads) is discarded, not committed
            moved = moved_records(plan, self.state, self.chunk_size)
            if moved:
                shown = "; ".join(f"[{m.platform}] {m.what}: {m.reason}" for m in moved[:10])
                more = f" (and {len(moved) - 10} more)" if len(moved) > 10 else ""
                raise PlanStale(
                    f"plan {plan.plan_id}: {len(moved)} record(s) it writes moved since it "
                    f"was made: {shown}{more}; make a new plan"
                )
            self.state.begin_stage()
        start = start or RunStart.now(self.clock, self.connectors)  # the re-check's calls
        if run_id is None:
            run_id = _new_id(self.clock)
            run_started(run_id, self.config, "apply")
        bind_log(phase="recheck")
        lap("recheck")
        # records changed on a platform since this run read them: their contacts wait
        recheck = await Recheck(self.connectors, self.state, plan, staged=staged).run()
        if plan.scope.get("limit") is not None:
            # a sample's read commits no cursor: the next run reads all this one read
            for name in plan.platforms:
                self.state.set_pending_cursor(name, None)
        step = Apply(self.connectors, timed_commits(self.state), schema=self.schema,
                     clock=self.clock, progress=self.progress, run_id=run_id, plan=plan,
                     start=start, interrupt=self.interrupt, deferred=recheck.deferred,
                     hold=self._held(plan))
        step.report.diagnostics.extend(recheck.diagnostics)
        for name, calls in recheck.calls.items():
            if name in step.report.platforms:
                step.report.platforms[name].recheck_calls = calls
        bind_log(phase="apply")
        lap("apply")
        try:
            report = await step.run()
            for name, pplan in plan.platforms.items():
                # a static's members follow its changed rule once every change was applied
                if pplan.rules and name not in step.stopped and not self.interrupt.is_set():
                    self.state.set_rule_fingerprints(name, pplan.rules)
            return report
        finally:
            done = step.report
            run_finished(done.run_id, done.status, done.duration_s,
                         {p: r.model_dump() for p, r in done.platforms.items()}, len(done.errors))

    def _held(self, plan: Plan) -> frozenset[str]:
        """The platforms whose deletions stay pending after this plan: those whose
        `on_delete` policy acts on a platform the plan leaves out (not selected, stopped,
        failed); the next run reaching it acts on them (docs/sync.md, "Deletes")."""
        left_out = {p for p in self.policy.platforms if p not in plan.platforms}
        return frozenset(p for p in self.policy.platforms
                         if self.policy.archives_elsewhere(p) and left_out - {p})

    # -- sync and status ------------------------------------------------------------------

    async def sync(self) -> RunReport:
        """Plan and apply under one run lock."""
        async with self.locked():
            start = RunStart.now(self.clock, self.connectors)  # the report covers the pull
            run_id = _new_id(self.clock)
            run_started(run_id, self.config, "sync")
            self._erase_on_pull = self.enforce_erasure
            try:
                plan = await self._plan()
            except BaseException as exc:
                self._plan_failed(run_id, start, exc)
                raise
            finally:
                self._erase_on_pull = False
            return await self._apply(plan, start, run_id)

    def _plan_failed(self, run_id: str, start: RunStart, exc: BaseException) -> None:
        """Record a sync whose plan step raised as a `failed` run (it wrote nothing), with
        the failure as its one diagnostic, and log its end."""
        message = redactor(f"the plan step failed: {type(exc).__name__}: {exc}")
        report = RunReport(run_id=run_id, plan_id="", config=self.config, status="failed",
                           started_at=start.at, finished_at=iso_now(self.clock),
                           duration_s=round(self.clock.monotonic() - start.monotonic, 6),
                           diagnostics=[{"level": "error", "message": message}])
        with contextlib.suppress(Exception):  # the state itself may be what failed
            self.state.start_run(run_id, at=start.at)
            self.state.end_run(run_id, at=report.finished_at or start.at, status="failed",
                               report=report.model_dump(mode="json"),
                               diagnostics=[(None, None, "error", message)])
        run_finished(run_id, "failed", report.duration_s, {}, 0)

    def status(self, limit: int = 5) -> dict[str, Any]:
        """The state of this configuration: counts, cursors, owned objects, latest runs."""
        return {
            "config": self.config,
            "state": self.store.url,
            "schema_version": self.store.schema_version(),
            "generation": self.state.generation(),
            "counts": self.state.counts(),
            "cursors": {p: self.state.cursor(p) for p in self.connectors},
            "owned": [dataclasses.asdict(o) for o in self.state.owned()],
            "runs": self.run_lock.settle(self.state.runs(limit)),  # dead runs: abandoned
        }

