"""The report of a run: per platform counts, record errors, diagnostics and times; and the
export of a run's record errors (`--errors-out`: CSV or JSON lines, `write_errors`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from segsync.logs import redactor
from segsync.sync.plan import Plan, RecordError

__all__ = ["ERROR_COLUMNS", "ERROR_FORMATS", "PlatformReport", "RunReport", "errors_format",
           "write_errors"]

ERROR_COLUMNS = ("run_id", "platform", "email", "platform_id", "code", "field", "message")
"""The columns of an errors export, in order: `email` or `platform_id` names the record
(both when known); `field` is the field the platform named, when it named one."""

ERROR_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}
"""Errors export formats, by the file's suffix."""


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
    archived: int = 0
    """Records this run archived there (`on_delete: archive_elsewhere`; on a platform
    without an archive, the record is deleted and counted here)."""
    deleted: int = 0
    """Records found deleted or archived there by the platform or its users (read so, or
    answered so to a write), reported once."""
    erased: int = 0
    """People erased there by the run: erasures owed there (`segsync erase` not confirmed)
    it performed, and erased people it found again and erased (`sync.erasure: enforce`)."""
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
        errors, diagnostics, conflicts and read and unchanged counts. A platform the plan
        left out as a whole (stopped by a platform-level failure: down, refusing the key,
        another account) has its entry too, with its errors, so that every report and the
        run history show it."""
        platforms = {
            name: PlatformReport(read=p.counts.get("read", 0),
                                 unchanged=p.counts.get("unchanged", 0),
                                 engagement_calls=p.counts.get("engagement_calls", 0))
            for name, p in plan.platforms.items()
        }
        for error in plan.errors:
            platforms.setdefault(error.platform, PlatformReport())
        for name, counts in platforms.items():
            counts.errors = sum(1 for e in plan.errors if e.platform == name)
            counts.deleted = sum(
                1 for d in plan.diagnostics
                if d.get("step") == "delete" and d.get("platform") == name
            )
            counts.erased = sum(  # erased people a pull found again and erased (enforce)
                1 for d in plan.diagnostics
                if d.get("step") == "erase" and d.get("level") == "info"
                and d.get("platform") == name
            )
        return cls(
            run_id=run_id, plan_id=plan.plan_id, config=plan.config, started_at=started_at,
            errors=list(plan.errors), diagnostics=list(plan.diagnostics), conflicts=plan.conflicts,
            platforms=platforms,
        )


def errors_format(path: Path) -> str:
    """The export format of `path` by its suffix (`csv` or `jsonl`).

    Raises:
        ValueError: another suffix (the message names the path and the accepted ones).
    """
    found = ERROR_FORMATS.get(path.suffix.lower())
    if found is None:
        accepted = " or ".join(ERROR_FORMATS)
        raise ValueError(f"--errors-out {path}: the file name must end in {accepted} "
                         f"(not {path.suffix or 'no suffix'!r})")
    return found


def write_errors(path: Path, run_id: str, errors: Iterable[Mapping[str, Any] | RecordError]) -> int:
    """Write one row per record error of run `run_id` to `path` (`errors_format`; created
    or replaced, UTF-8). Returns how many rows were written. Every value is redacted
    (`segsync.logs.redactor`): no secret is written."""
    fmt = errors_format(path)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, ERROR_COLUMNS) if fmt == "csv" else None
        if writer is not None:
            writer.writeheader()
        for error in errors:
            data = error.model_dump() if isinstance(error, RecordError) else dict(error)
            row = {column: redactor.value(data.get(column)) for column in ERROR_COLUMNS}
            row["run_id"] = run_id
            if writer is not None:
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
            else:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count
