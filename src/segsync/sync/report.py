"""The report of a run: per platform counts, record errors, diagnostics and times."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from segsync.sync.plan import Plan, RecordError

__all__ = ["PlatformReport", "RunReport"]


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
    """HTTP requests sent to the platform during the run (reads and writes, retries
    included; for a sync, from the start of its pull)."""
    read_calls: int = 0
    """Of `api_calls`, GET/HEAD requests."""
    write_calls: int = 0
    """Of `api_calls`, the others (searches sent as POST included)."""
    engagement_calls: int = 0
    """Of `api_calls`, the requests of the engagement refresh (0 when it was not due)."""
    recheck_calls: int = 0
    """Of `api_calls`, the requests of the re-check before writing (segsync.sync.recheck)."""


class RunReport(BaseModel):
    """The report of a run: per platform counts, errors, diagnostics, time."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    plan_id: str
    config: str
    status: str = "running"  # ok | errors | failed | interrupted (stored runs: + abandoned)
    interrupted_by: int | None = None
    """The signal number that interrupted the run (status `interrupted`)."""
    started_at: str
    """When the run started: the start of its plan step for a sync (pull included)."""
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

    @classmethod
    def of_plan(cls, plan: Plan, run_id: str, *, started_at: str) -> RunReport:
        """The report of a run applying `plan`, before anything is written: the plan's
        errors, diagnostics, conflicts and read and unchanged counts."""
        return cls(
            run_id=run_id, plan_id=plan.plan_id, config=plan.config, started_at=started_at,
            errors=list(plan.errors), diagnostics=list(plan.diagnostics), conflicts=plan.conflicts,
            platforms={
                name: PlatformReport(read=p.counts.get("read", 0),
                                     unchanged=p.counts.get("unchanged", 0),
                                     engagement_calls=p.counts.get("engagement_calls", 0))
                for name, p in plan.platforms.items()
            },
        )
