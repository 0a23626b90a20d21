"""Segments on Brevo: owned lists, their members, and Brevo's own (read-only) segments.

Contract (`Connector.ensure_static`, `find_owned`, `change_static_members`, `delete_owned`,
`segment_members`): Brevo's API cannot create segments, so every segment is materialised as
the owned list `segment: <name>` in the owned folder. Members are added and removed by email,
`MEMBERSHIP_BATCH` a call; "already there" / "already gone" count as done, and an add that
Brevo refuses is confirmed against the contact before it counts as failed. Only contacts
that are `subscribed` (as last read or written; looked up otherwise) are added: the others
are left out with a warning, as done results coded `unconsented` (`partial`: the membership
was deliberately not written, so the run converges), unless the list is allowed
(`consent.allow_unconsented_in_lists`). `delete_owned`
takes the kinds `static` (the engine's owned kind), `segment`, `list`, `tag` (owned lists)
and `folder`; gone is fine.

Ownership: people can make lists in segsync's folder too. A new segment list whose name
`segment: <name>` a list of the folder already holds (not segsync's: segsync would know its
id) is created as `segment: <name> [2]` (then `[3]`, ...; `creation_name` says which and
names the other list): a list segsync did not create is never adopted, written or deleted.
The folder and the tag lists are segsync's by the ids the state recorded (account.py,
`recall`/`made`); a folder of the configured name that is not segsync's gets segsync's own
folder beside it, and `creation_name` says so.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from segsync.connector import ChangeResult
from segsync.model import ConsentStatus, FieldSpec
from segsync_brevo.account import (
    IMPORT_LIST_PREFIX,
    LIST_PAGE,
    SEGMENT_LIST_PREFIX,
    TAG_LIST_PREFIX,
    BrevoAccount,
    _free,
)
from segsync_brevo.errors import parse_error
from segsync_brevo.fields import CONSENT_VALUES

__all__ = ["MAX_DISTINCT", "MEMBERSHIP_BATCH", "MEMBERS_PAGE", "BrevoSegments"]

log = logging.getLogger("segsync.brevo")

MEMBERSHIP_BATCH = 150
"""Emails per list add/remove call (Brevo's maximum)."""
MEMBERS_PAGE = 500
MAX_DISTINCT = 50
"""The most distinct names tried for one list (`<name> [2]` ... `<name> [MAX_DISTINCT]`)."""


def _distinct(base: str, n: int) -> str:
    return base if n < 2 else f"{base} [{n}]"


def _rank(base: str, found: str) -> int | None:
    """Which of `_distinct(base, n)` the list name `found` is, or None."""
    if found.casefold() == base.casefold():
        return 1
    match = re.fullmatch(re.escape(base.casefold()) + r" \[(\d+)\]", found.casefold())
    return int(match.group(1)) if match and int(match.group(1)) >= 2 else None


class BrevoSegments(BrevoAccount):
    """Owned lists as static segments, and list membership (a connector part)."""

    #: the ids of the segment lists the state records as segsync's (`disowned` learns them
    #: before a plan reads); None: not told, every `segment: ` list of the folder counts
    _segment_refs: frozenset[int] | None = None

    async def disowned(
        self, objects: Sequence[tuple[str, str, str]]
    ) -> dict[tuple[str, str], str]:
        """Learn the segment lists the state records (`_segsync_lists`); none disowned."""
        refs = set()
        for kind, _name, ref in objects:
            if kind == "static" and ref.isdigit():
                refs.add(int(ref))
        self._segment_refs = frozenset(refs)
        return {}

    async def planned_objects(
        self,
        fields: Mapping[str, FieldSpec],
        tags: Sequence[str],
        definitions: Sequence[Mapping[str, Any]],
    ) -> list[str]:
        """What `prepare(fields, tags)` would create now: attributes and their options, the
        consent and tags attributes, the owned folder and tag lists. Reads only."""
        if not fields and not tags:
            return []
        attributes = await self._load_attributes()
        out: list[str] = []

        def attribute(name: str, kind: str, options: Sequence[str]) -> None:
            existing = attributes.get(name)
            if existing is None:
                out.append(f"attribute {name} ({kind})")
                return
            have = {e.get("label") for e in existing.get("enumeration") or []} | set(
                existing.get("multiCategoryOptions") or ())
            if existing.get("category") == "category" or existing.get("type") == "multiple-choice":
                out.extend(f"option {o!r} of attribute {name}" for o in options if o not in have)

        for name, spec in fields.items():
            if spec.read_only:
                continue
            attribute(self.attribute_name(name), self._wanted_type(spec)[1], spec.options)
        attribute(self.config.consent_attribute.upper(), "category",
                  [s.value for s in CONSENT_VALUES])
        attribute(self.config.tags_attribute.upper(), "multiple-choice", sorted(set(tags)))
        if self.config.tags == "lists" and tags:
            folder = self.config.folder
            if await self._folder(create=False) is None:
                taken = {n.casefold() for n, _i in await self._folders()}
                folder = _free(self.config.folder, taken) if self._told() else folder
                held = "" if folder == self.config.folder else (
                    f" (the folder {self.config.folder!r} was not created by segsync: left alone)")
                out.append(f"folder {folder!r}{held}")
            else:
                folder = {i: n for n, i in await self._folders()}.get(
                    self._folder_id or 0, folder)
            lists = await self._lists()
            taken = {n.casefold() for n, _i in await self._all_lists()}
            for t in sorted(set(tags)):
                if TAG_LIST_PREFIX + t in lists:
                    continue
                named = _free(TAG_LIST_PREFIX + t, taken) if self._told() else TAG_LIST_PREFIX + t
                held = "" if named == TAG_LIST_PREFIX + t else (
                    f" (the list {TAG_LIST_PREFIX + t!r} there was not created by segsync: "
                    "left alone)")
                out.append(f"list {named!r} in folder {folder!r}{held}")
        return list(dict.fromkeys(out))

    async def _segsync_lists(self) -> dict[int, str]:
        """List id -> name of the lists of the folder that segsync writes: tag lists, its
        temporary import lists, and the segment lists it created (by the state, once told);
        a list a person made there, whatever its name, is not among them."""
        out = {}
        for name, list_id in (await self._lists()).items():
            if name.startswith((TAG_LIST_PREFIX, IMPORT_LIST_PREFIX)) or (
                name.startswith(SEGMENT_LIST_PREFIX)
                and (self._segment_refs is None or list_id in self._segment_refs)
            ):
                out[list_id] = name
        return out

    def may_hold(self, static: str, consent: ConsentStatus) -> bool:
        """Only people with opt-in evidence go in segsync's segment lists (a list makes its
        non-blocklisted members reachable by campaigns), unless the user allows the list."""
        return consent is ConsentStatus.SUBSCRIBED or any(
            self.allowed_unconsented(-1, name) for name in (static, SEGMENT_LIST_PREFIX + static)
        )

    async def ensure_static(self, name: str, ref: str | None) -> str:
        """The owned list `segment: <name>` in the owned folder (created when missing)."""
        if ref is not None:
            response = await self._call(
                "GET", f"/contacts/lists/{int(ref)}", "/contacts/lists/{listId}", ok=(404,)
            )
            if response.status_code == 200:
                return ref
        named, note = await self.creation_name("static", name)
        if note:
            log.warning("brevo: %s; segment %r gets the list %r", note, name, named)
        return str(await self._owned_list(named))

    async def creation_name(self, kind: str, name: str) -> tuple[str, str | None]:
        """The name a new segment list gets: `segment: <name>`, or the first free `... [n]`
        when a list of the folder segsync did not create holds it (the note names it)."""
        base = SEGMENT_LIST_PREFIX + name
        lists = {n.casefold(): i for n, i in reversed(await self._all_lists())}
        if base.casefold() not in lists:
            if not self._told() or await self._folder(create=False) is not None:
                return base, None
            folders = await self._folders()
            held = [i for n, i in folders if n == self.config.folder]
            if not held:
                return base, None
            own = _free(self.config.folder, {n.casefold() for n, _i in folders})
            return base, (f"the folder {self.config.folder!r} (id {held[0]}) was not created "
                          f"by segsync: the list goes in segsync's own folder {own!r}")
        note = (f"the list {base!r} (id {lists[base.casefold()]}) in folder "
                f"{self.config.folder!r} was not created by segsync")
        for n in range(2, MAX_DISTINCT + 1):
            if _distinct(base, n).casefold() not in lists:
                return _distinct(base, n), note
        raise ValueError(f"every list name from {base!r} to {_distinct(base, n)!r} is taken")

    async def find_owned(self, kind: str, name: str) -> str | None:
        """The id of the list segsync creates for `name` in the owned folder: the last of
        its distinct names that exists (segsync takes the first free one), or None."""
        base = SEGMENT_LIST_PREFIX + name
        ranked = [(r, i) for found, i in await self._all_lists()
                  if (r := _rank(base, found)) is not None]
        return str(max(ranked)[1]) if ranked else None

    async def change_static_members(
        self, ref: str, add: Sequence[str], remove: Sequence[str]
    ) -> list[ChangeResult]:
        """Add and remove members by email, 150 a call."""
        list_id = int(ref)
        adds = [e.strip().lower() for e in add]
        refused: list[ChangeResult] = []
        name = {i: n for n, i in await self._all_lists()}.get(list_id)
        if adds:  # never back into a list the person unsubscribed from (its unsubscribe link)
            await self._look_up(e for e in adds if e not in self._left_lists)
            left = [e for e in adds if list_id in self._left_lists.get(e, frozenset())]
            refused += [
                ChangeResult(
                    email=e, ok=True, partial=True, code="list_unsubscribed",
                    error="not added: the contact unsubscribed from this list in Brevo",
                )
                for e in left
            ]
            adds = [e for e in adds if e not in set(left)]
        if adds and not self.allowed_unconsented(list_id, name):
            await self._look_up(e for e in adds if e not in self._reachable)
            refused += [
                ChangeResult(
                    email=e,
                    ok=True,
                    partial=True,
                    code="unconsented",
                    error="not added: no opt-in evidence for this contact, and a Brevo list "
                    "makes its members reachable by campaigns (allow it with "
                    "brevo.consent.allow_unconsented_in_lists)",
                )
                for e in adds
                if self._reachable.get(e) is False
            ]
            # a contact Brevo does not have stays in: Brevo answers it as not found
            adds = [e for e in adds if self._reachable.get(e) is not False]
            if refused:
                log.warning(
                    "brevo: %d member(s) of %s without opt-in evidence not added (a list makes "
                    "its members reachable by campaigns)",
                    len(refused),
                    name or f"list {list_id}",
                )
        results = refused + await self._membership(list_id, adds, "add")
        results += await self._membership(list_id, [e.strip().lower() for e in remove], "remove")
        return results

    async def _membership(
        self, list_id: int, emails: Sequence[str], action: str
    ) -> list[ChangeResult]:
        """One result per email; "already there" / "already gone" count as done."""
        emails = list(dict.fromkeys(emails))
        chunks = [emails[i : i + MEMBERSHIP_BATCH] for i in range(0, len(emails), MEMBERSHIP_BATCH)]
        path = f"/contacts/lists/{list_id}/contacts/{action}"
        label = "/contacts/lists/{listId}/contacts/" + action

        async def send(chunk: list[str]) -> list[ChangeResult]:
            response = await self._call(
                "POST", path, label, json_body={"emails": chunk}, ok=(400,), idempotent=True
            )
            if response.status_code == 400:
                code, message = parse_error(response)
                if message != "Contact already in list and/or does not exist":
                    return [
                        ChangeResult(email=e, ok=False, error=message, code=code) for e in chunk
                    ]
                failed = set(chunk)
            else:
                failed = set(response.json().get("contacts", {}).get("failure") or ())
            out = []
            for email in chunk:
                if email not in failed or action == "remove":
                    out.append(ChangeResult(email=email, ok=True))
                    continue
                raw = await self._get_contact(email)
                if raw is not None and list_id in (raw.get("listIds") or ()):
                    out.append(ChangeResult(email=email, ok=True, platform_id=str(raw["id"])))
                else:
                    out.append(
                        ChangeResult(
                            email=email,
                            ok=False,
                            code="document_not_found",
                            error="Contact already in list and/or does not exist: "
                            "the contact does not exist in Brevo",
                            deleted=raw is None,
                        )
                    )
            return out

        batches = await asyncio.gather(*(send(chunk) for chunk in chunks))
        return [result for batch in batches for result in batch]

    async def delete_owned(self, kind: str, ref: str) -> None:
        """Delete an owned list (segment, tag or list) or the owned folder; gone is fine."""
        if kind in ("static", "segment", "list", "tag"):
            path, label = f"/contacts/lists/{int(ref)}", "/contacts/lists/{listId}"
        elif kind == "folder":
            path, label = f"/contacts/folders/{int(ref)}", "/contacts/folders/{folderId}"
        else:
            raise ValueError(f"brevo: cannot delete owned objects of kind {kind!r}")
        await self._call("DELETE", path, label, ok=(404,))
        self._owned_lists = None
        self._folder_lists = None
        if kind == "folder":
            self._folder_id = None
            self._folder_listing = None

    async def segment_members(self, ref: str) -> AsyncIterator[str]:
        """Emails in an owned list, or in a Brevo segment when `ref` is `segment:<id>`."""
        if ref.startswith("segment:"):
            path, label, page = "/contacts", "/contacts", 1000
            params: dict[str, Any] = {"segmentId": int(ref.split(":", 1)[1])}
        else:
            path = f"/contacts/lists/{int(ref)}/contacts"
            label, page, params = "/contacts/lists/{listId}/contacts", MEMBERS_PAGE, {}
        offset = 0
        while True:
            data = (
                await self._call(
                    "GET",
                    path,
                    label,
                    params={**params, "limit": page, "offset": offset, "sort": "asc"},
                )
            ).json()
            contacts = data.get("contacts") or []
            for raw in contacts:
                if raw.get("email"):
                    yield str(raw["email"])
            offset += len(contacts)
            if not contacts or offset >= int(data.get("count") or 0):
                return

    async def platform_segments(self) -> list[dict[str, Any]]:
        """Brevo's own segments (read-only through the API): id, name, category."""
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            data = (
                await self._call(
                    "GET",
                    "/contacts/segments",
                    "/contacts/segments",
                    params={"limit": LIST_PAGE, "offset": offset},
                )
            ).json()
            segments = data.get("segments") or []
            out += [
                {"id": s["id"], "name": s.get("segmentName"), "category": s.get("categoryName")}
                for s in segments
            ]
            offset += len(segments)
            if not segments or offset >= int(data.get("count") or 0):
                return out
