"""Pull: stage every platform's changes since its cursor, page by page.

Each page and the cursor reaching past it are staged in one transaction. A read record is
linked to its contact by platform id, else by normalised email, else it is a new contact
(its email as id, or `email#n` when a renamed contact holds that id). A platform whose read
fails is discarded for the run; duplicates (two live records of one contact on a platform)
are reported and set aside.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping, Sequence

from segsync.connector import Connector, RemoteContact
from segsync.http import ApiError
from segsync.model import InvalidEmail, normalize_email
from segsync.state.roles import PulledRow, ReadStaging
from segsync.sync.plan import RecordError
from segsync.sync.progress import PageRead, ProgressObserver, PullDone, PullStarted
from segsync.sync.snapshot import encode_read

__all__ = ["Pull", "PullResult"]

log = logging.getLogger("segsync.sync")


@dataclasses.dataclass(frozen=True)
class PullResult:
    """Records read per platform, and the platforms whose read failed."""

    reads: dict[str, int]
    failed: set[str]


class Pull:
    """The pull step of a run over `connectors` into the staging of `state`."""

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        state: ReadStaging,
        progress: ProgressObserver,
    ) -> None:
        self.connectors = connectors
        self.state = state
        self.progress = progress

    async def run(self, errors: list[RecordError]) -> PullResult:
        """Stage every platform's changes since its cursor; read failures go to `errors`."""
        self.state.begin_stage()
        result = PullResult({}, set())
        self.progress(PullStarted(tuple(self.connectors)))
        await asyncio.gather(*(self._platform(name, result, errors) for name in self.connectors))
        renamed = self.state.new_records_of_renamed()
        if renamed:  # the platform renamed the contact away: the new record is someone new
            taken = self.state.known_cids([key for _, _, key in renamed])
            self.state.set_pulled_cids(
                [(p, pid, self._new_cid(key, taken)) for p, pid, key in renamed]
            )
        self.state.relink_pulled()
        for name in self.connectors:
            if name not in result.failed:
                self._settle(name, errors)
        return result

    async def _platform(self, name: str, result: PullResult, errors: list[RecordError]) -> None:
        try:
            result.reads[name] = await self._read(name, errors)
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
            self.state.discard_pulled(name)
            result.failed.add(name)
            self.progress(PullDone(name, ok=False))

    async def _read(self, name: str, errors: list[RecordError]) -> int:
        count = 0
        async for page in self.connectors[name].read(self.state.cursor(name)):
            count += len(page.contacts)
            with self.state.transaction():  # the page and the cursor reaching past it
                self._stage_page(name, page.contacts, errors)
                if page.cursor is not None:
                    self.state.set_pending_cursor(name, page.cursor)
            self.progress(PageRead(name, len(page.contacts)))
        return count

    def _settle(self, name: str, errors: list[RecordError]) -> None:
        """Report and set aside a platform's duplicate records; one staged record per contact."""
        duplicates = self.state.duplicate_records(name)
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
            self.state.drop_pulled(name, [pid for _, pid, _ in duplicates])
        self.state.settle_pulled(name)

    def _stage_page(
        self, name: str, contacts: Sequence[RemoteContact], errors: list[RecordError]
    ) -> None:
        keyed = self._keyed(name, contacts, errors)
        by_id = self.state.cids_by_platform_id(name, [remote.platform_id for remote, _ in keyed])
        unlinked = [key for remote, key in keyed if remote.platform_id not in by_id and key]
        by_email = self.state.cids_by_email(unlinked)
        taken = self.state.known_cids([key for key in unlinked if key not in by_email])
        rows: list[PulledRow] = []
        for remote, key in keyed:
            cid = by_id.get(remote.platform_id)
            if cid is None:
                if remote.deleted or key is None:
                    continue  # a deletion of a record never seen: nothing to do
                cid = by_email.get(key) or self._new_cid(key, taken)
            payload, digest = encode_read(remote, key or "")
            rows.append((remote.platform_id, cid, key or "", payload, digest, remote.deleted))
        self.state.stage_pulled(name, rows)

    @staticmethod
    def _keyed(
        name: str, contacts: Sequence[RemoteContact], errors: list[RecordError]
    ) -> list[tuple[RemoteContact, str | None]]:
        """Records with their normalised email (None for a deletion with an invalid one);
        a live record with an invalid email is an error, not staged."""
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
        return keyed

    def _new_cid(self, key: str, taken: set[str]) -> str:
        """A contact id for a new email: the email, or email#n if a renamed contact had it."""
        if key not in taken:
            return key
        n = 2
        while True:
            candidate = f"{key}#{n}"
            if not self.state.known_cids([candidate]):
                return candidate
            n += 1
