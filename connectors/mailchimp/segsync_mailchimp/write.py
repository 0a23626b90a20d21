"""Writing to a Mailchimp audience: contact changes, consent under its floor, and tags.

Contract (`Connector.write`), as Mailchimp makes it: batch subscribe `POST /lists/{id}` 500
members a call — new contacts with `update_existing: false` (so an existing member is never
touched by a create), changes with `update_existing: true` and `status` only when consent
changes; tags through static segment membership batches (500 adds + 500 removes a call);
renames and marketing permissions through `PATCH` of the member. A change the last-seen
snapshot already holds costs no call.

Consent: never sends `subscribed` (or `pending`) for a member Mailchimp holds as unsubscribed
or cleaned (its status asked afresh before an opt-in); with `reoptin_via_pending` a newer
opt-in goes back as `pending` (Mailchimp's confirmation email), otherwise the change fails
with the reason (code `ConsentFloor`, the rest of the change still written). An opt-in
Mailchimp refuses itself (Member In Compliance State) is a `ConsentFloor` refusal too, the
rest sent again without the status. New members get the canonical status, `transactional`
where it is unknown; a creation for a member this run's read found archived is never sent (it
would add her back): it is answered `deleted` (code `MemberArchived`).
`ChangeResult.sent_consent` is the status Mailchimp confirmed for the member in this write
(None where none was written).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from segsync.connector import ChangeResult, ContactChange
from segsync.http import ApiError
from segsync.mapping import PlatformMapping
from segsync.model import ConsentStatus, FieldSpec, FieldType
from segsync.rendezvous import Rendezvous, Ticket
from segsync_mailchimp.api import (
    MAX_BATCH_MEMBERS,
    MAX_SEGMENT_BULK,
    path_segment,
    subscriber_hash,
)
from segsync_mailchimp.audience import MailchimpAudience, chunks
from segsync_mailchimp.fields import (
    CONSENT_TO_STATUS,
    ENGAGEMENT_PATHS,
    STATUS_TO_CONSENT,
    FieldPlace,
    merge_tag_for,
    to_merge_value,
)

__all__ = [
    "CONSENT_FLOOR", "MEMBER_ARCHIVED", "RENAME_IGNORED", "MailchimpWrites", "TagPool",
    "TagTicket",
]

OPT_OUT_STATUSES = frozenset({"unsubscribed", "cleaned"})
CONSENT_FLOOR = "ConsentFloor"
"""The code of a change refused because it would subscribe a member who opted out."""
COMPLIANCE_REFUSAL = "in a compliance state"
"""Mailchimp's words when it refuses `subscribed` for a member (Member In Compliance State)."""
MEMBER_GONE = "ResourceNotFound"
"""The code of an update Mailchimp answered 404: the linked member is gone (deleted there)."""
MEMBER_ARCHIVED = "MemberArchived"
"""The code of a creation for a member a read found archived: never added back (an
archived contact is never re-created), answered `deleted`."""
RENAME_IGNORED = "RenameNotApplied"
"""The code of a rename the member's answer does not show (the address did not change)."""


def _same(have: Any, want: Any) -> bool:
    if have is None:
        have = ""
    if str(have) == str(want):
        return True
    try:
        return float(have) == float(want)
    except (TypeError, ValueError):
        return False


def _holds(record: Mapping[str, Any], fragment: Mapping[str, Any]) -> bool:
    """True when every value of `fragment` is already in `record` (nested by key)."""
    for key, want in fragment.items():
        have = record.get(key)
        if isinstance(want, Mapping):
            if not isinstance(have, Mapping) or not _holds(have, want):
                return False
        elif not _same(have, want):
            return False
    return True


def _json_or_empty(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _code(exc: ApiError) -> str | None:
    """The failure code of a refused member update: `MEMBER_GONE` for a 404."""
    return MEMBER_GONE if exc.status == 404 else exc.code


def _without_status(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "status"}


def _deep_update(target: dict[str, Any], fragment: Mapping[str, Any]) -> None:
    for key, value in fragment.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = json.loads(json.dumps(value)) if isinstance(value, Mapping) else value


Deltas = dict[str, list[tuple[int, str]]]
"""Tag name -> (key, email) of the members to add (or to remove)."""


TagDeltas = tuple[Deltas, Deltas]
"""One `write` call's tag memberships: (adds, removes)."""

TagTicket = Ticket[TagDeltas, dict[int, str]]
"""One `write` call's place in the tag pool."""


class TagPool(Rendezvous[TagDeltas, dict[int, str]]):
    """Joins the tag memberships of concurrent `write` calls into one set of calls per tag.

    Every call `join`s on entry; `submit` parks its (adds, removes) until every call that
    joined has either submitted or `leave`n, then one flush sends the union, each tag's adds
    and removes 500 + 500 a call, and hands each caller the failures of its own keys
    (key -> message). A lone call sends at once. The flush's calls are those one `write` of
    all the changes would make.
    """

    def __init__(self, send: Callable[[Deltas, Deltas], Awaitable[dict[int, str]]]) -> None:
        super().__init__(self._flush)
        self._send = send

    async def _flush(self, requests: Sequence[TagDeltas]) -> list[dict[int, str]]:
        serial = itertools.count()
        owner: dict[int, tuple[int, int]] = {}  # serial -> (request index, caller's key)
        adds: Deltas = {}
        removes: Deltas = {}
        for i, request in enumerate(requests):
            for mine, union in zip(request, (adds, removes), strict=True):
                for tag, members in mine.items():
                    for key, email in members:
                        n = next(serial)
                        owner[n] = (i, key)
                        union.setdefault(tag, []).append((n, email))
        failed = await self._send(adds, removes) if owner else {}
        answers: list[dict[int, str]] = [{} for _ in requests]
        for n, message in failed.items():
            i, key = owner[n]
            answers[i][key] = message
        return answers


class MailchimpWrites(MailchimpAudience):
    """`write`: contact changes in batches; see the module docstring."""

    def _merge_values(self, change: ContactChange) -> tuple[dict[str, Any], dict[str, bool]]:
        """(member body fragment: merge_fields and mapped properties, interests by id)."""
        body: dict[str, Any] = {}
        interests: dict[str, bool] = {}
        cat = self._catalog
        places = self._places()
        mapped: dict[str, Any] = {}
        for name, value in change.fields.items():
            place = places.get(name)
            if place is None and name not in ENGAGEMENT_PATHS and name not in self.schema.fields:
                # not in the schema: a merge field named after it, value as given
                place = FieldPlace(
                    name,
                    FieldSpec(type=FieldType.TEXT),
                    "merge_fields." + merge_tag_for(name, self.config.merge_fields),
                )
                body.setdefault("merge_fields", {})[place.merge_tag] = to_merge_value(None, value)
                continue
            if place is None or name in self.config.marketing_permissions:
                continue  # read-only engagement, or a marketing permission (PATCH)
            if place.group:
                wanted = set(value or ())
                for option, iid in cat.interests.get(name, {}).items():
                    interests[iid] = option in wanted
            elif place.entry is not None:
                mapped[name] = value
            else:
                body.setdefault("merge_fields", {})[place.merge_tag] = to_merge_value(
                    place.spec, value
                )
        if mapped and isinstance(self.mapping, PlatformMapping):
            _deep_update(body, self.mapping.to_platform(mapped))
        return body, interests

    def _permissions(self, change: ContactChange) -> list[dict[str, Any]]:
        return [
            {"marketing_permission_id": pid, "enabled": bool(change.fields[name])}
            for name, pid in self.config.marketing_permissions.items()
            if name in change.fields
        ]

    def _unchanged(
        self, change: ContactChange, merge: Mapping[str, Any], interests: Mapping[str, bool]
    ) -> bool:
        """True when the last-seen record already holds everything `change` asks for."""
        known = self._known.get(subscriber_hash(change.email))
        if known is None or change.new_email or self._permissions(change):
            return False
        if change.consent is not None and CONSENT_TO_STATUS[change.consent] != known.status:
            return False
        if not _holds(known.record, merge):
            return False
        if any(known.interests.get(k, False) != v for k, v in interests.items()):
            return False
        adds = {t.casefold() for t in change.tags_add}
        removes = {t.casefold() for t in change.tags_remove}
        return adds <= known.tags and not (removes & known.tags)

    def _known_pid(self, *emails: str | None) -> str | None:
        """The `contact_id` (platform id) of the first of `emails` a read or write saw."""
        for email in emails:
            known = self._known.get(subscriber_hash(email)) if email else None
            if known is not None and known.record.get("contact_id"):
                return str(known.record["contact_id"])
        return None

    def _archived(self, email: str) -> bool:
        """Whether a read (or write) of this run found the member archived."""
        known = self._known.get(subscriber_hash(email))
        return known is not None and known.status == "archived"

    async def _platform_status(self, email: str, *, fresh: bool) -> str | None:
        """The member's status on Mailchimp (None when not on the list).

        `fresh` asks Mailchimp even when a read saw the member: before sending an opt-in,
        the person may have unsubscribed since.
        """
        h = subscriber_hash(email)
        if h in self._known and not fresh:
            return self._known[h].status
        response = await self.client.request(
            "GET",
            f"{self._list_path}/members/{path_segment(h)}",
            endpoint="GET /lists/{id}/members/{hash}",
            params={"fields": "id,status"},
            ok=(404,),
        )
        if response.status_code == 404:
            return None
        return str(response.json()["status"])

    def _status_to_send(
        self, change: ContactChange, current: str | None
    ) -> tuple[str | None, str | None]:
        """(status to send or None, refusal message or None) under the consent floor."""
        if change.consent is None:
            return None, None
        wanted = CONSENT_TO_STATUS[change.consent]
        if current is None or current not in OPT_OUT_STATUSES:
            if wanted == "transactional" and current not in (None, "transactional", "archived"):
                if change.foreign_opt_in and current in ("subscribed", "pending"):
                    # another person's opt-in: Mailchimp cannot demote it, so opt it out
                    return "unsubscribed", None
                return None, None  # Mailchimp cannot demote a member to transactional
            return wanted, None
        if wanted in ("subscribed", "pending"):
            if self.config.reoptin_via_pending:
                return "pending", None
            return None, (
                f"{change.email} is {current} on Mailchimp; segsync never subscribes it again "
                "(set reoptin_via_pending to send a confirmation email)"
            )
        if wanted == current or wanted == "transactional":
            return None, None
        return wanted, None

    async def write(self, changes: Sequence[ContactChange]) -> list[ChangeResult]:
        """Apply changes: batch subscribe 500 a call, then tags 500 + 500 a call.

        Concurrent calls (the engine's write batches) share their tag memberships: each
        joins the tag pool on entry and leaves it with its tag deltas (or on failure), and
        the last one in sends every tag's deltas together, 500 + 500 a call.
        """
        pool = self._tag_pool()
        ticket = pool.join()
        try:
            return await self._write(changes, ticket)
        finally:
            pool.leave(ticket)

    async def _write(
        self, changes: Sequence[ContactChange], ticket: TagTicket
    ) -> list[ChangeResult]:
        results: list[ChangeResult | None] = [None] * len(changes)
        pending: list[int] = []
        archives = [i for i, c in enumerate(changes) if c.archive]
        for index, result in zip(
            archives, await asyncio.gather(*(self._archive(changes[i]) for i in archives)),
            strict=True,
        ):
            results[index] = result
        for index, change in enumerate(changes):
            if change.archive:
                continue
            if change.create and self._archived(change.email):
                results[index] = ChangeResult(
                    email=change.email, ok=False, deleted=True, code=MEMBER_ARCHIVED,
                    platform_id=self._known_pid(change.email) or change.platform_id,
                    error=f"{change.email} is archived on Mailchimp: not added back",
                )
                continue
            if change.is_empty:
                results[index] = ChangeResult(
                    email=change.email, ok=True, platform_id=change.platform_id
                )
            else:
                pending.append(index)
        if not pending:
            return [r for r in results if r is not None]
        await self._load_catalog()
        payload: dict[int, tuple[dict[str, Any], dict[str, bool]]] = {}
        to_send: list[int] = []
        for index in pending:
            change = changes[index]
            merge, interests = self._merge_values(change)
            payload[index] = (merge, interests)
            if not self._unchanged(change, merge, interests):
                to_send.append(index)
            else:
                results[index] = ChangeResult(
                    email=change.email,
                    ok=True,
                    platform_id=self._known_pid(change.email) or change.platform_id,
                )
        pending = to_send
        failures: dict[int, tuple[str, str | None]] = {}
        created: set[int] = set()
        ids: dict[int, str] = {}
        sent: dict[int, str] = {}  # index -> status Mailchimp confirmed it was sent

        # 1. creates: update_existing false, so an existing member is never touched here
        # a "create" for a member already read is an update (never a blind status write)
        creates = [
            i
            for i in pending
            if changes[i].create and subscriber_hash(changes[i].email) not in self._known
        ]
        exists = await self._batch_subscribe(
            [
                (i, self._member_item(changes[i], payload[i], self._create_status(changes[i])))
                for i in creates
            ],
            update_existing=False,
            failures=failures,
            created=created,
            ids=ids,
            sent=sent,
        )
        # 2. updates (and creates that turned out to exist): status only under the floor
        creating = set(creates)
        updates = [i for i in pending if i not in creating] + exists
        wants_status = [i for i in updates if changes[i].consent is not None]
        statuses = await asyncio.gather(
            *(
                self._platform_status(
                    changes[i].email,
                    fresh=changes[i].consent in (ConsentStatus.SUBSCRIBED, ConsentStatus.PENDING),
                )
                for i in wants_status
            )
        )
        current = dict(zip(wants_status, statuses, strict=True))
        items: list[tuple[int, dict[str, Any]]] = []
        for index in updates:
            change = changes[index]
            status, refusal = self._status_to_send(change, current.get(index))
            if refusal:
                failures[index] = (refusal, CONSENT_FLOOR)
            if current.get(index) is None and index in current and status is None:
                status = self._create_status(change)
            item = self._member_item(change, payload[index], status)
            if len(item) > 1:
                items.append((index, item))
        # a batch item always carries a status (what Mailchimp does without one is not
        # documented); a change that leaves consent alone is a PATCH of the member instead
        await self._batch_subscribe(
            [(i, item) for i, item in items if "status" in item],
            update_existing=True,
            failures=failures,
            created=created,
            ids=ids,
            sent=sent,
        )
        await self._patch_items([(i, item) for i, item in items if "status" not in item], failures)
        # Mailchimp refused an opt-in (a member still blocked, e.g. pending after a re-opt-in
        # not yet confirmed): the consent part is refused, the rest is sent again without it
        refused = [
            (i, item)
            for i, item in items
            if "status" in item and COMPLIANCE_REFUSAL in failures.get(i, ("", None))[0]
        ]
        for index, _ in refused:
            failures[index] = (failures[index][0], CONSENT_FLOOR)
        await self._patch_items(
            [(i, rest) for i, item in refused if len(rest := _without_status(item)) > 1],
            failures,
            keep_failure=True,
        )
        # 3. renames and marketing permissions: PATCH each member (no batch takes them)
        await asyncio.gather(
            *(
                self._patch_member(i, changes[i], failures)
                for i in pending
                if (changes[i].new_email or self._permissions(changes[i])) and i not in failures
            )
        )
        # 4. tags through static segment membership
        tag_failures = await self._write_tags(
            [
                (i, changes[i])
                for i in pending
                if i not in failures or failures[i][1] == CONSENT_FLOOR
            ],
            ticket,
        )
        for index in pending:
            change = changes[index]
            email = change.new_email or change.email
            # the member's contact_id, which a rename keeps (its hash follows the address)
            pid = (ids.get(index) or self._known_pid(email, change.email)
                   or change.platform_id or subscriber_hash(email))
            sent_consent = STATUS_TO_CONSENT[sent[index]] if index in sent else None
            if index in failures:
                message, code = failures[index]
                results[index] = ChangeResult(
                    email=change.email,
                    ok=False,
                    platform_id=pid,
                    error=message,
                    code=code,
                    partial=code == CONSENT_FLOOR or sent_consent is not None,
                    sent_consent=sent_consent,
                    deleted=code == MEMBER_GONE and not change.create,
                )
            elif index in tag_failures:
                results[index] = ChangeResult(
                    email=change.email,
                    ok=False,
                    platform_id=pid,
                    created=index in created,
                    error=tag_failures[index],
                    code="TagMembership",
                    partial=True,
                    sent_consent=sent_consent,
                )
            else:
                results[index] = ChangeResult(
                    email=change.email,
                    ok=True,
                    platform_id=pid,
                    created=index in created,
                    sent_consent=sent_consent,
                )
                self._record_write(change, payload[index])
        return [r for r in results if r is not None]

    @staticmethod
    def _create_status(change: ContactChange) -> str:
        """A new member's status: the canonical one, `transactional` when unknown."""
        return CONSENT_TO_STATUS[change.consent] if change.consent else "transactional"

    @staticmethod
    def _member_item(
        change: ContactChange, payload: tuple[dict[str, Any], dict[str, bool]], status: str | None
    ) -> dict[str, Any]:
        fragment, interests = payload
        item: dict[str, Any] = {"email_address": change.email}
        if status is not None:
            item["status"] = status
        item.update(fragment)
        if interests:
            item["interests"] = interests
        return item

    async def _batch_subscribe(
        self,
        items: Sequence[tuple[int, dict[str, Any]]],
        *,
        update_existing: bool,
        failures: dict[int, tuple[str, str | None]],
        created: set[int],
        ids: dict[int, str],
        sent: dict[int, str],
    ) -> list[int]:
        """Send items 500 a call (concurrently); return the indexes Mailchimp says exist.

        `sent` gets the status of each item Mailchimp confirmed (new or updated member).
        """
        status_of = {index: item["status"] for index, item in items if "status" in item}
        exists: list[int] = []

        async def send(chunk: Sequence[tuple[int, dict[str, Any]]]) -> None:
            body = {
                "members": [item for _, item in chunk],
                "update_existing": update_existing,
            }
            by_email = {item["email_address"].lower(): index for index, item in chunk}
            try:
                response = await self.client.request(
                    "POST",
                    self._list_path,
                    endpoint="POST /lists/{id}",
                    json=body,
                    idempotent=True,  # batch subscribe is an upsert keyed by email
                )
            except ApiError as exc:
                for index, _ in chunk:
                    failures[index] = (exc.message, exc.code)
                return
            data = response.json()
            for member in data.get("new_members") or []:
                idx = by_email.get(str(member["email_address"]).lower())
                if idx is not None:
                    created.add(idx)
                    if member.get("contact_id"):
                        ids[idx] = str(member["contact_id"])
                    if idx in status_of:
                        sent[idx] = status_of[idx]
                    self._remember(member, [t["name"] for t in member.get("tags") or []])
            for member in data.get("updated_members") or []:
                idx = by_email.get(str(member["email_address"]).lower())
                if idx is not None:
                    if member.get("contact_id"):
                        ids[idx] = str(member["contact_id"])
                    if idx in status_of:
                        sent[idx] = status_of[idx]
                    self._remember(member, [t["name"] for t in member.get("tags") or []])
            for error in data.get("errors") or []:
                idx = by_email.get(str(error.get("email_address", "")).lower())
                if idx is None:
                    continue
                if error.get("error_code") == "ERROR_CONTACT_EXISTS" and not update_existing:
                    exists.append(idx)
                    continue
                message = str(error.get("error") or "")
                if error.get("field"):
                    message += f" ({error['field']}: {error.get('field_message', '')})"
                failures[idx] = (message, str(error.get("error_code") or "ERROR_GENERIC"))

        await asyncio.gather(*(send(chunk) for chunk in chunks(items, MAX_BATCH_MEMBERS)))
        return sorted(exists)

    async def _patch_items(
        self,
        items: Sequence[tuple[int, dict[str, Any]]],
        failures: dict[int, tuple[str, str | None]],
        *,
        keep_failure: bool = False,
    ) -> None:
        """Send status-less member changes as `PATCH /lists/{id}/members/{hash}`, concurrently.

        One call a member (the batch subscribe is not used without a status). A refusal is
        recorded in `failures`; with `keep_failure` an earlier failure of the index stays.
        """

        async def patch(index: int, item: Mapping[str, Any]) -> None:
            body = {k: v for k, v in item.items() if k != "email_address"}
            member_id = subscriber_hash(str(item["email_address"]))
            try:
                response = await self.client.request(
                    "PATCH",
                    f"{self._list_path}/members/{path_segment(member_id)}",
                    endpoint="PATCH /lists/{id}/members/{hash}",
                    json=body,
                    idempotent=True,  # absolute values: sending it twice changes nothing more
                )
            except ApiError as exc:
                if not (keep_failure and index in failures):
                    failures[index] = (exc.message, _code(exc))
                return
            member = response.json()
            self._remember(member, [t["name"] for t in member.get("tags") or []])

        await asyncio.gather(*(patch(index, item) for index, item in items))

    async def _archive(self, change: ContactChange) -> ChangeResult:
        """Archive a member (`DELETE /lists/{id}/members/{hash}`: Mailchimp's archive, not
        permanent; the person can be added back). 404 or an archived member's 405: gone."""
        member = subscriber_hash(change.email)  # the path takes the address's hash
        pid = self._known_pid(change.email) or change.platform_id
        try:
            await self.client.request(
                "DELETE",
                f"{self._list_path}/members/{path_segment(member)}",
                endpoint="DELETE /lists/{id}/members/{hash}",
                idempotent=True,
                ok=(404, 405),
            )
        except ApiError as exc:
            return ChangeResult(email=change.email, ok=False, platform_id=change.platform_id,
                                error=exc.message, code=exc.code)
        self._known.pop(member, None)
        return ChangeResult(email=change.email, ok=True, platform_id=pid, deleted=True)

    async def _patch_member(
        self, index: int, change: ContactChange, failures: dict[int, tuple[str, str | None]]
    ) -> None:
        body: dict[str, Any] = {}
        if change.new_email:
            body["email_address"] = change.new_email
        permissions = self._permissions(change)
        if permissions:
            body["marketing_permissions"] = permissions
        try:
            response = await self.client.request(
                "PATCH",
                f"{self._list_path}/members/{path_segment(subscriber_hash(change.email))}",
                endpoint="PATCH /lists/{id}/members/{hash}",
                json=body,
            )
        except ApiError as exc:
            failures[index] = (exc.message, _code(exc))
            return
        if change.new_email:
            # a rename is done when the member answers with the new address, not before
            answered = str(_json_or_empty(response).get("email_address") or "")
            if subscriber_hash(answered) != subscriber_hash(change.new_email):
                failures[index] = (
                    "Mailchimp did not rename the member: it answered with "
                    f"{answered or 'no address'!r}, not {change.new_email!r}",
                    RENAME_IGNORED,
                )
                return
            known = self._known.pop(subscriber_hash(change.email), None)
            if known is not None:
                self._known[subscriber_hash(change.new_email)] = known

    def _tag_pool(self) -> TagPool:
        """The pool joining the tag memberships of concurrent `write` calls (made once)."""
        pool: TagPool | None = getattr(self, "_tags_pool", None)
        if pool is None:
            pool = self._tags_pool = TagPool(self._send_tags)
        return pool

    async def _send_tags(
        self,
        adds: Mapping[str, Sequence[tuple[int, str]]],
        removes: Mapping[str, Sequence[tuple[int, str]]],
    ) -> dict[int, str]:
        """Every tag's adds and removes, 500 + 500 a call; failing keys -> the message."""
        tag_ids = await self._ensure_tags(adds)
        removes = {t: v for t, v in removes.items() if t.casefold() in tag_ids}
        failed: dict[int, str] = {}
        calls = []
        for tag in sorted(set(adds) | set(removes)):
            add_chunks = chunks(adds.get(tag, []), MAX_SEGMENT_BULK)
            remove_chunks = chunks(removes.get(tag, []), MAX_SEGMENT_BULK)
            for n in range(max(len(add_chunks), len(remove_chunks))):
                calls.append(
                    self._bulk(
                        tag_ids[tag.casefold()],
                        add_chunks[n] if n < len(add_chunks) else [],
                        remove_chunks[n] if n < len(remove_chunks) else [],
                        failed,
                    )
                )
        await asyncio.gather(*calls)
        return failed

    async def _write_tags(
        self, work: Sequence[tuple[int, ContactChange]], ticket: TagTicket | None = None
    ) -> dict[int, str]:
        """Tag deltas through segment bulk membership; failing indexes -> Mailchimp's message.

        With a `ticket` of the tag pool, the deltas are sent together with those of the
        concurrent `write` calls (one set of calls per tag for all of them).
        """
        adds: dict[str, list[tuple[int, str]]] = {}
        removes: dict[str, list[tuple[int, str]]] = {}
        for index, change in work:
            email = change.new_email or change.email
            known = self._known.get(subscriber_hash(email))
            for tag in sorted(change.tags_add):
                if known is None or tag.casefold() not in known.tags:
                    adds.setdefault(tag, []).append((index, email))
            for tag in sorted(change.tags_remove):
                if known is None or tag.casefold() in known.tags:
                    removes.setdefault(tag, []).append((index, email))
        if ticket is not None:
            failed = await self._tag_pool().submit(ticket, (adds, removes))
        elif not adds and not removes:
            return {}
        else:
            failed = await self._send_tags(adds, removes)
        for index, change in work:
            if index in failed:
                continue
            known = self._known.get(subscriber_hash(change.new_email or change.email))
            if known is not None:
                added = {t.casefold() for t in change.tags_add}
                removed = {t.casefold() for t in change.tags_remove}
                known.tags = frozenset((known.tags | added) - removed)
        return failed

    def _record_write(
        self, change: ContactChange, payload: tuple[dict[str, Any], dict[str, bool]]
    ) -> None:
        """Keep the snapshot of a confirmed write (batch answers already refreshed it)."""
        known = self._known.get(subscriber_hash(change.new_email or change.email))
        if known is None:
            return
        fragment, interests = payload
        _deep_update(known.record, fragment)
        known.interests.update(interests)
