"""Writing large change sets through Brevo's asynchronous `/contacts/import`.

Contract: `_write_by_import(ops)` returns one `ChangeResult` per op index. Ops are grouped by
list set, blocklist and clearing; a single list shared by fewer than `MEMBERSHIP_BATCH` contacts
becomes one membership call after the import (as many requests as an import of its own, and
no processing); every other list set is an import of its own. Bodies stay under
`IMPORT_MAX_BYTES`. Processes are polled (`/processes`, in the hourly budget) until they end
or `import_timeout_seconds` pass; what an import took is confirmed by reading the contacts
back (one shared pass for the imports of concurrent write batches, `ReadBackPool`), and a
contact that is not found is a failed result. A blocklisted contact an import marked
subscribed is restored, then asked again by double opt-in or reported (`consent_floor`).

Brevo requires a list on every import, and a list makes its non-blocklisted members
reachable by campaigns: `subscribed` contacts are imported into segsync's base list (and
their tag lists); the others into a temporary list of the owned folder
(`IMPORT_LIST_PREFIX`), deleted as soon as the imports into it ended (one create and one
delete per write call, whatever its size), so they end in no list segsync writes (unless the
user allows the base list for them).
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from segsync.connector import ChangeResult
from segsync.http import ApiError
from segsync.model import ConsentStatus
from segsync.rendezvous import Rendezvous, Ticket
from segsync_brevo.account import BASE_LIST_NAME, IMPORT_LIST_PREFIX
from segsync_brevo.fields import CONSENT_VALUES, iso_time, parse_time
from segsync_brevo.segments import MEMBERSHIP_BATCH
from segsync_brevo.write import BrevoWrites, WriteOp

__all__ = ["IMPORT_MAX_BYTES", "BrevoImports", "ReadBack", "ReadBackPool"]

IMPORT_MAX_BYTES = 8 * 1024 * 1024  # Brevo allows 10 MB and recommends staying near 8
_TEMPORARY_SERIAL = itertools.count(1)


class BrevoImports(BrevoWrites):
    """`_write_by_import`: imports, process polling and read-back (a connector part)."""

    _read_backs: ReadBackPool

    async def _write_by_import(self, ops: Sequence[WriteOp]) -> dict[int, ChangeResult]:
        """Write `ops` through `/contacts/import`; one result per op index.

        Concurrent calls (the engine's write batches) share one read-back pass: each joins
        the pool on entry and leaves it with its read-back request (or on failure).
        """
        ticket = self._read_backs.join()
        try:
            return await self._import_and_confirm(ops, ticket)
        finally:
            self._read_backs.leave(ticket)

    async def _import_and_confirm(
        self, ops: Sequence[WriteOp], ticket: _ReadBackTicket
    ) -> dict[int, ChangeResult]:
        base = await self._owned_list(BASE_LIST_NAME)
        unconsented_base = self.allowed_unconsented(base, BASE_LIST_NAME)
        Key = tuple[frozenset[int], bool, bool, bool]
        groups: dict[Key, list[WriteOp]] = collections.defaultdict(list)
        for op in ops:
            groups[(frozenset(op.add_lists), op.blocklist, op.clears, op.listable)].append(op)
        # one list shared by few contacts costs one membership call, as an import would, and
        # no processing; a set of several lists is one import instead of a call per list
        merged: dict[Key, list[WriteOp]] = collections.defaultdict(list)
        late_adds: dict[int, list[WriteOp]] = collections.defaultdict(list)
        for (lists, blocklist, clears, listable), members in groups.items():
            if len(lists) == 1 and len(members) < MEMBERSHIP_BATCH:
                merged[(frozenset(), blocklist, clears, listable)].extend(members)
                for list_id in lists:
                    late_adds[list_id].extend(members)
            else:
                merged[(lists, blocklist, clears, listable)].extend(members)
        temporary: int | None = None
        if any(not key[3] for key in merged) and not unconsented_base:
            temporary = await self._temporary_list()
        submitted = self.clock.now()
        processes: list[tuple[int, list[WriteOp]]] = []
        failures: dict[int, ChangeResult] = {}
        for (lists, blocklist, clears, listable), members in merged.items():
            landing = base if listable or temporary is None else temporary
            for chunk in _chunks_by_size(members, IMPORT_MAX_BYTES):
                body: dict[str, Any] = {
                    "jsonBody": [{"email": op.email, "attributes": op.attributes} for op in chunk],
                    "listIds": sorted(lists | {landing}),
                    "updateExistingContacts": True,
                    "emptyContactsAttributes": clears,
                    "disableNotification": True,
                }
                if blocklist:
                    body["emailBlacklist"] = True
                try:
                    response = await self._call(
                        "POST",
                        "/contacts/import",
                        "/contacts/import",
                        json_body=body,
                        idempotent=True,
                    )
                except ApiError as exc:
                    for op in chunk:
                        failures[op.index] = self._failed(op, exc.message, exc.code)
                    continue
                processes.append((int(response.json()["processId"]), chunk))
        errors: dict[int, str] = {}
        outcome = await self._wait_for(
            [pid for pid, _ in processes], sum(len(c) for _, c in processes), errors
        )
        if temporary is not None and all(outcome.get(pid) != "timeout" for pid, _ in processes):
            # every import into it ended: deleting the list takes its members out of it
            await self._call(
                "DELETE", f"/contacts/lists/{temporary}", "/contacts/lists/{listId}", ok=(404,)
            )
        imported: list[WriteOp] = []
        for pid, chunk in processes:
            status = outcome.get(pid, "timeout")
            if status == "completed":
                imported.extend(chunk)
            else:
                message = (
                    f"Brevo import process {pid} ended as {status!r}"
                    if status != "timeout"
                    else f"Brevo import process {pid} did not complete in time"
                )
                if pid in errors:
                    message += f": {errors[pid]}"
                for op in chunk:
                    failures[op.index] = self._failed(op, message, "import_" + status)
        found = await self._read_backs.request(ticket, submitted, {op.email for op in imported})
        results: dict[int, ChangeResult] = dict(failures)
        for op in imported:
            if op.email not in found:
                results[op.index] = self._failed(
                    op,
                    "Brevo's import did not take this contact (see the import report)",
                    "import_rejected",
                )
        confirmed = [op for op in imported if op.index not in results]
        membership_errors: dict[str, str] = {}
        for list_id, members in late_adds.items():
            emails = [op.email for op in members if op.index not in results]
            for result in await self._membership(list_id, emails, "add"):
                if not result.ok:
                    membership_errors[result.email] = result.error or "list membership refused"
        removals: dict[int, list[str]] = collections.defaultdict(list)
        for op in confirmed:
            for list_id in op.remove_lists:
                removals[list_id].append(op.email)
        for list_id, emails in removals.items():
            await self._membership(list_id, emails, "remove")
        await self._after_import_consent(confirmed, found)
        for op in confirmed:
            contact_id, created_at, _ = found[op.email]
            self._forget(op, created=created_at >= submitted)
            if op.email in membership_errors:
                results[op.index] = ChangeResult(
                    email=op.change.email,
                    ok=True,
                    partial=True,
                    platform_id=contact_id,
                    created=created_at >= submitted,
                    error=membership_errors[op.email],
                )
                continue
            results[op.index] = ChangeResult(
                email=op.change.email,
                ok=True,
                partial=op.code == "consent_floor",
                platform_id=contact_id,
                created=created_at >= submitted,
                code=op.code,
                error=op.note,
            )
        return results

    async def _temporary_list(self) -> int:
        """A new list in the owned folder for one write call's imports of contacts without
        opt-in (`/contacts/import` requires a list); the caller deletes it."""
        folder = await self._folder(create=True)
        name = f"{IMPORT_LIST_PREFIX}{self.clock.now().isoformat(timespec='milliseconds')}"
        name += f" #{next(_TEMPORARY_SERIAL)}"
        response = await self._call(
            "POST",
            "/contacts/lists",
            "/contacts/lists",
            json_body={"name": name, "folderId": folder},
        )
        return int(response.json()["id"])

    async def _after_import_consent(
        self, ops: Sequence[WriteOp], found: Mapping[str, tuple[str, dt.datetime, bool]]
    ) -> None:
        """Blocklisted contacts an import marked subscribed: restore, then DOI or report."""
        attribute = self.config.consent_attribute.upper()
        for op in ops:
            if not (op.verify_consent and found[op.email][2]):
                continue
            self._consent_floor(op)
            value = CONSENT_VALUES[
                ConsentStatus.PENDING if op.double_opt_in else ConsentStatus.UNSUBSCRIBED
            ]
            try:
                await self._call(
                    "PUT",
                    f"/contacts/{found[op.email][0]}",
                    "/contacts/{identifier}",
                    params={"identifierType": "contact_id"},
                    json_body={"attributes": {attribute: value}},
                )
                if op.double_opt_in:
                    await self._double_opt_in(op)
            except ApiError as exc:
                op.code, op.note = "consent_floor", f"{op.note}; {exc.message}"

    async def _wait_for(
        self, process_ids: Sequence[int], size: int, errors: dict[int, str] | None = None
    ) -> dict[int, str]:
        """Poll processes until they end; the status of each ("timeout" when it never did).
        Brevo's `error` of a process that ended otherwise than `completed` goes in `errors`.

        Until an import was measured, polls come at 0.2, 0.6, 1.4, 3 ... times the cost
        model's estimate (each wait doubles, from 2 s up to 5 min), so a quicker import than
        assumed is seen early and a slower one costs a few polls; once the estimate is
        measured, the first poll comes when it says the imports are done (one poll), then at
        1.25, 1.75, 2.75 ... times it. `/processes` counts against the hourly budget, which the rate
        windows enforce; one `GET /processes` page covers up to 50 processes at once.
        """
        pending = set(process_ids)
        outcome: dict[int, str] = {}
        durations: list[float] = []
        if not pending:
            return outcome
        started = self.clock.monotonic()
        deadline = started + self.config.import_timeout_seconds
        estimate = self.cost.import_seconds(size)
        delay = min(300.0, max(2.0, 0.2 * estimate))
        # a measured estimate: the first poll when the imports should be done, one call
        await self.clock.sleep(min(300.0, max(2.0, estimate)) if self.cost.learned else delay)
        if self.cost.learned:
            delay = min(300.0, max(2.0, 0.25 * estimate))
        while pending:
            if len(pending) == 1:
                [pid] = pending
                response = await self._call(
                    "GET", f"/processes/{pid}", "/processes/{processId}", ok=(404,)
                )
                items = [response.json()] if response.status_code == 200 else []
                if response.status_code == 404:
                    outcome[pid] = "not_found"
                    pending.discard(pid)
            else:
                items = await self._recent_processes(min(pending))
            for item in items:
                pid = int(item["id"])
                if pid in pending and item.get("status") in ("completed", "failed", "cancelled"):
                    outcome[pid] = str(item["status"])
                    if errors is not None and item.get("error") and item["status"] != "completed":
                        errors[pid] = str(item["error"])[:500]
                    pending.discard(pid)
                    took = _process_seconds(item)
                    if took is not None:
                        durations.append(took)
            if not pending:
                break
            if self.clock.monotonic() + delay > deadline:
                break
            await self.clock.sleep(delay)
            delay = min(delay * 2, 300.0)
        for pid in pending:
            outcome[pid] = "timeout"
        if durations:
            # Brevo (2026) dates processes: learn from the real duration, not the poll times
            self.cost.observe_import(size, max(durations))
        elif not pending:
            self.cost.observe_import(size, self.clock.monotonic() - started)
        return outcome

    async def _recent_processes(self, oldest: int) -> list[dict[str, Any]]:
        """Processes newest first, 50 a page, down to process `oldest`."""
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            data = (
                await self._call(
                    "GET",
                    "/processes",
                    "/processes",
                    params={"limit": 50, "offset": offset, "sort": "desc"},
                )
            ).json()
            page = list(data.get("processes") or [])
            items += page
            offset += len(page)
            if (
                not page
                or min(int(p["id"]) for p in page) <= oldest
                or offset >= int(data.get("count") or 0)
            ):
                return items

    async def _read_back_pass(
        self, since: dt.datetime, emails: set[str]
    ) -> dict[str, tuple[str, dt.datetime, bool]]:
        """Email -> (id, createdAt, emailBlacklisted) of the `emails` modified since `since`."""
        if not emails:
            return {}
        found: dict[str, tuple[str, dt.datetime, bool]] = {}
        overlap = dt.timedelta(seconds=self.config.read_overlap_seconds)
        offset = 0
        while True:
            data = (
                await self._call(
                    "GET",
                    "/contacts",
                    "/contacts",
                    params={
                        "limit": 1000,
                        "offset": offset,
                        "sort": "asc",
                        "modifiedSince": iso_time(since - overlap),
                    },
                )
            ).json()
            contacts = data.get("contacts") or []
            for raw in contacts:
                email = str(raw.get("email") or "").lower()
                if email in emails:
                    found[email] = (
                        str(raw["id"]),
                        parse_time(str(raw["createdAt"])),
                        bool(raw.get("emailBlacklisted")),
                    )
            offset += len(contacts)
            if not contacts or offset >= int(data.get("count") or 0):
                return found


def _process_seconds(item: Mapping[str, Any]) -> float | None:
    """How long a process ran, when Brevo dates it (`created_at`, `completed_at`)."""
    try:
        created = parse_time(str(item["created_at"]))
        completed = parse_time(str(item["completed_at"]))
    except (KeyError, ValueError):
        return None
    return max(0.0, (completed - created).total_seconds())


ReadBack = dict[str, tuple[str, dt.datetime, bool]]


ReadBackRequest = tuple[dt.datetime, set[str]]
"""One import call's read-back: (submitted at, the emails it imported)."""

_ReadBackTicket = Ticket[ReadBackRequest, ReadBack]
"""One import call's place in the read-back pool."""


class ReadBackPool(Rendezvous[ReadBackRequest, ReadBack]):
    """Joins the read-backs of concurrent imports into one pass over `/contacts`.

    Every import call `join`s on entry; `request` parks its emails until every call that
    joined has either requested or `leave`n, then one pass runs from the oldest submission
    for the union of the emails and hands each caller its own share. A lone import reads
    back alone, at once; one whose imports all failed reads nothing.
    """

    def __init__(self, read: Callable[[dt.datetime, set[str]], Awaitable[ReadBack]]) -> None:
        super().__init__(self._shared_read)
        self._read = read

    async def request(
        self, ticket: _ReadBackTicket, since: dt.datetime, emails: set[str]
    ) -> ReadBack:
        """The `emails` found modified since `since - overlap`, read in a shared pass."""
        if not emails:
            self.leave(ticket)
            return {}
        return await self.submit(ticket, (since, emails))

    async def _shared_read(self, requests: Sequence[ReadBackRequest]) -> list[ReadBack]:
        since = min(r[0] for r in requests)
        found = await self._read(since, set().union(*(r[1] for r in requests)))
        return [{e: found[e] for e in emails if e in found} for _, emails in requests]


def _chunks_by_size(ops: Sequence[WriteOp], limit: int) -> list[list[WriteOp]]:
    """`ops` cut into import bodies of at most `limit` bytes of JSON."""
    chunks: list[list[WriteOp]] = []
    current: list[WriteOp] = []
    size = 0
    for op in ops:
        item = len(json.dumps({"email": op.email, "attributes": op.attributes})) + 1
        if current and size + item > limit:
            chunks.append(current)
            current, size = [], 0
        current.append(op)
        size += item
    if current:
        chunks.append(current)
    return chunks
