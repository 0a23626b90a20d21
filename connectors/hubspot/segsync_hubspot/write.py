"""Writing HubSpot contacts: properties before writes, then upserts, tags and consent.

Contract (`Connector.prepare`, `Connector.write`), as HubSpot makes it:

- `prepare` creates the missing properties (in segsync's property group, with matching types;
  an existing one of another type is an error) and the tag options or tag lists;
- writes are batch upserts by email, 100 inputs a call, with per-record results from 207
  answers; a whole-batch 400 is bisected so that one bad record does not fail the others, and
  a batch never names one email twice (later changes go in later rounds);
- tags are written to the multi-checkbox property (options created before values; a removal
  rewrites the record's whole set, an addition is `;`-appended) or as tag-list memberships;
- consent goes through the communication-preferences API (batch writes where the account has
  them, else one call per address) with the legal basis when known; a `subscribed` write for
  an address HubSpot holds as opted out or bounced is refused locally and never sent. That
  guard is read right before the status write (after the upserts), for exactly the addresses
  about to be sent `SUBSCRIBED`, so an opt-out made during the run is seen; an opt-in HubSpot
  itself refuses for an address found opted out then is the same refusal (`CONSENT_OPT_OUT`,
  a per-record error, never retried as a resubscribe).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from segsync.connector import ChangeResult, ContactChange, Unwritable
from segsync.http import ApiError
from segsync.model import CONSENT_OPT_OUTS, ConsentStatus, FieldSpec, FieldType
from segsync_hubspot.account import log
from segsync_hubspot.client import path_segment
from segsync_hubspot.config import DEFAULT_EXPLANATION, LEGAL_BASES
from segsync_hubspot.fields import encode_value
from segsync_hubspot.limits import BATCH_INPUTS, CONSENT_BATCH_INPUTS
from segsync_hubspot.segments import HubSpotSegments

__all__ = ["ADDITIONAL_EMAIL", "LEGAL_BASES", "HubSpotWrites"]

ADDITIONAL_EMAIL = "ADDITIONAL_EMAIL_CONFLICT"
"""The code of a write refused because its address is another contact's additional email."""

_STATUS_STATE: dict[ConsentStatus, str] = {
    ConsentStatus.SUBSCRIBED: "SUBSCRIBED",
    ConsentStatus.UNSUBSCRIBED: "UNSUBSCRIBED",
    ConsentStatus.BOUNCED: "UNSUBSCRIBED",
}
"""The v4 `statusState` written for a canonical consent; others (`pending`, which HubSpot
cannot express, and `non_subscribed`) write no status: nothing reachable is sent."""

_SENT: dict[str, ConsentStatus] = {
    "SUBSCRIBED": ConsentStatus.SUBSCRIBED,
    "UNSUBSCRIBED": ConsentStatus.UNSUBSCRIBED,
}
"""The canonical status a confirmed `statusState` write stands for (`ChangeResult.sent_consent`)."""

_GDPR_HINT = (
    "; fix: this portal requires a legal basis (GDPR): set hubspot.legal_basis and "
    "hubspot.legal_basis_explanation"
)


def _ok(result: ChangeResult | None) -> bool:
    return result is not None and result.ok


class HubSpotWrites(HubSpotSegments):
    """`prepare` and `write`; see the module docstring."""

    _batch_consent_writes: bool
    _batch_consent_writes_seen: bool

    def tag_problem(self, tag: str) -> str | None:
        """A tag written as an option of the tags property cannot contain `;` (HubSpot's
        separator of multi-checkbox values)."""
        if self.cfg.tags_as == "property" and ";" in tag:
            return (
                f"tag {tag!r} contains ';', which HubSpot property options cannot hold; "
                "fix: rename the tag on the other platforms, or set hubspot.tags_as: lists"
            )
        return None

    async def prepare(
        self, fields: Mapping[str, FieldSpec], tags: Sequence[str]
    ) -> list[Unwritable]:
        """Create missing properties (with matching types) and the tag options or lists; an
        existing property of another type, or a tag HubSpot cannot hold, is returned as
        `Unwritable` (left out of writes), not raised."""
        known = await self._load_properties()
        problems: list[Unwritable] = []
        for name, spec in fields.items():
            if spec.read_only:
                continue
            target = self._target(name, spec)
            existing = known.get(target.name)
            if existing is None:
                if target.builtin:
                    continue
                await self._ensure_group()
                body: dict[str, Any] = {
                    "name": target.name,
                    "label": name,
                    "type": target.type,
                    "fieldType": target.field_type,
                    "groupName": self.cfg.property_group,
                    "description": f"segsync canonical field {name}",
                }
                if target.type == "enumeration":
                    body["options"] = [
                        {"label": o, "value": o, "displayOrder": i, "hidden": False}
                        for i, o in enumerate(spec.options)
                    ]
                known[target.name] = await self._create_property(body)
                continue
            mismatch = self.type_mismatch(name, spec, existing)
            if mismatch is not None:
                problems.append(Unwritable("field", name, mismatch))
                continue
            if target.type == "enumeration" and spec.options and not target.builtin:
                await self._ensure_options(target.name, {o: o for o in spec.options})
        holdable = []
        for tag in tags:
            why = self.tag_problem(tag)
            if why is None:
                holdable.append(tag)
            else:
                problems.append(Unwritable("tag", tag, why))
        if self.cfg.tags_as == "property":
            await self._ensure_tag_property({tag.casefold(): tag for tag in holdable})
        else:
            for tag in holdable:
                await self._tag_list(tag)
        return problems

    async def unwritable_fields(self, fields: Mapping[str, FieldSpec]) -> list[Unwritable]:
        """Reads only: the fields whose existing property has another type."""
        known = await self._load_properties()
        out = []
        for name, spec in fields.items():
            existing = known.get(self._target(name, spec).name)
            if spec.read_only or existing is None:
                continue
            mismatch = self.type_mismatch(name, spec, existing)
            if mismatch is not None:
                out.append(Unwritable("field", name, mismatch))
        return out

    def type_mismatch(
        self, name: str, spec: FieldSpec, existing: Mapping[str, Any]
    ) -> str | None:
        """Why the existing property `existing` cannot hold schema field `name` (None: it
        can): a property segsync would create with another type."""
        target = self._target(name, spec)
        if target.builtin or existing.get("type") == target.type:
            return None
        return (
            f"HubSpot property {target.name} exists with type {existing.get('type')}, but "
            f"field {name} needs {target.type}; fix: change the schema type of {name}, map "
            f"it to another property (mappings.hubspot), or change the property in HubSpot"
        )

    def _properties_for(self, change: ContactChange) -> tuple[dict[str, str], str | None]:
        """The property values of a change (fields only), or why a value cannot be written."""
        targets = self._targets()
        props: dict[str, str] = {}
        problems = []
        for name, value in change.fields.items():
            spec = self.schema.fields.get(name)
            target, spec = targets.get(name, (self._target(name, spec), spec))
            if target.read_only:
                continue
            if spec is not None:
                try:
                    value = spec.coerce(value)
                except ValueError as exc:
                    problems.append(f"{name}: {exc}")
                    continue
            text = encode_value(target, spec, value)
            if target.type == "enumeration" and ";" in text and not target.multi:
                problems.append(f"{name}: {text!r} contains ';', which HubSpot options cannot")
            props[target.name] = text
        if change.new_email:
            props["email"] = change.new_email
        return props, ("; ".join(problems) or None)

    async def write(self, changes: Sequence[ContactChange]) -> list[ChangeResult]:
        """Upsert by email, 100 a call; tags and consent as described in the module docstring."""
        results: list[ChangeResult | None] = [None] * len(changes)
        pending: list[int] = []
        archives = [i for i, c in enumerate(changes) if c.archive]
        for i, result in zip(
            archives, await asyncio.gather(*(self._archive(changes[i]) for i in archives)),
            strict=True,
        ):
            results[i] = result
        for i, change in enumerate(changes):
            if change.archive:
                continue
            if change.is_empty:
                results[i] = ChangeResult(
                    email=change.email, ok=True, platform_id=change.platform_id
                )
            else:
                pending.append(i)
        if not pending:
            return [r for r in results if r is not None]
        await self._skip_gone(changes, results, pending)
        pending = [i for i in pending if results[i] is None]
        if not pending:
            return [r for r in results if r is not None]
        tags_mode = self.cfg.tags_as
        invalid: dict[int, str] = {}
        for i in pending:
            bad = sorted(t for t in changes[i].tags_add | changes[i].tags_remove if ";" in t)
            if bad and tags_mode == "property":
                invalid[i] = f"tags {bad} contain ';', which HubSpot options cannot hold"
        pending = [i for i in pending if i not in invalid]
        if tags_mode == "property":
            wanted = {t.casefold(): t for i in pending for t in changes[i].tags_add}
            if wanted:
                await self._ensure_tag_property(wanted)
        await self._ensure_enum_options([changes[i] for i in pending])
        current_tags: dict[str, set[str]] = {}
        needs_tags = [
            changes[i].email
            for i in pending
            if changes[i].tags_remove and not changes[i].create and tags_mode == "property"
        ]
        if needs_tags:
            current_tags = await self._current_tags(needs_tags)
        inputs: list[tuple[int, dict[str, Any]]] = []
        for i in pending:
            change = changes[i]
            props, problem = self._properties_for(change)
            if problem:
                invalid[i] = problem
                continue
            if tags_mode == "property" and (change.tags_add or change.tags_remove):
                adds = sorted({t.casefold() for t in change.tags_add})
                if change.tags_remove and not change.create:
                    have = current_tags.get(change.email.strip().lower(), set())
                    keep = (have - {t.casefold() for t in change.tags_remove}) | set(adds)
                    props[self.cfg.tags_property] = ";".join(sorted(keep))
                elif adds:
                    props[self.cfg.tags_property] = (
                        ";".join(adds) if change.create else ";" + ";".join(adds)
                    )
            if props or change.create:
                inputs.append(
                    (
                        i,
                        {
                            "idProperty": "email",
                            "id": change.email.strip(),
                            "properties": props,
                            "objectWriteTraceId": str(i),
                        },
                    )
                )
        claimed = await self._claimed_by_others(changes, [i for i, _ in inputs])
        verdicts = await self._upsert([item for item in inputs if item[0] not in claimed])
        for i, problem in invalid.items():
            verdicts[i] = (False, None, False, problem, "INVALID_VALUE")
        for i, problem in claimed.items():
            verdicts[i] = (False, None, False, problem, ADDITIONAL_EMAIL)
        pending = sorted({*pending, *claimed})
        pending = sorted([*pending, *(i for i in invalid if i not in pending)])
        for i in pending:
            change = changes[i]
            ok, platform_id, created, error, code = verdicts.get(
                i, (True, change.platform_id, False, None, None)
            )
            results[i] = ChangeResult(
                email=change.email,
                ok=ok,
                platform_id=platform_id,
                created=created,
                error=error,
                code=code,
            )
        confirmed = [i for i in pending if (r := results[i]) is not None and r.ok]
        if tags_mode == "lists":
            await self._resolve_ids(changes, results, confirmed)
            await self._write_tag_lists(changes, results, confirmed)
        # consent guard, read right before the status write: never subscribe an address
        # HubSpot holds as opted out or bounced (it may have opted out during this run)
        subscribing = [i for i in confirmed if changes[i].consent is ConsentStatus.SUBSCRIBED]
        held = await self._held_now(changes, subscribing)
        refused = {i: c.value for i, c in held.items() if c in CONSENT_OPT_OUTS}
        written = {i: results[i] for i in confirmed}
        await self._write_consent(changes, results, [i for i in confirmed if i not in refused])
        for i, consent in held.items():  # the ledger's `previous`: what HubSpot held then
            if (prior := results[i]) is not None and prior.sent_consent is not None:
                results[i] = prior.model_copy(update={"held_consent": consent})
        # HubSpot refused an opt-in (the person opted out between the guard and the write):
        # a refusal of the consent floor, not an error to retry
        failed = [i for i in subscribing if i not in refused and not _ok(results[i])]
        refused.update({
            i: c.value for i, c in (await self._held_now(changes, failed)).items()
            if c in CONSENT_OPT_OUTS
        })
        for i, why in refused.items():
            prior = written[i]
            assert prior is not None
            change = changes[i]
            results[i] = prior.model_copy(
                update={
                    "ok": False,
                    "partial": prior.ok
                    and bool(change.fields or change.tags_add or change.tags_remove
                             or change.new_email),
                    "error": f"not re-subscribed: HubSpot holds {change.new_email or change.email}"
                             f" as {why} (an opt-out there; the next run reads it)",
                    "code": "CONSENT_OPT_OUT",
                }
            )
        return [r for r in results if r is not None]

    async def _claimed_by_others(
        self, changes: Sequence[ContactChange], indexes: Sequence[int]
    ) -> dict[int, str]:
        """The upserts among `indexes` whose address HubSpot holds as an additional email
        of another contact -> why nothing is written. An upsert by email finds a contact by
        its `hs_additional_emails` too, and would write this person's data onto someone
        else's record. Checked for the changes not linked to a record (creations): one read
        per 100. A linked change goes to its own record (its address is that record's)."""
        unlinked = {
            i: changes[i].email.strip().lower() for i in indexes
            if changes[i].create or not changes[i].platform_id
        }
        if not unlinked:
            return {}
        records = await self._records_by_email(
            sorted(set(unlinked.values())), ["email", "hs_additional_emails"]
        )
        primary = {str(r["properties"].get("email") or "").lower() for r in records}
        holders: dict[str, Mapping[str, Any]] = {}
        for record in records:
            extra = str((record.get("properties") or {}).get("hs_additional_emails") or "")
            for address in filter(None, (a.strip().lower() for a in extra.split(";"))):
                holders.setdefault(address, record)
        out: dict[int, str] = {}
        for i, email in unlinked.items():
            holder = holders.get(email)
            if holder is None or email in primary:
                continue
            other = holder["properties"].get("email") or "(no primary email)"
            out[i] = (
                f"HubSpot contact {holder['id']} ({other}) lists {email} as an additional "
                f"email: it is that contact's record, not this person's, so nothing was "
                f"written to it; fix: remove {email} from the additional emails of contact "
                f"{holder['id']} in HubSpot, or merge the two people's contacts there"
            )
        return out

    async def _held_now(
        self, changes: Sequence[ContactChange], indexes: Sequence[int]
    ) -> dict[int, ConsentStatus]:
        """The consent HubSpot holds now for each change among `indexes`: an opt-out when
        its address (old or new) is opted out or bounced, else the new address's status;
        one contact read and one status read per 100 addresses."""
        if not indexes:
            return {}
        addresses = {
            i: [a.strip().lower() for a in (changes[i].new_email, changes[i].email) if a]
            for i in indexes
        }
        held = await self._held_consents(sorted(set().union(*addresses.values())))
        out: dict[int, ConsentStatus] = {}
        for i in indexes:
            found = [held[a] for a in addresses[i] if a in held]
            outs = [c for c in found if c in CONSENT_OPT_OUTS]
            if outs or found:
                out[i] = (outs or found)[0]
        return out

    async def _skip_gone(
        self, changes: Sequence[ContactChange], results: list[ChangeResult | None],
        pending: Sequence[int],
    ) -> None:
        """Answer `deleted` for updates of linked contacts HubSpot no longer holds (archived
        or deleted there: a batch read by id names them `OBJECT_NOT_FOUND`), instead of
        upserting them by email (which would make a new contact). One read per 100."""
        linked = {
            i: pid for i in pending
            if not changes[i].create and (pid := changes[i].platform_id) and pid.isdigit()
        }
        gone = await self.missing(sorted(set(linked.values())))
        for i, pid in linked.items():
            if pid in gone:
                results[i] = ChangeResult(
                    email=changes[i].email, ok=False, platform_id=pid, deleted=True,
                    error="HubSpot no longer holds this contact (archived or deleted there)",
                    code="OBJECT_NOT_FOUND",
                )

    async def missing(self, platform_ids: Sequence[str]) -> set[str]:
        """The contacts of `platform_ids` HubSpot no longer holds (archived or deleted: a
        batch read by id names them `OBJECT_NOT_FOUND`). One read per 100."""
        ids = sorted({pid for pid in platform_ids if pid.isdigit()})
        gone: set[str] = set()

        async def one(chunk: Sequence[str]) -> None:
            response = await self.client.request(
                "POST", f"{self.paths['contacts']}/batch/read",
                endpoint="POST contacts/batch/read",
                json={"inputs": [{"id": i} for i in chunk], "properties": ["email"],
                      "propertiesWithHistory": []},
                params={"archived": "false"}, idempotent=True, ok=(207, 404),
            )
            body = response.json() if response.content else {}
            found = {str(r.get("id")) for r in body.get("results") or []}
            for error in body.get("errors") or []:  # only the ids HubSpot names as missing
                if error.get("category") == "OBJECT_NOT_FOUND":
                    gone.update(str(i) for i in (error.get("context") or {}).get("ids") or ()
                                if str(i) not in found)

        await asyncio.gather(*(one(ids[k : k + BATCH_INPUTS])
                               for k in range(0, len(ids), BATCH_INPUTS)))
        return gone

    async def _archive(self, change: ContactChange) -> ChangeResult:
        """Archive a contact (`DELETE {contacts}/{id}`: HubSpot's archive, restorable for 90
        days; never the GDPR delete). A contact of unknown id is looked up by email first."""
        contact_id = change.platform_id
        try:
            if not (contact_id and contact_id.isdigit()):
                found = await self._batch_read_by_email([change.email], ["email"])
                record = found.get(change.email.strip().lower())
                if record is None:  # nothing to archive: gone already
                    return ChangeResult(email=change.email, ok=True, deleted=True,
                                        platform_id=change.platform_id)
                contact_id = str(record["id"])
            await self.client.request(
                "DELETE", f"{self.paths['contacts']}/{contact_id}",
                endpoint="DELETE contacts/{id}", idempotent=True, ok=(404,),
            )
        except ApiError as exc:
            return ChangeResult(email=change.email, ok=False, platform_id=change.platform_id,
                                error=exc.message, code=exc.code)
        return ChangeResult(email=change.email, ok=True, platform_id=contact_id, deleted=True)

    async def _ensure_enum_options(self, changes: Sequence[ContactChange]) -> None:
        """Create options of open enumeration properties before values are written."""
        wanted: dict[str, dict[str, str]] = {}
        for change in changes:
            for name, value in change.fields.items():
                spec = self.schema.fields.get(name)
                if spec is None or spec.type not in (FieldType.ENUM, FieldType.MULTI_ENUM):
                    continue
                target = self._target(name, spec)
                if target.builtin or target.type != "enumeration" or value is None:
                    continue
                values = value if isinstance(value, frozenset | set | list | tuple) else [value]
                for v in values:
                    wanted.setdefault(target.name, {})[str(v)] = str(v)
        for prop, options in wanted.items():
            await self._load_properties()
            await self._ensure_options(prop, options)

    async def _current_tags(self, emails: Sequence[str]) -> dict[str, set[str]]:
        records = await self._batch_read_by_email(emails, ["email", self.cfg.tags_property])
        return {
            email: {v for v in (r["properties"].get(self.cfg.tags_property) or "").split(";") if v}
            for email, r in records.items()
        }

    async def _held_consents(self, emails: Sequence[str]) -> dict[str, ConsentStatus]:
        """The consent status HubSpot holds for each of `emails` it knows (a record or a
        subscription status), read now."""
        sub = await self._subscription_id()
        records = await self._batch_read_by_email(
            emails, ["email", "hs_email_optout", "hs_email_bad_address", f"hs_email_optout_{sub}"]
        )
        statuses = await self._statuses(sorted({e.strip().lower() for e in emails}))
        held: dict[str, ConsentStatus] = {}
        for email in {e.strip().lower() for e in emails}:
            if email not in records and email not in statuses:
                continue
            props = (records.get(email) or {}).get("properties") or {}
            held[email] = self._consent(props, statuses.get(email)).status
        return held

    async def _upsert(
        self, inputs: Sequence[tuple[int, dict[str, Any]]]
    ) -> dict[int, tuple[bool, str | None, bool, str | None, str | None]]:
        """Batch upserts at 100 inputs, concurrently; a verdict per change index."""
        verdicts: dict[int, tuple[bool, str | None, bool, str | None, str | None]] = {}

        async def send(chunk: Sequence[tuple[int, dict[str, Any]]]) -> None:
            try:
                response = await self.client.request(
                    "POST",
                    f"{self.paths['contacts']}/batch/upsert",
                    endpoint="POST contacts/batch/upsert",
                    json={"inputs": [body for _, body in chunk]},
                    ok=(207,),
                    # by email, values set or `;`-appended: sending it twice changes nothing
                    idempotent=True,
                )
            except ApiError as exc:
                if exc.status != 400 or len(chunk) == 1:
                    for i, _ in chunk:
                        verdicts[i] = (False, None, False, exc.message, exc.code)
                    return
                half = len(chunk) // 2  # isolate the refused record(s)
                await send(chunk[:half])
                await send(chunk[half:])
                return
            body = response.json()
            by_trace = {str(r.get("objectWriteTraceId")): r for r in body.get("results") or []}
            by_email = {
                str((r.get("properties") or {}).get("email", "")).lower(): r
                for r in body.get("results") or []
            }
            errors: dict[str, dict[str, Any]] = {}
            for error in body.get("errors") or []:
                context = error.get("context") or {}
                for key in context.get("objectWriteTraceId") or []:
                    errors[str(key)] = error
                for key in context.get("ids") or []:
                    errors.setdefault(f"email:{str(key).lower()}", error)
            for i, item in chunk:
                record = by_trace.get(str(i)) or by_email.get(item["id"].lower())
                error = errors.get(str(i)) or errors.get(f"email:{item['id'].lower()}")
                asked = str(item["properties"].get("email") or item["id"]).strip().lower()
                found = str((record or {}).get("properties", {}).get("email") or "").lower()
                if record is not None and found and found not in (asked, item["id"].lower()):
                    # found by an additional email (claimed since the check): not its record
                    verdicts[i] = (
                        False, None, False,
                        f"HubSpot wrote {item['id']} onto contact {record['id']} ({found}), "
                        f"which lists it as an additional email; fix: remove it there, or "
                        f"merge the two people's contacts in HubSpot",
                        ADDITIONAL_EMAIL,
                    )
                elif record is not None:
                    verdicts[i] = (True, str(record["id"]), bool(record.get("new")), None, None)
                elif error is not None:
                    verdicts[i] = (
                        False,
                        None,
                        False,
                        str(error.get("message")),
                        str(error.get("category") or "") or None,
                    )
                else:
                    verdicts[i] = (False, None, False, "HubSpot did not confirm this record", None)

        # HubSpot refuses a batch naming one email twice: later changes go in later rounds
        rounds: list[list[tuple[int, dict[str, Any]]]] = []
        for item in inputs:
            email = item[1]["id"].lower()
            for batch in rounds:
                if all(other["id"].lower() != email for _, other in batch):
                    batch.append(item)
                    break
            else:
                rounds.append([item])
        for batch in rounds:
            await asyncio.gather(
                *(send(batch[i : i + BATCH_INPUTS]) for i in range(0, len(batch), BATCH_INPUTS))
            )
        return verdicts

    async def _write_consent(
        self,
        changes: Sequence[ContactChange],
        results: list[ChangeResult | None],
        indexes: Iterable[int],
    ) -> None:
        """Opt-outs and opt-ins through the subscription statuses, a result per change.

        Batch writes (`statuses/batch/write`, 100 inputs a call) where the account has them;
        where HubSpot refuses them (403: Marketing Hub Enterprise only) or the config turns
        them off, one `statuses/{email}` call per address. Callers leave out the addresses
        that must not be re-subscribed; this method sends what it is given. A status HubSpot
        cannot hold (`pending`, `non_subscribed`) sends nothing: its result says so
        (`consent_not_sent`), and the ledger has no row for it.
        """
        given = list(indexes)
        for i in given:
            prior = results[i]
            if prior is not None and changes[i].consent is not None and (
                changes[i].consent not in _STATUS_STATE
            ):
                results[i] = prior.model_copy(update={"consent_not_sent": True})
        todo = [i for i in given if changes[i].consent in _STATUS_STATE]
        if not todo:
            return
        sub = await self._subscription_id()
        inputs = {i: self._status_input(changes[i], sub) for i in todo}
        failures: dict[int, tuple[str, str | None]] = {}

        async def single(i: int) -> None:
            body = dict(inputs[i])
            email = body.pop("subscriberIdString")
            try:
                await self.client.request(
                    "POST",
                    f"{self.paths['consent']}/statuses/{path_segment(email)}",
                    endpoint="POST consent statuses/{email}",
                    json=body,
                    idempotent=True,
                )
            except ApiError as exc:
                failures[i] = (exc.message, exc.code)

        async def batch(chunk: Sequence[int]) -> None:
            if not self._batch_consent_writes:
                await asyncio.gather(*(single(i) for i in chunk))
                return
            try:
                response = await self.client.request(
                    "POST",
                    f"{self.paths['consent']}/statuses/batch/write",
                    endpoint="POST consent statuses/batch/write",
                    json={"inputs": [inputs[i] for i in chunk]},
                    ok=(207,),
                    # statuses are set, not toggled: sending them twice changes nothing
                    idempotent=True,
                )
            except ApiError as exc:
                if exc.status == 403:
                    if self._batch_consent_writes:
                        log.warning(
                            "hubspot: no batch subscription status writes (%s); "
                            "writing one address a call",
                            exc.message,
                        )
                    self._batch_consent_writes = False
                    await asyncio.gather(*(single(i) for i in chunk))
                elif exc.status == 400 and len(chunk) > 1:
                    half = len(chunk) // 2  # isolate the refused input(s)
                    await batch(chunk[:half])
                    await batch(chunk[half:])
                else:
                    for i in chunk:
                        failures[i] = (exc.message, exc.code)
                return
            self._batch_consent_writes_seen = True
            failures.update(self._status_verdicts(chunk, inputs, response.json()))

        # one batch never names an address twice: later changes go in later rounds
        rounds: list[list[int]] = []
        seen: dict[str, int] = {}  # address -> rounds that already name it
        for i in todo:
            email = inputs[i]["subscriberIdString"].lower()
            seen[email] = seen.get(email, 0) + 1
            if seen[email] > len(rounds):
                rounds.append([])
            rounds[seen[email] - 1].append(i)
        step = CONSENT_BATCH_INPUTS
        for group in rounds:
            chunks = [group[k : k + step] for k in range(0, len(group), step)]
            unknown = self._batch_consent_writes and not self._batch_consent_writes_seen
            if unknown and len(chunks) > 1:
                await batch(chunks[0])  # learn whether the account has batch writes first
                chunks = chunks[1:]
            await asyncio.gather(*(batch(chunk) for chunk in chunks))
        for i in todo:
            prior = results[i]
            assert prior is not None
            if i not in failures:
                sent = _SENT[str(inputs[i]["statusState"])]
                basis = inputs[i].get("legalBasis")
                own = (changes[i].consent_basis or "").strip().upper()
                results[i] = prior.model_copy(update={
                    "sent_consent": sent, "sent_basis": basis,
                    "basis_from_default": basis is not None and basis != own,
                })
                continue
            error, code = failures[i]
            if "legalBasis" not in inputs[i] and "legalbasis" in error.lower().replace(" ", ""):
                error += _GDPR_HINT
            results[i] = prior.model_copy(
                update={"ok": False, "partial": True, "error": error, "code": code}
            )

    def _status_input(self, change: ContactChange, sub: int) -> dict[str, Any]:
        """The `PublicStatusRequest` of one change, with its legal basis when one is known."""
        body: dict[str, Any] = {
            "subscriberIdString": (change.new_email or change.email).strip(),
            "channel": "EMAIL",
            "subscriptionId": sub,
            "statusState": _STATUS_STATE.get(change.consent, "NOT_SPECIFIED")
            if change.consent
            else "NOT_SPECIFIED",
        }
        basis = self._legal_basis(change)
        if basis:
            body["legalBasis"] = basis
            body["legalBasisExplanation"] = self.cfg.legal_basis_explanation or DEFAULT_EXPLANATION
        return body

    def _legal_basis(self, change: ContactChange) -> str | None:
        """The change's own basis (from its evidence) when HubSpot knows it, else the
        configured default (`hubspot.legal_basis`), else None (nothing sent)."""
        own = (change.consent_basis or "").strip().upper()
        return own if own in LEGAL_BASES else self.cfg.legal_basis

    @staticmethod
    def _status_verdicts(
        chunk: Sequence[int], inputs: Mapping[int, Mapping[str, Any]], answer: Mapping[str, Any]
    ) -> dict[int, tuple[str, str | None]]:
        """The inputs of a batch status write that failed -> (error, code), from its answer.

        An input is confirmed by a result naming its address and subscription; an error whose
        context names the address fails it; an input neither confirms nor fails is reported
        as unconfirmed rather than assumed written.
        """
        done = {
            (str(r.get("subscriberIdString", "")).lower(), int(r.get("subscriptionId", -1)))
            for r in answer.get("results") or []
        }
        errors: dict[str, Mapping[str, Any]] = {}
        for error in answer.get("errors") or []:
            context = error.get("context") or {}
            for values in context.values() if isinstance(context, Mapping) else ():
                for value in values if isinstance(values, list) else ():
                    errors.setdefault(str(value).strip().lower(), error)
        out: dict[int, tuple[str, str | None]] = {}
        for i in chunk:
            email = str(inputs[i]["subscriberIdString"]).lower()
            if (email, int(inputs[i]["subscriptionId"])) in done:
                continue
            error = errors.get(email)
            if error is not None:
                out[i] = (
                    str(error.get("message") or "HubSpot refused this status"),
                    str(error.get("category") or "") or None,
                )
            else:
                out[i] = ("HubSpot did not confirm this subscription status", None)
        return out

    async def _resolve_ids(
        self,
        changes: Sequence[ContactChange],
        results: list[ChangeResult | None],
        indexes: Sequence[int],
    ) -> None:
        """Fill in record ids that no upsert returned (tag-only changes), by email."""
        unknown = [
            i
            for i in indexes
            if (r := results[i]) is not None
            and r.platform_id is None
            and (changes[i].tags_add or changes[i].tags_remove)
        ]
        if not unknown:
            return
        records = await self._batch_read_by_email([changes[i].email for i in unknown], ["email"])
        for i in unknown:
            record = records.get(changes[i].email.strip().lower())
            prior = results[i]
            assert prior is not None
            if record is None:
                results[i] = prior.model_copy(
                    update={
                        "ok": False,
                        "error": "no HubSpot contact with this email",
                        "code": "OBJECT_NOT_FOUND",
                    }
                )
            else:
                results[i] = prior.model_copy(update={"platform_id": str(record["id"])})

    async def _write_tag_lists(
        self,
        changes: Sequence[ContactChange],
        results: list[ChangeResult | None],
        indexes: Sequence[int],
    ) -> None:
        plan: dict[str, tuple[list[str], list[str]]] = {}
        for i in indexes:
            result = results[i]
            if result is None or result.platform_id is None:
                continue
            for tag in changes[i].tags_add:
                plan.setdefault(await self._tag_list(tag), ([], []))[0].append(result.platform_id)
            for tag in changes[i].tags_remove:
                plan.setdefault(await self._tag_list(tag), ([], []))[1].append(result.platform_id)
        for list_id, (add, remove) in plan.items():
            await self._change_ids(list_id, add, remove)
