"""Writing contact changes to Brevo: translation, consent policy, single-contact calls.

Contract (`Connector.write`), as Brevo makes it: each change is translated into Brevo terms
(`WriteOp`: attributes, blocklist, list adds/removes, rename, double opt-in), sending only
what differs from the last read; a value Brevo would drop silently is a failed result
instead. Consent: `emailBlacklisted` is the opt-out and is never cleared (segsync never sends
`emailBlacklisted: false`); an opt-out is sent as the blocklist even where Brevo already reads
one from a consent list (`listUnsubscribed` leaves the contact reachable); a blocklisted
contact asked to be subscribed is asked again by double opt-in when configured, otherwise the
ask is dropped (`consent_floor`). Only a contact
whose status after the change is `subscribed` is put in segsync's lists (`WriteOp.listable`):
the others hold their tags in the tags attribute and leave every segsync list, except the
lists the user allows (`consent.allow_unconsented_in_lists`). Contacts the last read did not
show are looked up first (one `GET` each, 100 at a time), so that is always known. Change
sets from `import_threshold()` on (configured, or chosen by `ImportCostModel` from measured
costs) go through `/contacts/import` (`_write_by_import`, see `imports`); the rest through
single calls, 100 at a time.

Deletes: an update of a linked contact answered 404 ("Contact does not exist": a Brevo user
deleted it; Brevo has no archive and no listing of deleted contacts) is a `deleted` result,
so the engine records it and never writes it again. An `archive` change deletes the contact
(`DELETE /contacts/{id}`: Brevo's only removal, not restorable; 404 is already absent).
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import datetime as dt
import math
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from segsync.connector import ChangeResult, ContactChange
from segsync.http import ApiError
from segsync.model import ConsentStatus, FieldSpec
from segsync_brevo.account import BASE_LIST_NAME, TAG_LIST_PREFIX, KnownContact
from segsync_brevo.fields import CONSENT_VALUES, transformed
from segsync_brevo.segments import BrevoSegments

__all__ = ["BrevoWrites", "ImportCostModel", "WriteOp"]


@dataclasses.dataclass
class ImportCostModel:
    """Estimates (updated from what is measured) that choose single calls or an import.

    A single-contact call costs one request in the contacts bucket; an import costs one
    request plus Brevo's processing time (a fixed part and a part per contact), plus polls of
    the hourly bucket, one read-back request per 1000 contacts and, for contacts without
    opt-in, a temporary list made and deleted. Imports are chosen from the change-set size
    where single calls would take `calls_factor` times the requests of an import (every
    request counts against the account's shared budgets), if the import is at most
    `patience_seconds` slower; and from the size where an import is quicker.
    """

    contacts_per_second: float
    concurrency: int
    call_seconds: float = 0.2
    import_base_seconds: float = 30.0
    import_seconds_per_contact: float = 0.005
    #: how many times an import's requests single calls must take before it saves enough
    calls_factor: int = 4
    #: how much longer than single calls an import may take to save requests
    patience_seconds: float = 60.0
    #: an import was measured (the estimates are the account's, not assumed)
    learned: bool = False

    @staticmethod
    def import_calls(n: int) -> int:
        """Requests an import of `n` contacts takes: the import, one status read, the
        read-back (1000 a page) and a temporary list made and deleted."""
        return 4 + math.ceil(n / 1000)

    def single_seconds(self, n: int) -> float:
        """Seconds to write `n` contacts one call each."""
        per_call = max(1.0 / self.contacts_per_second, self.call_seconds / self.concurrency)
        return n * per_call

    def import_seconds(self, n: int) -> float:
        """Seconds to import `n` contacts, read-back included."""
        readback = math.ceil(n / 1000) / self.contacts_per_second
        return self.import_base_seconds + self.import_seconds_per_contact * n + readback

    def threshold(self) -> int:
        """The smallest change set an import writes quicker than single calls, or in
        `calls_factor` times fewer requests and at most `patience_seconds` slower."""
        quicker = self.quicker_threshold()
        n = self.calls_factor * self.import_calls(1)
        while self.calls_factor * self.import_calls(n) > n:
            n += 1
        if n < quicker and self.import_seconds(n) <= self.single_seconds(n) + self.patience_seconds:
            return n
        return quicker

    def quicker_threshold(self) -> int:
        """The smallest change set for which an import is quicker than single calls."""
        n = 1
        while n < 10**6 and self.import_seconds(n) >= self.single_seconds(n):
            n = max(n + 1, int(n * 1.1))
        lo = max(1, int(n / 1.1))
        while lo < n and self.import_seconds(lo) >= self.single_seconds(lo):
            lo += 1
        return lo

    def observe_import(self, n: int, seconds: float) -> None:
        """Learn from the measured duration of an import of `n` contacts: the first one
        scales the assumed figures (both parts) to it; later ones are blended in."""
        if not self.learned:
            assumed = self.import_base_seconds + self.import_seconds_per_contact * n
            if assumed > 0 and seconds > 0:
                ratio = seconds / assumed
                self.import_base_seconds *= ratio
                self.import_seconds_per_contact *= ratio
            self.learned = True
            return
        fixed = max(0.0, seconds - self.import_seconds_per_contact * n)
        self.import_base_seconds = 0.5 * self.import_base_seconds + 0.5 * fixed

    def observe_call(self, seconds: float) -> None:
        """Blend in the measured duration of one single-contact call."""
        self.call_seconds = 0.8 * self.call_seconds + 0.2 * seconds


@dataclasses.dataclass
class WriteOp:
    """One change, translated into Brevo terms."""

    index: int
    change: ContactChange
    email: str
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    blocklist: bool = False
    add_lists: set[int] = dataclasses.field(default_factory=set)
    remove_lists: set[int] = dataclasses.field(default_factory=set)
    new_email: str | None = None
    double_opt_in: bool = False
    has_boolean: bool = False
    #: subscribed/pending asked while the blocklist is unknown: checked before it counts
    verify_consent: bool = False
    #: the contact's status after this change is `subscribed`: it may be in segsync's lists
    listable: bool = False
    code: str | None = None
    note: str | None = None

    @property
    def clears(self) -> bool:
        return any(v in ("", []) for v in self.attributes.values())

    @property
    def importable(self) -> bool:
        """Imports set attributes and add to lists; renames, booleans and DOI need single calls."""
        return not (self.new_email or self.double_opt_in or self.has_boolean)


class _Refused(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class BrevoWrites(BrevoSegments):
    """`write`: single calls below the import threshold (a connector part)."""

    cost: ImportCostModel

    @abc.abstractmethod
    async def _write_by_import(self, ops: Sequence[WriteOp]) -> dict[int, ChangeResult]:
        """Write `ops` through `/contacts/import`; one result per op index (see `imports`)."""

    async def write(self, changes: Sequence[ContactChange]) -> list[ChangeResult]:
        """Apply changes: single calls below the import threshold, imports above it."""
        results: list[ChangeResult | None] = [None] * len(changes)
        ops: list[WriteOp] = []
        archives = [i for i, c in enumerate(changes) if c.archive]
        for index, result in zip(
            archives, await asyncio.gather(*(self._archive(changes[i]) for i in archives)),
            strict=True,
        ):
            results[index] = result
        await self._look_up_unknown([c for c in changes if not c.archive])
        for index, change in enumerate(changes):
            if change.archive:
                continue
            if change.is_empty:
                results[index] = ChangeResult(
                    email=change.email, ok=True, platform_id=change.platform_id
                )
                continue
            try:
                op = await self._translate(index, change)
            except _Refused as refused:
                results[index] = ChangeResult(
                    email=change.email,
                    ok=False,
                    platform_id=change.platform_id,
                    error=refused.message,
                    code=refused.code,
                )
                continue
            if op is None:
                results[index] = ChangeResult(
                    email=change.email, ok=True, platform_id=change.platform_id
                )
                continue
            ops.append(op)
        importable = [op for op in ops if op.importable]
        if importable and len(importable) >= self.import_threshold():
            for index, result in (await self._write_by_import(importable)).items():
                results[index] = result
            ops = [op for op in ops if not op.importable]
        for start in range(0, len(ops), 100):
            chunk = ops[start : start + 100]
            for op, result in zip(
                chunk, await asyncio.gather(*(self._write_single(op) for op in chunk)), strict=True
            ):
                results[op.index] = result
        return [r for r in results if r is not None]

    async def _look_up_unknown(self, changes: Sequence[ContactChange]) -> None:
        """Read the contacts to update that the last read did not show (100 at a time)."""
        await self._look_up(
            c.email.strip().lower() for c in changes if not (c.create or c.is_empty)
        )

    def import_threshold(self) -> int:
        """Change-set size from which imports are used (configured, or from the cost model)."""
        return self.config.import_threshold or self.cost.threshold()

    async def _translate(self, index: int, change: ContactChange) -> WriteOp | None:
        """The Brevo form of a change; None when nothing differs from what was last read."""
        email = change.email.strip().lower()
        known = self._known.get(email)
        op = WriteOp(index=index, change=change, email=email)
        attributes = await self._load_attributes()
        fields = dict(change.fields)
        if known is not None and not change.create and known.fields_known:
            fields = {k: v for k, v in fields.items() if known.fields.get(k) != v}
        problems = []
        for name, value in fields.items():
            spec = self.schema.get(name)
            if spec is None:
                problems.append(f"{name}: not a field of the schema")
                continue
            entry = self._mapped(name)
            if spec.read_only or (entry is not None and not entry.writable):
                continue
            attribute = self.attribute_name(name)
            try:
                op.attributes[attribute] = await self._encode(
                    spec, attribute, transformed(entry, value), attributes
                )
            except ValueError as exc:
                problems.append(f"{name} ({attribute}): {exc}")
                continue
            meta = attributes.get(attribute) or {}
            if meta.get("type") == "boolean":
                op.has_boolean = True
        if problems:
            raise _Refused(
                "not sent: values Brevo would drop silently or cannot hold: " + "; ".join(problems),
                "invalid_value",
            )
        await self._translate_consent(op, known)
        op.listable = self._listable_after(op, known)
        await self._translate_tags(op, known)
        await self._leave_owned_lists(op, known)
        if change.new_email:
            op.new_email = change.new_email.strip().lower()
            if op.new_email == email:
                op.new_email = None
        if op.code == "consent_floor" and not self._has_more_than_consent(op):
            raise _Refused(op.note or "", "consent_floor")
        if not (
            op.attributes
            or op.blocklist
            or op.add_lists
            or op.remove_lists
            or op.new_email
            or op.double_opt_in
            or change.create
        ):
            return None
        return op

    async def _encode(
        self, spec: FieldSpec, attribute: str, value: Any, attributes: Mapping[str, Any]
    ) -> Any:
        """The value Brevo stores for `attribute`, or ValueError saying why it would be dropped."""
        meta = attributes.get(attribute)
        if meta is None:
            category, kind = self._wanted_type(spec)
            await self._ensure_attribute(
                attribute, category, kind, spec.options, self._attributes or {}
            )
            meta = (self._attributes or {})[attribute]
        if value is None:
            return [] if meta.get("type") == "multiple-choice" else ""
        canonical = spec.coerce(value)
        if meta.get("category") == "category":
            text = str(canonical)
            for entry in meta.get("enumeration") or []:
                if entry["label"] == text:
                    return int(entry["value"])
            raise ValueError(f"{text!r} is not a value of the category attribute")
        kind = meta.get("type") or "text"
        if kind == "float":
            if isinstance(canonical, bool) or not isinstance(canonical, int | float):
                raise ValueError(f"{canonical!r} is not a number")
            if not math.isfinite(canonical):
                raise ValueError(f"{canonical!r} is not a finite number")
            return canonical
        if kind == "boolean":
            if not isinstance(canonical, bool):
                raise ValueError(f"{canonical!r} is not a boolean")
            return canonical
        if kind == "date":
            if isinstance(canonical, dt.datetime):
                raise ValueError("a date attribute cannot hold a time of day")
            if not isinstance(canonical, dt.date):
                raise ValueError(f"{canonical!r} is not a date")
            return canonical.isoformat()
        if kind == "multiple-choice":
            options = (
                set(canonical) if isinstance(canonical, frozenset | set | list | tuple) else None
            )
            if options is None:
                raise ValueError(f"{canonical!r} is not a set of options")
            missing = options - set(meta.get("multiCategoryOptions") or ())
            if missing:
                raise ValueError(f"{sorted(missing)} are not options of the attribute")
            return sorted(options)
        if isinstance(canonical, dt.datetime):
            return canonical.astimezone(dt.UTC).isoformat()
        if isinstance(canonical, dt.date):
            return canonical.isoformat()
        if isinstance(canonical, bool | int | float | str):
            return str(canonical)
        raise ValueError(f"{canonical!r} cannot be written as text")

    def _listable_after(self, op: WriteOp, known: KnownContact | None) -> bool:
        """True when the contact is `subscribed` after `op` (it may be in segsync's lists)."""
        change = op.change
        if op.blocklist or op.double_opt_in or op.code == "consent_floor":
            return False
        if known is None and not change.create:
            return False  # not found: the answer that cannot email someone
        if known is not None and known.blocklisted:
            return False
        status = change.consent
        if status is None:
            status = known.consent if known is not None else ConsentStatus.NON_SUBSCRIBED
        return status is ConsentStatus.SUBSCRIBED

    async def _leave_owned_lists(self, op: WriteOp, known: KnownContact | None) -> None:
        """A contact that is not `subscribed` leaves every segsync list it may not be in."""
        if op.listable or known is None:
            return
        owned = {i: n for n, i in (await self._lists()).items()}
        op.remove_lists |= {
            i
            for i in known.lists
            if i in owned and not self.allowed_unconsented(i, owned[i]) and i not in op.add_lists
        }

    async def _translate_tags(self, op: WriteOp, known: KnownContact | None) -> None:
        change = op.change
        adds, removes = set(change.tags_add), set(change.tags_remove) - set(change.tags_add)
        if self.config.tags == "lists":
            await self._translate_tag_lists(op, known, adds, removes)
            return
        if known is not None and not change.create:
            adds -= known.tags
            removes &= known.tags
        if not (adds or removes):
            return
        if self.config.tags == "attribute":
            name = self.config.tags_attribute.upper()
            current = known.tags if known is not None else None
            if current is None and not change.create:
                current = await self._fetch_tags(op.email)
            await self._ensure_options(name, adds)
            op.attributes[name] = sorted(((current or frozenset()) | adds) - removes)
            return
        lists = await self._tag_lists(adds, create=True)
        op.add_lists |= set(lists.values())
        if removes:
            op.remove_lists |= set((await self._tag_lists(removes, create=False)).values())

    async def _translate_tag_lists(
        self, op: WriteOp, known: KnownContact | None, adds: set[str], removes: set[str]
    ) -> None:
        """Tags as lists for a `subscribed` contact; otherwise in the tags attribute (except
        the tag lists the user allows). Each tag is held in one place: lists or attribute."""
        tag_ids = await self._tag_ids()
        current = known.tags if known is not None and not op.change.create else frozenset()
        held = known.attribute_tags if known is not None and not op.change.create else frozenset()
        in_lists = {
            tag_ids[i]: i for i in (known.lists if known is not None else ()) if i in tag_ids
        }
        final = (set(current) | adds) - removes
        # never back into a tag list the person unsubscribed from (its unsubscribe link)
        left = {tag_ids[i] for i in self._unsubscribed_lists(op.email, known) if i in tag_ids}
        if op.listable:
            as_lists = final
        else:
            as_lists = {t for t in final if self.allowed_unconsented(-1, TAG_LIST_PREFIX + t)}
            as_lists |= {
                t
                for t in final
                if t in in_lists and self.allowed_unconsented(in_lists[t], TAG_LIST_PREFIX + t)
            }
        as_lists -= left
        as_attribute = final - as_lists
        wanted = await self._tag_lists(as_lists - set(in_lists), create=True)
        op.add_lists |= set(wanted.values())
        op.remove_lists |= {i for t, i in in_lists.items() if t not in as_lists}
        if as_attribute != held:
            await self._ensure_tags_attribute(as_attribute)
            op.attributes[self.config.tags_attribute.upper()] = sorted(as_attribute)

    def _unsubscribed_lists(self, email: str, known: KnownContact | None) -> frozenset[int]:
        """The lists a contact unsubscribed from, as last read (empty when unknown)."""
        if known is not None:
            return known.unsubscribed_lists
        return self._left_lists.get(email, frozenset())

    async def _fetch_tags(self, email: str) -> frozenset[str] | None:
        raw = await self._get_contact(email)
        if raw is None:
            return None
        return frozenset(
            (raw.get("attributes") or {}).get(self.config.tags_attribute.upper()) or ()
        )

    async def _translate_consent(self, op: WriteOp, known: KnownContact | None) -> None:
        change = op.change
        status = change.consent
        if status is None and change.create:
            status = ConsentStatus.NON_SUBSCRIBED
        if status is None:
            return
        opt_out = status in (ConsentStatus.UNSUBSCRIBED, ConsentStatus.BOUNCED)
        if known is not None and not change.create and known.consent == status and (
            known.blocklisted or not opt_out
        ):
            return  # an opt-out read from a consent list alone still needs the blocklist
        attribute = self.config.consent_attribute.upper()
        if opt_out:
            op.blocklist = True
            op.attributes[attribute] = CONSENT_VALUES[status]
            return
        if status is ConsentStatus.NON_SUBSCRIBED:
            op.attributes[attribute] = CONSENT_VALUES[status]
            if change.foreign_opt_in:  # another person's opt-in: it leaves the consent lists
                declared = set(self.config.consent.lists)
                op.remove_lists |= declared & known.lists if known is not None else declared
            return
        blocklisted = known.blocklisted if known is not None else None
        if blocklisted is None and not change.create:
            op.verify_consent = True  # singles look first; imports check their read-back
        if blocklisted:
            self._consent_floor(op)
            return
        if status is ConsentStatus.PENDING and self.config.double_opt_in is not None:
            op.double_opt_in = True
            op.code, op.note = "double_opt_in", "double opt-in confirmation requested"
        op.attributes[attribute] = CONSENT_VALUES[status]

    def _consent_floor(self, op: WriteOp) -> None:
        """A blocklisted contact asked to be subscribed: ask again by DOI, or drop the ask."""
        attribute = self.config.consent_attribute.upper()
        op.verify_consent = False
        if self.config.double_opt_in is not None:
            op.double_opt_in = True
            op.attributes[attribute] = CONSENT_VALUES[ConsentStatus.PENDING]
            op.code, op.note = "double_opt_in", "double opt-in confirmation requested"
            return
        op.attributes.pop(attribute, None)
        op.code = "consent_floor"
        op.note = (
            "the contact is blocklisted in Brevo (they opted out); segsync never clears "
            "emailBlacklisted, and no double opt-in is configured to ask them again"
        )

    # -- writing: single calls -------------------------------------------------------------

    async def _write_single(self, op: WriteOp) -> ChangeResult:
        change = op.change
        started = self.clock.monotonic()
        try:
            if op.verify_consent:
                raw = await self._get_contact(op.email)
                if raw is not None and raw.get("emailBlacklisted"):
                    self._consent_floor(op)
                    if op.code == "consent_floor" and not self._has_more_than_consent(op):
                        return self._failed(op, op.note or "", op.code)
            if op.double_opt_in:
                await self._double_opt_in(op)
            if change.create:
                platform_id, created = await self._create(op)
            else:
                platform_id, created = await self._update(op), False
        except ApiError as exc:
            return ChangeResult(
                email=change.email,
                ok=False,
                platform_id=change.platform_id,
                error=exc.message,
                code=exc.code or str(exc.status),
                # a linked contact Brevo no longer holds: deleted there by a Brevo user
                deleted=exc.status == 404 and not change.create,
            )
        self.cost.observe_call(self.clock.monotonic() - started)
        self._forget(op, created=created)
        return ChangeResult(
            email=change.email,
            ok=True,
            partial=op.code == "consent_floor",
            platform_id=platform_id,
            created=created,
            code=op.code,
            error=op.note,
        )

    async def _archive(self, change: ContactChange) -> ChangeResult:
        """Delete a contact (Brevo has no archive); 404: already absent."""
        if change.platform_id and change.platform_id.isdigit():
            path, kind = f"/contacts/{change.platform_id}", "contact_id"
        else:
            path = f"/contacts/{urllib.parse.quote(change.email.strip().lower(), safe='')}"
            kind = "email_id"
        try:
            await self._call("DELETE", path, "/contacts/{identifier}",
                             params={"identifierType": kind}, ok=(404,))
        except ApiError as exc:
            return ChangeResult(email=change.email, ok=False, platform_id=change.platform_id,
                                error=exc.message, code=exc.code or str(exc.status))
        self._known.pop(change.email.strip().lower(), None)
        return ChangeResult(email=change.email, ok=True, platform_id=change.platform_id,
                            deleted=True)

    @staticmethod
    def _has_more_than_consent(op: WriteOp) -> bool:
        return bool(op.attributes or op.add_lists or op.remove_lists or op.new_email)

    async def _create(self, op: WriteOp) -> tuple[str | None, bool]:
        body: dict[str, Any] = {"email": op.email, "updateEnabled": True}
        if op.attributes:
            body["attributes"] = op.attributes
        if op.blocklist:
            body["emailBlacklisted"] = True
        if op.add_lists:
            body["listIds"] = sorted(op.add_lists)
        # updateEnabled makes a repeat harmless, so a lost answer may be retried
        response = await self._call(
            "POST", "/contacts", "/contacts", json_body=body, idempotent=True
        )
        if response.status_code == 201:
            return str(response.json()["id"]), True
        raw = await self._get_contact(op.email)
        if op.remove_lists and raw is not None:
            await self._call(
                "PUT",
                f"/contacts/{raw['id']}",
                "/contacts/{identifier}",
                params={"identifierType": "contact_id"},
                json_body={"unlinkListIds": sorted(op.remove_lists)},
            )
        return (str(raw["id"]) if raw else None), False

    async def _update(self, op: WriteOp) -> str | None:
        change = op.change
        body: dict[str, Any] = {}
        attributes = dict(op.attributes)
        if op.new_email:
            attributes["EMAIL"] = op.new_email
            if await self._opted_out_before_rename(op):
                body["emailBlacklisted"] = True  # a new email alone would clear the blocklist
        if attributes:
            body["attributes"] = attributes
        if op.blocklist:
            body["emailBlacklisted"] = True
        if op.add_lists:
            body["listIds"] = sorted(op.add_lists)
        if op.remove_lists:
            body["unlinkListIds"] = sorted(op.remove_lists)
        if not body:
            return change.platform_id
        if change.platform_id:
            path, params = f"/contacts/{change.platform_id}", {"identifierType": "contact_id"}
        else:
            path, params = (
                f"/contacts/{urllib.parse.quote(op.email, safe='')}",
                {"identifierType": "email_id"},
            )
        await self._call("PUT", path, "/contacts/{identifier}", params=params, json_body=body)
        return change.platform_id

    async def _opted_out_before_rename(self, op: WriteOp) -> bool:
        """Whether a contact about to be renamed must keep its blocklist (Brevo clears it on
        an email change): its blocklist read right now (renames are rare: one `GET`, so a
        blocklist the person set during this run is seen), what the last read showed, or
        an opt-out asked by the change itself."""
        raw = await self._get_contact(op.email)
        known = self._known.get(op.email)
        return (
            bool(raw and raw.get("emailBlacklisted"))
            or (known is not None and known.blocklisted)
            or op.change.consent in (ConsentStatus.UNSUBSCRIBED, ConsentStatus.BOUNCED)
        )

    async def _double_opt_in(self, op: WriteOp) -> None:
        settings = self.config.double_opt_in
        assert settings is not None
        lists = list(settings.include_list_ids) or [await self._owned_list(BASE_LIST_NAME)]
        await self._call(
            "POST",
            "/contacts/doubleOptinConfirmation",
            "/contacts/doubleOptinConfirmation",
            json_body={
                "email": op.email,
                "includeListIds": lists,
                "templateId": settings.template_id,
                "redirectionUrl": settings.redirection_url,
            },
            idempotent=True,
        )

    def _forget(self, op: WriteOp, *, created: bool = False) -> None:
        """Drop what was known of a contact just written (the next read refreshes it); keep
        whether it may be in segsync's lists, and the lists it unsubscribed from where they
        are known: none for a contact this write created, else those the last read showed
        (a contact known from no read is looked up before a list add, as before)."""
        known = self._known.pop(op.email, None)
        self._set_reachable(op.email, op.listable)
        if created:
            self._left_lists[op.email] = frozenset()
        elif known is not None:
            self._left_lists[op.email] = known.unsubscribed_lists

    def _failed(self, op: WriteOp, message: str, code: str | None) -> ChangeResult:
        return ChangeResult(
            email=op.change.email,
            ok=False,
            platform_id=op.change.platform_id,
            error=message,
            code=code,
        )
