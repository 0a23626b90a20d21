"""The engagement refresh: each platform's `Connector.read_engagement`, when it is due.

Engagement that changes without moving a platform's change cursor (opens, clicks, rates) is
re-read at most once per `engagement.refresh` (config, default 24h) per platform. A record's
refreshed values are kept beside what its reads carried (`PlatformRecord.refreshed`, with
their time), the newest observation of each key winning (`PlatformRecord.facts`):

- a refresh replaces the record's refreshed values with the page's (absent = no data);
- a later read of the record supersedes the refreshed keys it carries and keeps the others
  (`carry_over`, after every pull), so a record re-read for another reason does not lose
  what only the refresh reads.

Either way the record is staged like a read, so its contact's segments are evaluated again;
nothing is written to any platform (engagement is never reconciled as fields). Ids segsync
does not know are ignored.

When it ran last and the connector's own refresh cursor are kept as the read cursor named
`<platform>#engagement` (JSON `{"at": ISO time, "cursor": ...}`), committed with the run
like every cursor: a plan that is not applied refreshes again next time. A failing refresh is
a record error of the platform (code `engagement_failed`) and the read itself stands; a
platform found unavailable (`PlatformUnavailable`: down, credentials refused) sits the run
out like a failed read, with its platform-level code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

from segsync.clock import Clock
from segsync.connector import Connector
from segsync.http import PlatformUnavailable
from segsync.state.scoped import ConfigState
from segsync.sync.plan import RecordError
from segsync.sync.snapshot import PlatformRecord, encode_record, jsonify

__all__ = ["EngagementRefresh", "RefreshResult", "refresh_key"]

log = logging.getLogger("segsync.engagement")


def refresh_key(platform: str) -> str:
    """The cursor row holding a platform's engagement refresh."""
    return f"{platform}#engagement"


@dataclasses.dataclass
class RefreshResult:
    """Per platform: HTTP requests the refresh sent (`calls`, only platforms refreshed this
    run), records whose engagement changed (`changed`), and the platforms found unavailable."""

    calls: dict[str, int] = dataclasses.field(default_factory=dict)
    changed: dict[str, int] = dataclasses.field(default_factory=dict)
    #: platforms the refresh found unavailable (down, credentials refused): they sit the
    #: run out like a platform whose read failed (its read is discarded)
    unavailable: set[str] = dataclasses.field(default_factory=set)


def _stored(text: str | None) -> tuple[dt.datetime | None, str | None]:
    if not text:
        return None, None
    try:
        data = json.loads(text)
        at = dt.datetime.fromisoformat(data["at"]) if data.get("at") else None
        cursor = data.get("cursor")
    except (ValueError, TypeError, KeyError, AttributeError):
        return None, None
    return at, cursor if isinstance(cursor, str) else None


class EngagementRefresh:
    """Run the due refreshes of `connectors` into `state` (see the module docstring)."""

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        state: ConfigState,
        clock: Clock,
        every: dt.timedelta | Mapping[str, dt.timedelta | None],
    ) -> None:
        self.connectors = connectors
        self.state = state
        self.clock = clock
        #: per platform, the refresh period (None: never refreshed); one period for all, or
        #: a mapping (a platform absent from it is never refreshed)
        self.every: Mapping[str, dt.timedelta | None] = (
            every if isinstance(every, Mapping) else dict.fromkeys(connectors, every)
        )

    def due(self, platform: str) -> bool:
        """Whether `platform`'s refresh is due now."""
        every = self.every.get(platform)
        if every is None:
            return False
        at, _ = _stored(self.state.cursor(refresh_key(platform)))
        return at is None or self.clock.now() >= at + every

    def carry_over(self, platform: str, chunk: int = 500) -> int:
        """Keep, in the records this run's read staged, the refreshed values the read does
        not carry (see the module docstring); how many records changed."""
        cids = self.state.staged_cids(platform, refreshed=True)  # only those can change
        changed = 0
        for start in range(0, len(cids), chunk):
            _, bases, pulled = self.state.load(cids[start:start + chunk])
            rows = []
            for cid, staged_rows in pulled.items():
                staged, base = staged_rows.get(platform), bases.get(cid, {}).get(platform)
                if staged is None or base is None or staged.deleted:
                    continue
                before = PlatformRecord.loads(base.payload)
                if not before.refreshed or staged.platform_id != base.platform_id:
                    continue
                record = PlatformRecord.loads(staged.payload)
                kept = {k: v for k, v in before.refreshed.items() if k not in record.engagement}
                if kept == dict(record.refreshed):
                    continue
                payload, digest = encode_record(dataclasses.replace(
                    record, refreshed=kept, refreshed_at=before.refreshed_at if kept else None))
                rows.append((staged.platform_id, cid, record.email_key, payload, digest, False))
            if rows:
                self.state.stage_pulled(platform, rows)
                changed += len(rows)
        return changed

    async def run(self, errors: list[RecordError]) -> RefreshResult:
        result = RefreshResult()
        for platform in self.connectors:
            self.carry_over(platform)
        for platform, connector in self.connectors.items():
            if not self.due(platform):
                continue
            _, cursor = _stored(self.state.cursor(refresh_key(platform)))
            started = self.clock.now()
            before = connector.stats.calls
            changed = 0
            try:
                async for page in connector.read_engagement(cursor):
                    changed += self._stage(platform, page.values, started.isoformat())
                    if page.cursor is not None:
                        cursor = page.cursor
            except Exception as exc:
                log.warning("refreshing %s engagement failed: %s", platform, exc)
                result.calls[platform] = connector.stats.calls - before
                if isinstance(exc, PlatformUnavailable):  # down, credentials, TLS: as a read
                    errors.append(RecordError(platform=platform, code=exc.reason,
                                              message=f"engagement refresh failed: {exc}"))
                    self.state.discard_pulled(platform)
                    result.unavailable.add(platform)
                else:
                    errors.append(RecordError(platform=platform, code="engagement_failed",
                                              message=f"engagement refresh failed: {exc}"))
                continue
            result.calls[platform] = connector.stats.calls - before
            result.changed[platform] = changed
            self.state.set_pending_cursor(
                refresh_key(platform),
                json.dumps({"at": started.isoformat(), "cursor": cursor}),
            )
        return result

    def _stage(self, platform: str, values: Mapping[str, Mapping[str, Any]], at: str) -> int:
        """Stage the records whose engagement the page changes; how many."""
        ids = list(values)
        cids = self.state.staged_cids_by_platform_id(platform, ids)
        rest = [pid for pid in ids if pid not in cids]
        if rest:
            cids.update(self.state.cids_by_platform_id(platform, rest))
        if not cids:
            return 0
        rows = self.state.snapshots(platform, sorted(set(cids.values())))
        staged = []
        for pid, cid in cids.items():
            row = rows.get(cid)
            if row is None or row.deleted or row.platform_id != pid:
                continue
            record = PlatformRecord.loads(row.payload)
            fresh = {k: jsonify(v) for k, v in values[pid].items() if v is not None}
            if fresh == dict(record.refreshed):
                continue
            payload, digest = encode_record(dataclasses.replace(
                record, refreshed=fresh, refreshed_at=at if fresh else None))
            staged.append((pid, cid, record.email_key, payload, digest, False))
        if staged:
            self.state.stage_pulled(platform, staged)
        return len(staged)
