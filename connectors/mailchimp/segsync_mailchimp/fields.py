"""How canonical fields, consent and engagement map onto Mailchimp, as tables.

- a canonical field becomes a merge field whose tag is `merge_tag_for(name)` (the defaults
  table, else the name uppercased, letters/digits/underscore, at most 10 characters) and
  whose type is `MERGE_TYPE_BY_FIELD_TYPE[spec.type]`; a `multi_enum` field becomes an
  interest category (checkboxes) whose interests are its options;
- consent statuses map both ways through `STATUS_TO_CONSENT` / `CONSENT_TO_STATUS`
  (`non_subscribed` is Mailchimp's `transactional`; `bounced` is `cleaned`);
- engagement Mailchimp reports is read through `ENGAGEMENT_PATHS`, never written.

The mapping (the connector's own, else the `mapping.yaml` this package ships) decides where a
field lives when it maps that field with the schema's type and can write it (e.g.
`first_name` -> `merge_fields.FNAME`, `language` -> the member's `language`); other schema
fields get a merge field of their own. `member_places` makes that decision once per config
and mapping; the compiler and the connector both use it, so a rule on `company` names the
merge field the connector writes, whatever the mapping renamed it to.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Mapping
from typing import Any

from segsync.mapping import FieldMapping, MappingError, PlatformMapping, load_mapping
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema
from segsync_mailchimp.config import MailchimpConfig

__all__ = [
    "CONSENT_TO_STATUS",
    "DEFAULT_MERGE_TAGS",
    "ENGAGEMENT_PATHS",
    "EVIDENCE_STATUSES",
    "MERGE_TYPE_BY_FIELD_TYPE",
    "OPT_IN_DETAILS",
    "STATUS_TO_CONSENT",
    "FieldPlace",
    "default_mapping",
    "from_merge_value",
    "member_places",
    "merge_field_body",
    "merge_tag_for",
    "place_fields",
    "to_merge_value",
]

#: canonical field -> Mailchimp's default merge tag
DEFAULT_MERGE_TAGS: dict[str, str] = {
    "first_name": "FNAME",
    "last_name": "LNAME",
    "phone": "PHONE",
    "address": "ADDRESS",
    "birthday": "BIRTHDAY",
}

#: canonical type -> merge field type (multi_enum is an interest category instead)
MERGE_TYPE_BY_FIELD_TYPE: dict[FieldType, str] = {
    FieldType.TEXT: "text",
    FieldType.NUMBER: "number",
    FieldType.INTEGER: "number",
    FieldType.BOOLEAN: "dropdown",
    FieldType.DATE: "date",
    FieldType.DATETIME: "text",  # a date merge field would drop the time of day
    FieldType.ENUM: "dropdown",
    FieldType.PHONE: "phone",
}

STATUS_TO_CONSENT: dict[str, ConsentStatus] = {
    "subscribed": ConsentStatus.SUBSCRIBED,
    "unsubscribed": ConsentStatus.UNSUBSCRIBED,
    "cleaned": ConsentStatus.BOUNCED,
    "pending": ConsentStatus.PENDING,
    "transactional": ConsentStatus.NON_SUBSCRIBED,
    "archived": ConsentStatus.NON_SUBSCRIBED,
}

#: statuses that are evidence of consent as Mailchimp holds it (`archived` is a deletion,
#: not a consent statement); the evidence of each is `status=<status>`
EVIDENCE_STATUSES = frozenset({"subscribed", "unsubscribed", "cleaned", "pending", "transactional"})

#: member fields that accompany an opt-in's evidence where present (when and from where)
OPT_IN_DETAILS = ("timestamp_opt", "ip_opt")

CONSENT_TO_STATUS: dict[ConsentStatus, str] = {
    ConsentStatus.SUBSCRIBED: "subscribed",
    ConsentStatus.UNSUBSCRIBED: "unsubscribed",
    ConsentStatus.BOUNCED: "cleaned",
    ConsentStatus.PENDING: "pending",
    ConsentStatus.NON_SUBSCRIBED: "transactional",
}

#: canonical engagement name -> dotted path in a member record (read-only), used when no
#: mapping file says otherwise
ENGAGEMENT_PATHS: dict[str, str] = {
    "open_rate": "stats.avg_open_rate",
    "click_rate": "stats.avg_click_rate",
    "member_rating": "member_rating",
    "opted_in_at": "timestamp_opt",
    "signup_at": "timestamp_signup",
    "signup_source": "source",
}

log = logging.getLogger("segsync.mailchimp")

#: the merge field's date format segsync creates and writes
DATE_FORMAT = "MM/DD/YYYY"


def merge_tag_for(name: str, overrides: Mapping[str, str] | None = None) -> str:
    """The merge tag of canonical field `name` (overrides, defaults, else derived)."""
    if overrides and name in overrides:
        return overrides[name].upper()
    if name in DEFAULT_MERGE_TAGS:
        return DEFAULT_MERGE_TAGS[name]
    tag = re.sub(r"[^A-Z0-9_]", "", name.upper())[:10]
    return tag or "MMERGE"


def merge_field_body(
    name: str, tag: str, spec: FieldSpec, merge_type: str | None = None
) -> dict[str, Any]:
    """The POST body creating the merge field for a canonical field."""
    merge_type = merge_type or MERGE_TYPE_BY_FIELD_TYPE[spec.type]
    if spec.type is FieldType.ENUM and not spec.options:
        merge_type = "text"
    body: dict[str, Any] = {"name": name[:50], "tag": tag, "type": merge_type, "public": False}
    if spec.type is FieldType.BOOLEAN:
        body["options"] = {"choices": ["true", "false"]}
    elif merge_type == "dropdown":
        body["options"] = {"choices": list(spec.options)}
    elif merge_type == "date":
        body["options"] = {"date_format": DATE_FORMAT}
    elif merge_type == "birthday":
        body["options"] = {"date_format": "MM/DD"}
    return body


def to_merge_value(spec: FieldSpec | None, value: Any) -> Any:
    """A canonical value as Mailchimp takes it ("" clears)."""
    if value is None:
        return ""
    if spec is None:
        return value if isinstance(value, str | int | float) else str(value)
    match spec.type:
        case FieldType.BOOLEAN:
            return "true" if value else "false"
        case FieldType.DATE:
            return value.isoformat() if isinstance(value, dt.date) else str(value)[:10]
        case FieldType.DATETIME:
            if isinstance(value, dt.datetime):
                return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
            return str(value)
        case FieldType.NUMBER | FieldType.INTEGER:
            return value
    return str(value)


def from_merge_value(spec: FieldSpec | None, value: Any) -> Any:
    """A Mailchimp merge value as the canonical type; "" is unset (None)."""
    if value == "" or value is None:
        return None
    if spec is None:
        return value
    try:
        return spec.coerce(value)
    except ValueError:
        return value


def default_mapping() -> PlatformMapping | None:
    """The mapping this package ships (`mapping.yaml`, named by the connector's
    `default_mapping`); None, with a warning, when it cannot be read."""
    try:
        return load_mapping("mailchimp")
    except (FileNotFoundError, MappingError) as exc:
        log.warning("mailchimp: default mapping unavailable, using merge fields only: %s", exc)
        return None


@dataclasses.dataclass(frozen=True)
class FieldPlace:
    """Where one canonical field lives on a member, and who encodes it.

    `entry` is the mapping entry that encodes the value (None: segsync's own merge-field
    table); `path` is the dotted path in a member record (`merge_fields.FNAME`, `language`,
    `interests` for a group).
    """

    name: str
    spec: FieldSpec
    path: str
    entry: FieldMapping | None = None

    @property
    def group(self) -> bool:
        """A multi_enum field: an interest category whose interests are its options."""
        return self.spec.type is FieldType.MULTI_ENUM

    @property
    def merge_tag(self) -> str | None:
        """The merge tag when the field is a whole merge field (not part of one)."""
        head, _, rest = self.path.partition(".")
        return rest if head == "merge_fields" and rest and "." not in rest else None

    @property
    def merge_type(self) -> str:
        """The merge field type segsync creates for it."""
        if (
            self.entry is not None
            and self.spec.type is FieldType.DATE
            and (self.entry.format == "%m/%d")
        ):
            return "birthday"
        if self.spec.type is FieldType.ENUM and not self.spec.options:
            return "text"
        return MERGE_TYPE_BY_FIELD_TYPE.get(self.spec.type, "text")

    @property
    def readable(self) -> bool:
        return self.entry is None or self.entry.readable

    @property
    def plain(self) -> bool:
        """Values are stored as segsync's own table writes them (rules can compare them)."""
        entry = self.entry
        return entry is None or (
            entry.format == "iso" and not entry.values and entry.reduce is None
        )


def place_fields(
    schema: Schema, mapping: PlatformMapping | None, overrides: Mapping[str, str] | None = None
) -> dict[str, FieldPlace]:
    """Where each writable schema field lives (read-only ones are engagement, not placed).

    A config override (`merge_fields`) wins; then a mapping entry of the same type that can
    write; otherwise a merge field named by `merge_tag_for`.
    """
    places: dict[str, FieldPlace] = {}
    for name, spec in schema.fields.items():
        if spec.read_only:
            continue
        if spec.type is FieldType.MULTI_ENUM:
            places[name] = FieldPlace(name, spec, "interests")
            continue
        entry = mapping.fields.get(name) if mapping is not None else None
        if overrides and name in overrides:
            entry = None
        if entry is not None and (entry.type is not spec.type or not entry.writable):
            entry = None
        path = entry.path if entry is not None else f"merge_fields.{merge_tag_for(name, overrides)}"
        places[name] = FieldPlace(name, spec, path, entry)
    return places


def member_places(
    schema: Schema, mapping: PlatformMapping | None, config: MailchimpConfig | None
) -> dict[str, FieldPlace]:
    """`place_fields` for one connector config: its `merge_fields` overrides win, and the
    fields it declares as marketing permissions are not placed (they live in the member's
    `marketing_permissions`, which neither a merge field nor a saved segment holds).
    `config` None is the platform's defaults."""
    overrides = config.merge_fields if config is not None else {}
    places = place_fields(schema, mapping, overrides)
    for name in config.marketing_permissions if config is not None else ():
        places.pop(name, None)
    return places
