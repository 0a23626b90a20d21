"""How canonical fields, consent and engagement map onto Mailchimp, as tables.

- a canonical field becomes a merge field whose tag is `merge_tag_for(name)` (the defaults
  table, else the name uppercased, letters/digits/underscore, at most 10 characters) and
  whose type is `MERGE_TYPE_BY_FIELD_TYPE[spec.type]`; a `multi_enum` field becomes an
  interest category (checkboxes) whose interests are its options;
- consent statuses map both ways through `STATUS_TO_CONSENT` / `CONSENT_TO_STATUS`
  (`non_subscribed` is Mailchimp's `transactional`; `bounced` is `cleaned`);
- engagement Mailchimp reports is read through `ENGAGEMENT_PATHS`, never written.

The compiler and the connector both derive merge tags from here, so a rule on `country`
names the same merge field the connector writes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from segsync.model import ConsentStatus, FieldSpec, FieldType

__all__ = [
    "CONSENT_TO_STATUS",
    "DEFAULT_MERGE_TAGS",
    "ENGAGEMENT_PATHS",
    "MERGE_TYPE_BY_FIELD_TYPE",
    "STATUS_TO_CONSENT",
    "from_merge_value",
    "merge_field_body",
    "merge_tag_for",
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

CONSENT_TO_STATUS: dict[ConsentStatus, str] = {
    ConsentStatus.SUBSCRIBED: "subscribed",
    ConsentStatus.UNSUBSCRIBED: "unsubscribed",
    ConsentStatus.BOUNCED: "cleaned",
    ConsentStatus.PENDING: "pending",
    ConsentStatus.NON_SUBSCRIBED: "transactional",
}

#: canonical engagement name -> dotted path in a member record (read-only)
ENGAGEMENT_PATHS: dict[str, str] = {
    "open_rate": "stats.avg_open_rate",
    "click_rate": "stats.avg_click_rate",
    "member_rating": "member_rating",
    "opted_in_at": "timestamp_opt",
    "language": "language",
    "vip": "vip",
    "country_code": "location.country_code",
}

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


def merge_field_body(name: str, tag: str, spec: FieldSpec) -> dict[str, Any]:
    """The POST body creating the merge field for a canonical field."""
    merge_type = MERGE_TYPE_BY_FIELD_TYPE[spec.type]
    if spec.type is FieldType.ENUM and not spec.options:
        merge_type = "text"
    body: dict[str, Any] = {"name": name[:50], "tag": tag, "type": merge_type, "public": False}
    if spec.type is FieldType.BOOLEAN:
        body["options"] = {"choices": ["true", "false"]}
    elif merge_type == "dropdown":
        body["options"] = {"choices": list(spec.options)}
    elif merge_type == "date":
        body["options"] = {"date_format": DATE_FORMAT}
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
