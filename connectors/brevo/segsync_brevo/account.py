"""The Brevo account as the connector sees it: attributes, the owned folder and its lists.

Contract (`Connector.check`, `Connector.prepare`, `Connector.account_identity`): the
identity is the account `GET /account` names (its `organization_id`, else the login);
`check` reads the account's attributes (the key works); `prepare` creates the attributes the
schema needs (UPPER_CASE names, the category and type of `ATTRIBUTE_TYPES`), the options of
category and multiple-choice attributes, the owned consent attribute, and the tag containers
(lists `tag: <name>` in the owned folder, or the options of the tags attribute); the folder
and its tag and base lists are segsync's by the ids the state recorded when segsync made them
(`recall`, `made`), never by name (a person's are left alone; see "folder and owned lists").
A canonical field's attribute is, in order: the config's `attribute_names`, the mapping's
`attributes.<NAME>` path, `ATTRIBUTE_NAMES`, then the field name in upper case. What the
last read showed of each contact is kept in a bounded cache (`KnownContact`) so writes send
only what differs.

Consent is evidence (`consent_of`): `emailBlacklisted` and `listUnsubscribed` on a declared
consent list or on a list segsync writes (`written_lists`) are opt-outs; membership of a
declared consent list and a confirmed double opt-in attribute are opt-ins; segsync's own
consent attribute is only an echo of what it wrote (`evidence=None`); nothing else is
consent. Only a contact whose status is `subscribed` may be in a list segsync writes
(`listable`), unless the user allows the list (`consent.allow_unconsented_in_lists`);
`check` refuses consent lists the account lacks.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from segsync.connector import AccountIdentity, Estimate, PreflightItem, Unwritable
from segsync.http import ApiError
from segsync.mapping import FieldMapping, PlatformMapping
from segsync.model import Consent, ConsentStatus, FieldSpec, FieldType
from segsync_brevo.client import BrevoCalls
from segsync_brevo.fields import CONSENT_VALUES, category_label, parse_time

__all__ = [
    "BASE_LIST_NAME",
    "IMPORT_LIST_PREFIX",
    "LIST_PAGE",
    "SEGMENT_LIST_PREFIX",
    "TAG_LIST_PREFIX",
    "BrevoAccount",
    "KnownContact",
]

log = logging.getLogger("segsync.brevo")

LIST_PAGE = 50
TAG_LIST_PREFIX = "tag: "
SEGMENT_LIST_PREFIX = "segment: "
BASE_LIST_NAME = "segsync contacts"
IMPORT_LIST_PREFIX = "import (temporary): "
"""Lists an import of contacts without opt-in lands in, deleted once the import is read back
(`/contacts/import` requires a list); `prepare` deletes any a killed run left behind."""
CREATING = "creating:"
"""The ref prefix of a folder or list whose creation started (an intent; then its name)."""
DOI_CONFIRMED = (1, "1", "Yes", "yes", True)
"""Values of a double-opt-in category attribute that mean "confirmed" (id 1, label Yes)."""


@dataclasses.dataclass
class KnownContact:
    """What the last read (or write) showed of one contact."""

    id: str
    blocklisted: bool
    tags: frozenset[str]
    fields: dict[str, Any]
    consent: ConsentStatus
    #: every list id the contact is in (owned or not)
    lists: frozenset[int] = frozenset()
    #: tags held in the tags attribute (contacts that may not be in tag lists)
    attribute_tags: frozenset[str] = frozenset()
    #: False when `fields` were not decoded (a lookup): every field is then sent
    fields_known: bool = True
    #: list ids the contact unsubscribed from (`listUnsubscribed`): never added to again
    unsubscribed_lists: frozenset[int] = frozenset()


class BrevoAccount(BrevoCalls):
    """Attributes, folder and owned lists of the account (a connector part)."""

    #: canonical field type -> (attribute category, attribute type)
    ATTRIBUTE_TYPES: ClassVar[dict[FieldType, tuple[str, str]]]
    #: canonical field names with a Brevo attribute of their own
    ATTRIBUTE_NAMES: ClassVar[dict[str, str]]

    field_map: PlatformMapping | None
    _attributes: dict[str, dict[str, Any]] | None
    _folder_id: int | None
    _owned_lists: dict[str, int] | None  # list name -> id, in the owned folder
    _folder_lists: list[tuple[str, int]] | None = None  # every list of the folder
    _folder_listing: list[tuple[str, int]] | None = None  # every folder, read once a run
    #: told (`recall`): the folder segsync made (0: none yet), None: not told
    _made_folder: int | None = None
    _made_names: dict[int, str]  # list id -> the name it stands for, of the lists made
    _adoptable: bool = False  # a state from before the records: `_adopt` may run once
    _made: list[tuple[str, str, str]]  # made since last asked (`made`)
    _record: Callable[[str, str, str], None] | None = None  # records at once (`recall`)
    _creating: dict[tuple[str, str], str]  # (kind, name) -> the name a killed run made
    _known: collections.OrderedDict[str, KnownContact]
    _reachable: collections.OrderedDict[str, bool]  # email -> may be in segsync's lists
    #: email -> the list ids it unsubscribed from, as last read (bounded like `_reachable`)
    _left_lists: dict[str, frozenset[int]]
    _known_limit: int

    async def check(self) -> None:
        """The key works (the attributes can be read) and every declared consent list exists.

        Raises ApiError naming the place in the config and the fix otherwise."""
        await self._load_attributes(refresh=True)
        for list_id in self.config.consent.lists:
            response = await self._call(
                "GET", f"/contacts/lists/{list_id}", "/contacts/lists/{listId}", ok=(404,)
            )
            if response.status_code == 200:
                await self._refuse_own_consent_list(list_id, response.json() or {})
            if response.status_code == 404:
                raise ApiError(
                    platform=self.name,
                    endpoint="GET /contacts/lists/{listId}",
                    status=404,
                    code="consent_list_not_found",
                    message=(
                        f"brevo.consent.lists: list {list_id} does not exist on this Brevo "
                        "account; fix: use the id shown in Brevo under Contacts > Lists, or "
                        "remove it from brevo.consent.lists"
                    ),
                )
        doi = self.config.consent.double_opt_in_attribute
        if doi is not None and doi.upper() not in (self._attributes or {}):
            raise ApiError(
                platform=self.name,
                endpoint="GET /contacts/attributes",
                status=404,
                code="consent_attribute_not_found",
                message=(
                    f"brevo.consent.double_opt_in_attribute: {doi.upper()} is not an attribute "
                    "of this Brevo account; fix: name the attribute Brevo sets on a confirmed "
                    "double opt-in (usually DOUBLE_OPT-IN), or remove the key"
                ),
            )

    rate_limit_headers: ClassVar[tuple[str, ...]] = (
        "x-sib-ratelimit-remaining",
        "x-sib-ratelimit-limit",
        "x-sib-ratelimit-reset",
    )

    async def audience_size(self) -> int:
        """The account's contacts: `count` of a one-contact page of `GET /contacts`."""
        response = await self._call("GET", "/contacts", "/contacts", params={"limit": 1})
        return int((response.json() or {}).get("count") or 0)

    def estimate(self, contacts: int) -> Estimate:
        """A first sync: the full read (pages of `read_page_size`), then every contact
        written, by import when the cost model (`cost`, tier rates) finds it cheaper."""
        base = super().estimate(contacts)
        cost = getattr(self, "cost", None)
        if cost is None or contacts == 0:
            return base
        reads = -(-contacts // self.capabilities.read_page_size)
        read_seconds = reads / cost.contacts_per_second
        if contacts >= cost.threshold():
            calls = reads + cost.import_calls(contacts)
            seconds = read_seconds + cost.import_seconds(contacts)
            note = "written by one import (Brevo processes it asynchronously)"
        else:
            calls = reads + contacts
            seconds = read_seconds + cost.single_seconds(contacts)
            note = "written one call each (fewer than an import pays off for)"
        return Estimate(contacts=contacts, calls=calls, seconds=seconds, notes=(note,))

    async def preflight(self) -> list[PreflightItem]:
        """The declared consent lists (name and size), read only; `check` refuses the
        missing ones."""
        items: list[PreflightItem] = []
        for list_id in self.config.consent.lists:
            response = await self._call(
                "GET", f"/contacts/lists/{list_id}", "/contacts/lists/{listId}", ok=(404,)
            )
            if response.status_code == 404:
                items.append(PreflightItem(
                    label=f"consent list {list_id}", value="missing",
                    problem=f"brevo.consent.lists: list {list_id} does not exist",
                ))
                continue
            found = response.json() or {}
            items.append(PreflightItem(
                label=f"consent list {list_id}",
                value=f"{found.get('name', '')} ({found.get('uniqueSubscribers', '?')} contacts)",
            ))
        if not self.config.consent.lists:
            items.append(PreflightItem(
                label="consent lists",
                value="none declared (list membership is not read as consent)",
            ))
        return items

    async def _refuse_own_consent_list(self, list_id: int, found: Mapping[str, Any]) -> None:
        """Raise when a declared consent list is one segsync writes (a tag, segment, base
        or import list of its folder): its members are segsync's own writes, never evidence."""
        name = str(found.get("name") or "")
        own = name.startswith(
            (TAG_LIST_PREFIX, SEGMENT_LIST_PREFIX, IMPORT_LIST_PREFIX)
        ) or name == BASE_LIST_NAME
        folder = found.get("folderId")
        if not own or folder is None or int(folder) != await self._folder(create=False):
            return
        raise ApiError(
            platform=self.name,
            endpoint="GET /contacts/lists/{listId}",
            status=409,
            code="consent_list_is_segsyncs",
            message=(
                f"brevo.consent.lists: list {list_id} ({name!r}, in segsync's folder "
                f"{self.config.folder!r}) is a list segsync writes: its members are segsync's "
                "own writes, never consent evidence; fix: declare the list people sign up to "
                "(a form's or a double opt-in's list), not one of segsync's"
            ),
        )

    async def account_identity(self) -> AccountIdentity:
        """The account the key reaches, from `GET /account`: its `organization_id` where
        Brevo answers one (the current API does; the 2025-02 description lists only the
        login `email` and `companyName`), else the login email (`login:<email>`), which
        names one Brevo account. The label is the company name and the login."""
        body = (await self._call("GET", "/account", "/account")).json() or {}
        email = str(body.get("email") or "")
        company = str(body.get("companyName") or "")
        organization = body.get("organization_id")
        if organization:
            account_id = f"org:{organization}"
        elif email:
            account_id = f"login:{email.lower()}"
        else:
            raise ValueError("GET /account answered without organization_id or email")
        label = " ".join(
            part for part in (company, f"(login {email})" if email else "") if part
        )
        return AccountIdentity(id=account_id, label=label or account_id)

    # -- consent -------------------------------------------------------------------------

    def _doi_attribute(self) -> str | None:
        """The attribute whose confirmed value is an opt-in: declared, or Brevo's own
        `DOUBLE_OPT-IN` when segsync asks for double opt-in itself (`double_opt_in`)."""
        declared = self.config.consent.double_opt_in_attribute
        if declared is not None:
            return declared.upper()
        return "DOUBLE_OPT-IN" if self.config.double_opt_in is not None else None

    def written_lists(self) -> dict[int, str]:
        """List id -> name of the lists of the owned folder that segsync writes (tag lists,
        segment lists, its base and import lists), as far as they are loaded; a
        `segment: ` list the state does not record as segsync's is not among them."""
        refs: frozenset[int] | None = getattr(self, "_segment_refs", None)
        out = {}
        for name, list_id in (self._owned_lists or {}).items():
            if name.startswith((TAG_LIST_PREFIX, IMPORT_LIST_PREFIX)) or name == BASE_LIST_NAME or (
                name.startswith(SEGMENT_LIST_PREFIX) and (refs is None or list_id in refs)
            ):
                out[list_id] = name
        return out

    def consent_of(
        self, raw: Mapping[str, Any], attributes: Mapping[str, Mapping[str, Any]]
    ) -> Consent:
        """The consent a Brevo contact shows, with the evidence it rests on (None: no proof).

        Opt-outs first (the answer that cannot email someone wins): `emailBlacklisted`, then
        `listUnsubscribed` on a declared consent list or on a list segsync writes (Brevo
        campaigns go to those lists: their unsubscribe link is how a person says no; the
        evidence names the list). Opt-ins only from a declared consent
        list in `listIds` or the confirmed double-opt-in attribute. Otherwise segsync's own
        attribute is echoed without evidence, and without it the status is unknown
        (`non_subscribed`)."""
        values = raw.get("attributes") or {}
        name = self.config.consent_attribute.upper()
        label = category_label(attributes.get(name), values.get(name))
        updated = parse_time(str(raw["modifiedAt"])) if raw.get("modifiedAt") else None

        def consent(status: ConsentStatus, evidence: str | None) -> Consent:
            return Consent(status=status, updated_at=updated, source=self.name, evidence=evidence)

        declared = self.config.consent.lists
        left = {int(i) for i in raw.get("listUnsubscribed") or ()}
        unsubscribed = [i for i in declared if i in left]
        written = self.written_lists()
        # every opt-out signal present is named, so a new act (a per-list unsubscribe by a
        # blocklisted person) changes the evidence and counts as a new opt-out
        per_list = [f"listUnsubscribed={i}" for i in sorted(unsubscribed)] + [
            f"listUnsubscribed={i} ({written[i]})"
            for i in sorted(left & set(written))
            if i not in unsubscribed
        ]
        if raw.get("emailBlacklisted"):
            bounced = label == ConsentStatus.BOUNCED
            status = ConsentStatus.BOUNCED if bounced else ConsentStatus.UNSUBSCRIBED
            return consent(status, "; ".join(["emailBlacklisted=true", *per_list]))
        if per_list:
            return consent(ConsentStatus.UNSUBSCRIBED, "; ".join(per_list))
        joined = [i for i in declared if i in set(raw.get("listIds") or ())]
        if joined:
            return consent(ConsentStatus.SUBSCRIBED, f"listIds={joined[0]}")
        doi = self._doi_attribute()
        if doi is not None and values.get(doi) is not None:
            raw_doi = values[doi]
            shown = category_label(attributes.get(doi), raw_doi)
            if raw_doi in DOI_CONFIRMED or shown in DOI_CONFIRMED:
                return consent(ConsentStatus.SUBSCRIBED, f"{doi}=1")
        if label in (ConsentStatus.SUBSCRIBED, ConsentStatus.PENDING, ConsentStatus.NON_SUBSCRIBED):
            return consent(ConsentStatus(label), None)  # segsync's own write: an echo
        return consent(ConsentStatus.NON_SUBSCRIBED, None)  # unknown (or an opt-out lifted)

    def allowed_unconsented(self, list_id: int, name: str | None) -> bool:
        """True when the user allows contacts without opt-in in this segsync list."""
        allowed = self.config.consent.allow_unconsented_in_lists
        return str(list_id) in allowed or (name is not None and name in allowed)

    def known_from(
        self,
        raw: Mapping[str, Any],
        attributes: Mapping[str, Mapping[str, Any]],
        tag_ids: Mapping[int, str],
        fields: dict[str, Any] | None = None,
    ) -> KnownContact:
        """What a contact as Brevo returns it shows: tags (lists and attribute), consent."""
        values = raw.get("attributes") or {}
        held = frozenset(values.get(self.config.tags_attribute.upper()) or ())
        lists = frozenset(int(i) for i in raw.get("listIds") or ())
        left = frozenset(int(i) for i in raw.get("listUnsubscribed") or ())
        if self.config.tags == "attribute":
            tags = held
        else:
            # leaving a tag list (its unsubscribe link) is an opt-out, not an untagging
            tags = frozenset(tag_ids[i] for i in lists | left if i in tag_ids) | held
        return KnownContact(
            str(raw["id"]),
            bool(raw.get("emailBlacklisted")),
            tags,
            dict(fields or {}),
            self.consent_of(raw, attributes).status,
            lists=lists,
            attribute_tags=held,
            fields_known=fields is not None,
            unsubscribed_lists=left,
        )

    async def _tag_ids(self) -> dict[int, str]:
        """List id -> tag of the owned tag lists (empty when tags are an attribute)."""
        if self.config.tags != "lists":
            return {}
        lists = await self._lists()
        return {
            i: n[len(TAG_LIST_PREFIX) :] for n, i in lists.items() if n.startswith(TAG_LIST_PREFIX)
        }

    #: a catalog read this recently (seconds) counts as fresh for `refresh_after`
    ATTRIBUTES_FRESH_SECONDS: ClassVar[float] = 30.0

    async def _load_attributes(
        self, *, refresh: bool = False, refresh_after: float | None = None
    ) -> dict[str, dict[str, Any]]:
        """The attribute catalog: read once, again when `refresh`, or when `refresh_after`
        seconds have passed since it was read (a read right after `check` or right after
        the pull, such as the re-check before apply, uses the catalog just read)."""
        at: float | None = getattr(self, "_attributes_at", None)
        stale = (
            refresh_after is not None
            and (at is None or self.clock.monotonic() - at > refresh_after)
        )
        if self._attributes is None or refresh or stale:
            data = (await self._call("GET", "/contacts/attributes", "/contacts/attributes")).json()
            self._attributes = {a["name"].upper(): a for a in data.get("attributes", [])}
            self._attributes_at = self.clock.monotonic()
        return self._attributes

    def _mapped(self, field_name: str) -> FieldMapping | None:
        return self.field_map.fields.get(field_name) if self.field_map is not None else None

    def attribute_name(self, field_name: str) -> str:
        """The Brevo attribute of a canonical field: config, then the mapping, then a default."""
        if field_name in self.config.attribute_names:
            return self.config.attribute_names[field_name].upper()
        entry = self._mapped(field_name)
        if entry is not None and entry.path.startswith("attributes."):
            return entry.path.split(".", 1)[1].upper()
        if field_name in self.ATTRIBUTE_NAMES:
            return self.ATTRIBUTE_NAMES[field_name]
        return re.sub(r"[^A-Z0-9_]", "_", field_name.upper())

    def _wanted_type(self, spec: FieldSpec) -> tuple[str, str]:
        if spec.type is FieldType.ENUM and not spec.options:
            return ("normal", "text")
        return self.ATTRIBUTE_TYPES[spec.type]

    async def prepare(
        self, fields: Mapping[str, FieldSpec], tags: Sequence[str]
    ) -> list[Unwritable]:
        """Create the attributes, options, folder and tag lists that writes need; nothing is
        reported unwritable (an empty list)."""
        attributes = await self._load_attributes()
        for name, spec in fields.items():
            if spec.read_only:
                continue
            category, kind = self._wanted_type(spec)
            await self._ensure_attribute(
                self.attribute_name(name), category, kind, spec.options, attributes
            )
        consent_options = tuple(s.value for s in CONSENT_VALUES)
        await self._ensure_attribute(
            self.config.consent_attribute.upper(),
            "category",
            "category",
            consent_options,
            attributes,
            values=CONSENT_VALUES,
        )
        # the tags attribute also holds the tags of contacts that may not be in tag lists
        await self._ensure_attribute(
            self.config.tags_attribute.upper(),
            "normal",
            "multiple-choice",
            tuple(tags),
            attributes,
        )
        if self.config.tags == "lists":
            await self._tag_lists(tags, create=True)
            await self._drop_stale_import_lists()
        if self.config.consent.allow_unconsented_in_lists:
            log.warning(
                "brevo: contacts without opt-in evidence may be placed in %s "
                "(brevo.consent.allow_unconsented_in_lists): Brevo campaigns to these lists "
                "reach every member who is not blocklisted",
                ", ".join(self.config.consent.allow_unconsented_in_lists),
            )
        return []

    async def _drop_stale_import_lists(self) -> None:
        """Delete the temporary import lists a killed run left behind (their members
        would otherwise stay reachable)."""
        lists = await self._lists()
        for name, list_id in list(lists.items()):
            if name.startswith(IMPORT_LIST_PREFIX):
                await self._call(
                    "DELETE", f"/contacts/lists/{list_id}", "/contacts/lists/{listId}", ok=(404,)
                )
                del lists[name]

    async def _ensure_attribute(
        self,
        name: str,
        category: str,
        kind: str,
        options: Sequence[str],
        attributes: dict[str, dict[str, Any]],
        values: Mapping[Any, int] | None = None,
    ) -> None:
        existing = attributes.get(name)
        path = f"/contacts/attributes/{category}/{urllib.parse.quote(name, safe='')}"
        label = "/contacts/attributes/{category}/{name}"
        if existing is None:
            body: dict[str, Any] = {}
            if category == "category":
                body["enumeration"] = [
                    {"value": (values or {}).get(o, i + 1), "label": o}
                    for i, o in enumerate(options)
                ]
                body["type"] = "category"
            else:
                body["type"] = kind
                if kind == "multiple-choice":
                    body["multiCategoryOptions"] = list(options) or ["-"]
            await self._call("POST", path, label, json_body=body, idempotent=True, ok=(400,))
            entry: dict[str, Any] = {"name": name, "category": category, "type": kind}
            if category == "category":
                entry["enumeration"] = body["enumeration"]
            if kind == "multiple-choice":
                entry["multiCategoryOptions"] = body["multiCategoryOptions"]
            attributes[name] = entry
            return
        if existing.get("category") == "category":
            enumeration = list(existing.get("enumeration") or [])
            labels = {e["label"] for e in enumeration}
            missing = [o for o in options if o not in labels]
            if missing:
                top = max([0, *(int(e["value"]) for e in enumeration)])
                added = [
                    {"value": (values or {}).get(o, top + i + 1), "label": o}
                    for i, o in enumerate(missing)
                ]
                await self._call(
                    "PUT",
                    f"/contacts/attributes/category/{urllib.parse.quote(name, safe='')}",
                    label,
                    json_body={"enumeration": enumeration + added},
                )
                existing["enumeration"] = enumeration + added
        elif existing.get("type") == "multiple-choice":
            await self._ensure_options(name, options)

    async def _ensure_tags_attribute(self, tags: Iterable[str]) -> None:
        """The tags attribute exists and has every one of `tags` as an option."""
        attributes = await self._load_attributes()
        name = self.config.tags_attribute.upper()
        await self._ensure_attribute(name, "normal", "multiple-choice", sorted(tags), attributes)

    async def _ensure_options(self, name: str, options: Iterable[str]) -> None:
        attributes = await self._load_attributes()
        existing = attributes[name]
        have = list(existing.get("multiCategoryOptions") or [])
        missing = sorted(set(options) - set(have))
        if missing:
            await self._call(
                "PUT",
                f"/contacts/attributes/normal/{urllib.parse.quote(name, safe='')}",
                "/contacts/attributes/{category}/{name}",
                json_body={"multiCategoryOptions": missing},
            )
            existing["multiCategoryOptions"] = have + missing

    # -- folder and owned lists ----------------------------------------------------------
    #
    # segsync's folder and the tag and base lists in it are segsync's by the ids the state
    # recorded when segsync made them (`recall`, `made`), never by name: a folder of the
    # configured name, or a `tag: X` list, that a person made is left alone (segsync makes
    # its own under a distinct name `<name> [2]`, with a warning). Not told (`recall` never
    # called: the connector used without the engine), everything goes by name.

    async def recall(
        self, objects: Sequence[tuple[str, str, str]], *, first_run: bool,
        record: Callable[[str, str, str], None] | None = None,
    ) -> None:
        """Learn the folder (`folder`) and lists (`list`) segsync made, as the state records
        them; `first_run`: the state never read this account, so nothing here is segsync's;
        `record`: records at once what is made (else `made` collects it). Before a creation
        the intent (ref `creating:<name>`) is recorded: a run killed before the answer was
        recorded leaves it, and the next run adopts the object of that exact name.

        Upgrade: a state from before these records (read before, nothing recorded) adopts
        the one folder of the configured name and its tag and base lists (`_adopt`, with a
        warning), or refuses to guess when a name is there twice."""
        self._folder_id = None
        self._owned_lists = None
        self._folder_lists = None
        self._folder_listing = None
        self._made_names = {}
        self._made_folder = None
        self._record = record
        self._creating = {}
        for kind, name, ref in objects:
            if ref.startswith(CREATING):
                self._creating[(kind, name)] = ref[len(CREATING):]
            if kind == "folder":
                self._made_folder = int(ref) if ref.isdigit() else 0
            elif kind == "list" and ref.isdigit():
                self._made_names[int(ref)] = name
        self._adoptable = not first_run and self._made_folder is None and not self._made_names
        if self._made_folder is None and not self._adoptable:
            self._made_folder = 0  # no folder yet: adopt none, ever
            self._note("folder", "folder", "")

    def _note(self, kind: str, name: str, ref: str) -> None:
        """Record (or collect for `made`) an object made, or the intent to make it."""
        if self._record is not None:
            self._record(kind, name, ref)
        else:
            self._made.append((kind, name, ref))

    def _intended(self, kind: str, name: str, found: Sequence[tuple[str, int]]) -> int | None:
        """The object a killed run created under its recorded intent, found by exact name."""
        named = getattr(self, "_creating", {}).pop((kind, name), None)
        ids = [i for n, i in found if named is not None and n == named]
        if ids:
            self._note(kind, name, str(ids[-1]))
        return ids[-1] if ids else None

    def made(self) -> list[tuple[str, str, str]]:
        """The folder and lists made (or adopted) since last asked, for the state; drained."""
        out, self._made = list(dict.fromkeys(self._made)), []
        return out

    def _told(self) -> bool:
        return getattr(self, "_made_folder", None) is not None or getattr(
            self, "_adoptable", False
        )

    async def _folders(self) -> list[tuple[str, int]]:
        """Every folder of the account: (name, id); read once a run (`recall` and a folder
        segsync creates or deletes refresh it)."""
        cached: list[tuple[str, int]] | None = getattr(self, "_folder_listing", None)
        if cached is None:
            cached = self._folder_listing = await self._read_folders()
        return list(cached)

    async def _read_folders(self) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        offset = 0
        while True:
            data = (
                await self._call(
                    "GET",
                    "/contacts/folders",
                    "/contacts/folders",
                    params={"limit": LIST_PAGE, "offset": offset, "sort": "asc"},
                )
            ).json()
            folders = data.get("folders") or []
            out += [(str(f.get("name") or ""), int(f["id"])) for f in folders]
            offset += len(folders)
            if not folders or offset >= int(data.get("count") or 0):
                return out

    async def _folder(self, *, create: bool) -> int | None:
        """segsync's folder (made when `create`): the one the state records; not told, the
        one of the configured name."""
        if self._folder_id is None:
            folders = await self._folders()
            if not self._told():
                named = [i for n, i in folders if n == self.config.folder]
                self._folder_id = named[-1] if named else None
            elif not self._made_folder and (
                adopted := self._intended("folder", "folder", folders)
            ) is not None:
                self._folder_id = self._made_folder = adopted
            elif self._made_folder:
                if any(i == self._made_folder for _n, i in folders):
                    self._folder_id = self._made_folder
                else:  # deleted by a person: its lists are gone with it
                    self._made_folder, self._made_names = 0, {}
            elif getattr(self, "_adoptable", False):
                await self._adopt([i for n, i in folders if n == self.config.folder])
            if self._folder_id is None and create:
                taken = {n.casefold() for n, _i in folders}
                name = _free(self.config.folder, taken)
                if name != self.config.folder:
                    log.warning(
                        "brevo: the folder %r was not created by segsync: segsync leaves it "
                        "alone and creates %r instead", self.config.folder, name,
                    )
                if self._told():
                    self._note("folder", "folder", CREATING + name)
                response = await self._call(
                    "POST", "/contacts/folders", "/contacts/folders", json_body={"name": name}
                )
                self._folder_id = self._made_folder = int(response.json()["id"])
                self._note("folder", "folder", str(self._folder_id))
                self._folder_lists = []
                self._folder_listing = [*folders, (name, self._folder_id)]
        return self._folder_id

    async def _adopt(self, named: list[int]) -> None:
        """Upgrade from a state without records (segsync's lists were known by name): adopt
        the one folder of the configured name and its tag and base lists, each name once;
        other lists there are a person's and stay theirs. Raises ApiError (the platform sits
        this run out) when two folders have that name or a segsync list name is there twice:
        which one is segsync's cannot be told, and not reading them would untag people."""
        if not named:
            self._adoptable, self._made_folder = False, 0
            self._note("folder", "folder", "")
            return
        lists = await self._lists_in(named[0]) if len(named) == 1 else []
        names = [n.casefold() for n, _i in lists
                 if n.startswith(TAG_LIST_PREFIX) or n == BASE_LIST_NAME]
        twice = sorted({n for n in names if names.count(n) > 1})
        if len(named) > 1 or twice:
            what = (f"{len(named)} folders are named {self.config.folder!r}" if len(named) > 1
                    else f"the folder {self.config.folder!r} (id {named[0]}) holds "
                    f"{', '.join(repr(n) for n in twice)} more than once")
            raise ApiError(
                platform=self.name, endpoint="GET /contacts/folders", status=409,
                code="owned_folder_ambiguous",
                message=(
                    f"{what}, and this state (from an earlier segsync) does not record which "
                    "is segsync's; fix: rename or move the folder or list a person made, then "
                    "run again"
                ),
            )
        log.warning(
            "brevo: adopting the folder %r (id %d) and its tag and base lists as segsync's "
            "(made by an earlier segsync that did not record them); other lists there stay "
            "a person's", self.config.folder, named[0],
        )
        self._adoptable = False
        self._folder_id = self._made_folder = named[0]
        self._note("folder", "folder", str(named[0]))
        self._folder_lists = lists
        for name, list_id in lists:
            if name.startswith(TAG_LIST_PREFIX) or name == BASE_LIST_NAME:
                self._made_names[list_id] = name
                self._note("list", name, str(list_id))

    async def _lists_in(self, folder: int) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        offset = 0
        while True:
            data = (
                await self._call(
                    "GET",
                    f"/contacts/folders/{folder}/lists",
                    "/contacts/folders/{folderId}/lists",
                    params={"limit": LIST_PAGE, "offset": offset, "sort": "asc"},
                )
            ).json()
            lists = data.get("lists") or []
            out += [(str(item["name"]), int(item["id"])) for item in lists]
            offset += len(lists)
            if not lists or offset >= int(data.get("count") or 0):
                return out

    async def _all_lists(self, *, create_folder: bool = False) -> list[tuple[str, int]]:
        """Every list of segsync's folder, whoever made it: (name, id)."""
        if getattr(self, "_folder_lists", None) is None:
            folder = await self._folder(create=create_folder)
            if folder is None:
                return []
            self._folder_lists = await self._lists_in(folder)
        return self._folder_lists or []

    async def _lists(self, *, create_folder: bool = False) -> dict[str, int]:
        """The lists of segsync's folder that segsync made, by name (a tag list made under a
        distinct name by the name it stands for): told, those the state records or this run
        made, its temporary import lists and every `segment: ` list (segments.py tells
        those apart); not told, every list of the folder."""
        if self._owned_lists is None:
            lists = await self._all_lists(create_folder=create_folder)
            if not self._told():
                self._owned_lists = dict(lists)
            else:
                made = getattr(self, "_made_names", {})
                for kind, name in [k for k in getattr(self, "_creating", {}) if k[0] == "list"]:
                    adopted = self._intended(kind, name, lists)
                    if adopted is not None:
                        made[adopted] = name
                self._owned_lists = {
                    n: i for n, i in lists
                    if n.startswith((SEGMENT_LIST_PREFIX, IMPORT_LIST_PREFIX)) and i not in made
                } | {made[i]: i for _n, i in lists if i in made}
        return self._owned_lists

    async def _owned_list(self, name: str) -> int:
        lists = await self._lists(create_folder=True)
        if name not in lists:
            folder = await self._folder(create=True)
            named = name
            if self._told() and not name.startswith(SEGMENT_LIST_PREFIX):
                named = _free(name, {n.casefold() for n, _i in await self._all_lists()})
                if named != name:
                    log.warning(
                        "brevo: the list %r in folder %r was not created by segsync: segsync "
                        "leaves it alone and creates %r instead", name, self.config.folder, named,
                    )
            if self._told() and not name.startswith(SEGMENT_LIST_PREFIX):
                self._note("list", name, CREATING + named)
            response = await self._call(
                "POST",
                "/contacts/lists",
                "/contacts/lists",
                json_body={"name": named, "folderId": folder},
            )
            lists[name] = list_id = int(response.json()["id"])
            if self._folder_lists is not None:
                self._folder_lists.append((named, list_id))
            if not name.startswith(SEGMENT_LIST_PREFIX):  # told or not: `made` has it
                self._made_names[list_id] = name
                self._note("list", name, str(list_id))
        return lists[name]

    async def _tag_lists(self, tags: Iterable[str], *, create: bool) -> dict[str, int]:
        """Tag -> list id for `tags` (created when `create`)."""
        out = {}
        for tag in sorted(set(tags)):
            name = TAG_LIST_PREFIX + tag
            if create:
                out[tag] = await self._owned_list(name)
            else:
                lists = await self._lists()
                if name in lists:
                    out[tag] = lists[name]
        return out

    def _remember(self, email: str, known: KnownContact) -> None:
        """Keep what was seen of a contact; the least recently seen go first past the limit."""
        self._known[email] = known
        self._known.move_to_end(email)
        while len(self._known) > self._known_limit:
            self._known.popitem(last=False)
        self._set_reachable(
            email, known.consent is ConsentStatus.SUBSCRIBED and not known.blocklisted
        )
        self._left_lists[email] = known.unsubscribed_lists

    def _set_reachable(self, email: str, reachable: bool) -> None:
        """Whether a contact may be in segsync's lists, as last read or written (bounded)."""
        self._reachable[email] = reachable
        self._reachable.move_to_end(email)
        while len(self._reachable) > self._known_limit:
            gone, _ = self._reachable.popitem(last=False)
            self._left_lists.pop(gone, None)

    async def _look_up(self, emails: Iterable[str]) -> None:
        """Read the contacts among `emails` that nothing read or written showed (one `GET`
        each, 100 at a time); those Brevo does not have stay unknown."""
        missing = [e for e in dict.fromkeys(emails) if e not in self._known]
        if not missing:
            return
        attributes = await self._load_attributes()
        tag_ids = await self._tag_ids()
        await self._lists()  # the lists segsync writes: a per-list unsubscribe is an opt-out

        async def look_up(email: str) -> None:
            raw = await self._get_contact(email)
            if raw is not None:
                self._remember(email, self.known_from(raw, attributes, tag_ids))

        for start in range(0, len(missing), 100):
            await asyncio.gather(*(look_up(e) for e in missing[start : start + 100]))


def _free(name: str, taken: set[str]) -> str:
    """`name`, or the first of `name [2]`, `name [3]`, ... that `taken` (casefolded) lacks."""
    n = 1
    found = name
    while found.casefold() in taken:
        n += 1
        found = f"{name} [{n}]"
    return found
