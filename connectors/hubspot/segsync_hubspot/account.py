"""The HubSpot account a connector works on: the state and the calls every part shares.

`HubSpotAccount` is the base of the connector's parts (`segments`, `read`, `write`). It holds
the HTTP client and the API paths, places canonical fields on properties (through the
connector's mapping), keeps the property catalog (loaded once, completed by what segsync
creates: segsync's property group, the tag checkbox property and its options, enumeration
options), finds the subscription type consent is synced with, reads contacts by email in
batches of 100 and implements `check` and `account_identity` (the portal id of
`GET /account-info/<version>/details`). Consent is read from `hs_email_optout*` /
`hs_email_bad_address` and the subscription statuses (batch reads; without them, where the
account lacks Marketing Hub Enterprise, from the opt-out properties alone).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from segsync.connector import AccountIdentity, Connector, PreflightItem
from segsync.http import ApiClient, ApiError, RequestStats
from segsync.model import Consent, ConsentStatus, FieldSpec
from segsync_hubspot.client import path_segment
from segsync_hubspot.config import HubSpotConfig
from segsync_hubspot.fields import PropertyTarget, mapped_target
from segsync_hubspot.limits import BATCH_INPUTS

__all__ = ["HubSpotAccount", "parse_time"]

log = logging.getLogger("segsync.hubspot")


def parse_time(raw: str | None) -> dt.datetime | None:
    """A HubSpot time (epoch milliseconds or ISO 8601) as an aware datetime; None if unset."""
    if not raw:
        return None
    try:
        if raw.isdigit():
            return dt.datetime.fromtimestamp(int(raw) / 1000, tz=dt.UTC)
        return dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


class HubSpotAccount(Connector):
    """The state and shared calls of the connector's parts; see the module docstring.

    The connector's `__init__` sets every attribute declared here.
    """

    cfg: HubSpotConfig
    client: ApiClient
    paths: dict[str, str]
    _properties: dict[str, dict[str, Any]] | None
    _tag_labels: dict[str, str]
    _tag_lists: dict[str, str]
    _subscription: int | None
    _subscription_name: str | None
    _batch_consent: bool
    _group_ready: bool

    @property
    def stats(self) -> RequestStats:
        return self.client.stats

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- small helpers ------------------------------------------------------------------------

    async def _json(self, method: str, path: str, label: str, **kwargs: Any) -> Any:
        response = await self.client.request(method, path, endpoint=label, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _target(self, name: str, spec: FieldSpec | None) -> PropertyTarget:
        """The property of canonical `name`: the mapping's path when a mapping names one."""
        return mapped_target(name, spec, self.mapping)

    def _targets(self) -> dict[str, tuple[PropertyTarget, FieldSpec | None]]:
        """Every canonical field this connector reads/writes, with its property."""
        out: dict[str, tuple[PropertyTarget, FieldSpec | None]] = {}
        for name, spec in self.schema.fields.items():
            out[name] = (self._target(name, spec), spec)
        if not out:
            for name in ("first_name", "last_name", "phone", "company", "city", "country"):
                out[name] = (self._target(name, None), None)
        return out

    async def _subscription_id(self) -> int:
        """The subscription type consent is synced with, resolved once; see `_choose`."""
        if self._subscription_name is None:
            body = await self._json(
                "GET", f"{self.paths['consent']}/definitions", "GET consent definitions"
            )
            results = body.get("results") or body.get("subscriptionDefinitions") or []
            chosen = self._choose_subscription([d for d in results if isinstance(d, Mapping)])
            self._subscription = int(chosen["id"])
            self._subscription_name = str(chosen.get("name") or "")
        assert self._subscription is not None
        return self._subscription

    @staticmethod
    def _unusable(definition: Mapping[str, Any]) -> str | None:
        """Why a subscription definition cannot carry email marketing consent, or None.

        Usable: active (`isActive` true), not internal, and an email type (`communicationMethod`
        EMAIL, or none given, as on older email-only definitions).
        """
        method = str(definition.get("communicationMethod") or "EMAIL")
        if definition.get("isActive") is not True:
            return "inactive"
        if definition.get("isInternal"):
            return "internal"
        if method.upper() != "EMAIL":
            return f"a {method} type, not email"
        return None

    def _choose_subscription(self, definitions: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        """The configured definition (which must be usable), else the best usable one:
        `isDefault` first, then an explicit EMAIL method, then purpose Marketing, then order.

        Raises ApiError naming `hubspot.subscription_id` and the fix when there is none.
        """
        wanted = self.cfg.subscription_id
        usable = [d for d in definitions if self._unusable(d) is None]
        listed = ", ".join(f"{d.get('name')} (id {d.get('id')})" for d in usable) or "none"
        fix = (
            "fix: set it to an active, non-internal email subscription type of this account "
            f"({listed}), or leave it out"
        )
        if wanted is not None:
            found = next((d for d in definitions if str(d.get("id")) == str(wanted)), None)
            if found is None:
                raise ApiError(
                    platform=self.name,
                    endpoint="GET consent definitions",
                    status=404,
                    code="subscription_not_found",
                    message=(
                        f"hubspot.subscription_id: subscription type {wanted} does not exist "
                        f"on this HubSpot account; {fix}"
                    ),
                )
            why = self._unusable(found)
            if why is None:
                return found
            raise ApiError(
                platform=self.name,
                endpoint="GET consent definitions",
                status=409,
                code="subscription_not_usable",
                message=(
                    f"hubspot.subscription_id: subscription type {wanted} "
                    f"({found.get('name')}) is {why}; {fix}"
                ),
            )
        if not usable:
            raise ApiError(
                platform=self.name,
                endpoint="GET consent definitions",
                status=200,
                code="no_subscription_type",
                message=(
                    "the HubSpot account has no active, non-internal email subscription type; "
                    "fix: create one in HubSpot (Settings > Marketing > Email > Subscription "
                    "types) and name it in hubspot.subscription_id"
                ),
            )
        ranked = sorted(
            enumerate(usable),
            key=lambda item: (
                not item[1].get("isDefault"),
                not item[1].get("communicationMethod"),
                item[1].get("purpose") != "Marketing",
                item[0],
            ),
        )
        return ranked[0][1]

    def account_facts(self) -> dict[str, str]:
        """The subscription type consent is synced with, once `check`, `read` or a consent
        write resolved it (empty before)."""
        if self._subscription_name is None or self._subscription is None:
            return {}
        return {"subscription type": f"{self._subscription_name} (id {self._subscription})"}

    # -- check / prepare ------------------------------------------------------------------------

    async def check(self) -> None:
        """One cheap authenticated read (a contact page of one), then the subscription type
        consent is synced with: a configured one must exist and be usable (ApiError naming
        `hubspot.subscription_id` and the fix otherwise)."""
        await self._json("GET", self.paths["contacts"], "GET contacts", params={"limit": 1})
        await self._subscription_id()

    def _account_path(self) -> str:
        """`/account-info/<version>/details` of the configured API version."""
        version = self.cfg.api_version
        return f"/account-info/{'v3' if version == 'v3' else path_segment(version)}/details"

    async def account_identity(self) -> AccountIdentity:
        """The portal the token reaches: `portalId` of the account details
        (`GET /account-info/<version>/details`); the label adds its account type
        (STANDARD, SANDBOX, ...) and UI domain."""
        body = await self._json("GET", self._account_path(), "GET account details")
        portal = (body or {}).get("portalId")
        if portal is None:
            raise ValueError("the account details answered without a portalId")
        kind = str((body or {}).get("accountType") or "").lower()
        domain = str((body or {}).get("uiDomain") or "")
        details = ", ".join(part for part in (kind, domain) if part)
        label = f"portal {portal}" + (f" ({details})" if details else "")
        return AccountIdentity(id=str(portal), label=label)

    #: what `preflight` reads to find a scope the token lacks: (what needs it, method,
    #: path family, path suffix, body); each one read, never a write
    SCOPE_PROBES: ClassVar[tuple[tuple[str, str, str, str, dict[str, Any] | None], ...]] = (
        ("reading contacts", "GET", "contacts", "", None),
        ("property definitions", "GET", "properties", "", None),
        ("tag and segment lists", "POST", "lists", "/search", {"count": 1, "offset": 0}),
        ("subscription types and statuses", "GET", "consent", "/definitions", None),
    )
    #: the write scopes a sync needs, which no read can verify
    WRITE_SCOPES: ClassVar[tuple[str, ...]] = (
        "crm.objects.contacts.write",
        "crm.schemas.contacts.write",
        "crm.lists.write",
        "communication_preferences.write",
    )
    rate_limit_headers: ClassVar[tuple[str, ...]] = (
        "x-hubspot-ratelimit-remaining",
        "x-hubspot-ratelimit-max",
        "x-hubspot-ratelimit-daily-remaining",
        "x-hubspot-ratelimit-daily",
    )

    async def audience_size(self) -> int:
        """The portal's contacts: `total` of a one-result contact search."""
        body = await self._json(
            "POST", f"{self.paths['contacts']}/search", "POST contacts/search",
            json={"limit": 1, "properties": ["email"]}, scope="search", idempotent=True,
        )
        return int((body or {}).get("total") or 0)

    async def preflight(self) -> list[PreflightItem]:
        """Read-only: one read per scope family (a 403 `MISSING_SCOPES` names the scopes the
        private app lacks, a blocking problem), the write scopes to grant (not verifiable by
        reading), and the portal's subscription types."""
        items: list[PreflightItem] = []
        definitions: list[Mapping[str, Any]] = []
        for what, method, family, suffix, body in self.SCOPE_PROBES:
            try:
                answer = await self._json(
                    method, self.paths[family] + suffix, f"{method} {family}{suffix}",
                    params={"limit": 1} if family == "contacts" else None,
                    json=body, idempotent=True,
                )
            except ApiError as exc:
                if exc.status != 403:
                    raise
                items.append(PreflightItem(
                    label=f"scopes for {what}", value="missing",
                    problem=f"the token lacks the scopes for {what}: "
                    f"{_required_scopes(exc) or exc.message}; grant them to the private app",
                    unavailable=True,
                ))
                continue
            items.append(PreflightItem(label=f"scopes for {what}", value="granted"))
            if family == "consent":
                results = (answer or {}).get("results") or (answer or {}).get(
                    "subscriptionDefinitions"
                ) or []
                definitions = [d for d in results if isinstance(d, Mapping)]
        items.append(PreflightItem(
            label="write scopes (not verifiable read-only)", value=", ".join(self.WRITE_SCOPES)
        ))
        if definitions:
            items.append(PreflightItem(
                label="subscription types",
                value="; ".join(
                    f"{d.get('name')} (id {d.get('id')}"
                    + ("" if d.get("isActive", True) else ", inactive")
                    + (", internal" if d.get("isInternal") else "")
                    + f", {d.get('communicationMethod') or 'Email'})"
                    for d in definitions
                ),
            ))
        return items

    async def _load_properties(self) -> dict[str, dict[str, Any]]:
        if self._properties is None:
            body = await self._json("GET", self.paths["properties"], "GET properties")
            self._properties = {p["name"]: p for p in body.get("results") or []}
            tag_prop = self._properties.get(self.cfg.tags_property)
            if tag_prop:
                for option in tag_prop.get("options") or []:
                    self._tag_labels.setdefault(
                        option["value"], option.get("label") or option["value"]
                    )
        return self._properties

    async def _ensure_group(self) -> None:
        """segsync's property group, created once per connector (a 409 means it exists)."""
        if self._group_ready:
            return
        await self.client.request(
            "POST",
            f"{self.paths['properties']}/groups",
            endpoint="POST property group",
            json={"name": self.cfg.property_group, "label": "segsync", "displayOrder": -1},
            ok=(409,),  # it exists (ours, or an answer lost before a retry)
            idempotent=True,
        )
        self._group_ready = True

    async def _ensure_tag_property(self, wanted: Mapping[str, str]) -> None:
        """The tag checkbox property with options `wanted` (value -> label): created when
        missing (in segsync's group), else completed with the options it lacks."""
        known = await self._load_properties()
        if self.cfg.tags_property in known:
            await self._ensure_options(self.cfg.tags_property, wanted)
            return
        await self._ensure_group()
        options = [
            {"label": label, "value": value, "displayOrder": i, "hidden": False}
            for i, (value, label) in enumerate(sorted(wanted.items()))
        ]
        known[self.cfg.tags_property] = await self._create_property(
            {
                "name": self.cfg.tags_property,
                "label": "segsync tags",
                "type": "enumeration",
                "fieldType": "checkbox",
                "groupName": self.cfg.property_group,
                "options": options,
                "description": "tags kept in sync by segsync",
            }
        )
        for value, label in wanted.items():
            self._tag_labels.setdefault(value, label)

    async def _create_property(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a property; a 409 (it exists: e.g. our own, whose answer was lost) reads it."""
        response = await self.client.request(
            "POST",
            self.paths["properties"],
            endpoint="POST property",
            json=dict(body),
            idempotent=True,
            ok=(409,),
        )
        if response.status_code == 409:
            existing: dict[str, Any] = await self._json(
                "GET", f"{self.paths['properties']}/{path_segment(body['name'])}", "GET property"
            )
            return existing
        created: dict[str, Any] = response.json()
        return created

    async def _ensure_options(self, prop: str, wanted: Mapping[str, str]) -> None:
        """Add the options `wanted` (value -> label) that `prop` lacks, in one PATCH."""
        known = await self._load_properties()
        record = known.get(prop)
        if record is None:
            return
        options = list(record.get("options") or [])
        have = {o["value"] for o in options}
        missing = [(v, label) for v, label in sorted(wanted.items()) if v not in have]
        if not missing:
            return
        options += [
            {"label": label, "value": value, "displayOrder": len(options) + i, "hidden": False}
            for i, (value, label) in enumerate(missing)
        ]
        known[prop] = await self._json(
            "PATCH",
            f"{self.paths['properties']}/{path_segment(prop)}",
            "PATCH property",
            json={"options": options},
            idempotent=True,  # the full option list
        )
        if prop == self.cfg.tags_property:
            for value, label in missing:
                self._tag_labels.setdefault(value, label)

    def _consent(self, props: Mapping[str, Any], status: Mapping[str, Any] | None) -> Consent:
        """The consent observation of one contact: its properties and its status on the
        managed subscription type (None when not read), with the evidence it rests on.

        Opt-outs: `hs_email_bad_address=true` (a hard bounce: bounced), `hs_email_optout=true`
        (unsubscribed from all email), `hs_email_optout_<id>=true` or `UNSUBSCRIBED` on the
        managed type. Opt-in: `SUBSCRIBED` on the managed type, with its `legalBasis`.
        `NOT_SPECIFIED`, no status, or a status on another type is no evidence: non_subscribed
        with `evidence` None (a `pending` elsewhere survives it).
        """
        sub = self._subscription
        state = str(status.get("status") or "") if status else ""
        when = parse_time(status.get("timestamp")) if status else None
        basis = status.get("legalBasis") if status else None
        stated = f"statusState={state}; subscriptionId={sub}" + (
            f"; timestamp={status.get('timestamp')}" if status and status.get("timestamp") else ""
        )
        if props.get("hs_email_bad_address") == "true":
            return Consent(
                status=ConsentStatus.BOUNCED,
                source=self.name,
                evidence="hs_email_bad_address=true",
            )
        signals = [
            f"{name}=true"
            for name in ("hs_email_optout", f"hs_email_optout_{sub}" if sub is not None else "")
            if name and props.get(name) == "true"
        ]
        if state == "UNSUBSCRIBED":
            signals.append(stated)
        if signals:
            return Consent(
                status=ConsentStatus.UNSUBSCRIBED,
                updated_at=when if state == "UNSUBSCRIBED" else None,
                source=self.name,
                legal_basis=basis if state == "UNSUBSCRIBED" else None,
                evidence="; ".join(signals),
            )
        if state == "SUBSCRIBED":
            return Consent(
                status=ConsentStatus.SUBSCRIBED,
                updated_at=when,
                source=self.name,
                legal_basis=basis,
                evidence=stated,
            )
        return Consent(status=ConsentStatus.NON_SUBSCRIBED, source=self.name)

    async def _statuses(self, emails: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The configured subscription's status per address (batch read, 100 a call).

        Where the account has no batch status API (403: it needs Marketing Hub Enterprise),
        it returns nothing from then on and consent comes from the opt-out properties alone.
        """
        if not emails or not self._batch_consent:
            return {}
        sub = await self._subscription_id()
        out: dict[str, dict[str, Any]] = {}

        async def one(chunk: Sequence[str]) -> None:
            response = await self.client.request(
                "POST",
                f"{self.paths['consent']}/statuses/batch/read",
                endpoint="POST consent statuses/batch/read",
                params={"channel": "EMAIL"},
                json={"inputs": list(chunk)},
                idempotent=True,
            )
            for result in response.json().get("results") or []:
                for status in result.get("statuses") or []:
                    if int(status.get("subscriptionId", -1)) == sub:
                        out[str(result["subscriberIdString"]).lower()] = status

        try:
            await asyncio.gather(
                *(one(emails[i : i + BATCH_INPUTS]) for i in range(0, len(emails), BATCH_INPUTS))
            )
        except ApiError as exc:
            if exc.status != 403:
                raise
            log.warning(
                "hubspot: no batch subscription statuses (%s); reading opt-outs only", exc.message
            )
            self._batch_consent = False
            return {}
        return out

    async def _batch_read_by_email(
        self, emails: Sequence[str], properties: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """Records by lowercased primary email (100 a call), for those that exist. HubSpot
        also finds a record by one of its `hs_additional_emails`: such a record is keyed by
        its own primary address, never by the address asked for (it is not that address's
        record)."""
        return {
            str(email).lower(): record
            for record in await self._records_by_email(emails, properties)
            if (email := (record.get("properties") or {}).get("email"))
        }

    async def _records_by_email(
        self, emails: Sequence[str], properties: Sequence[str]
    ) -> list[dict[str, Any]]:
        """The records a batch read by `idProperty=email` finds for `emails` (100 a call):
        those with one of them as primary or as an additional email."""
        out: list[dict[str, Any]] = []
        unique = sorted({e.strip().lower() for e in emails})

        async def one(chunk: Sequence[str]) -> None:
            response = await self.client.request(
                "POST",
                f"{self.paths['contacts']}/batch/read",
                endpoint="POST contacts/batch/read",
                json={
                    "idProperty": "email",
                    "inputs": [{"id": e} for e in chunk],
                    "properties": list(properties),
                    "propertiesWithHistory": [],
                },
                idempotent=True,
                ok=(207,),
            )
            out.extend(response.json().get("results") or [])

        await asyncio.gather(
            *(one(unique[i : i + BATCH_INPUTS]) for i in range(0, len(unique), BATCH_INPUTS))
        )
        return out


def _required_scopes(exc: ApiError) -> str:
    """The scopes a 403 `MISSING_SCOPES` answer names (`errors[].context.
    requiredGranularScopes`), comma-separated ("" when it names none)."""
    body = exc.body if isinstance(exc.body, Mapping) else {}
    scopes: list[str] = []
    for error in body.get("errors") or []:
        context = error.get("context") if isinstance(error, Mapping) else None
        for scope in (context or {}).get("requiredGranularScopes") or []:
            if str(scope) not in scopes:
                scopes.append(str(scope))
    return ", ".join(scopes)
