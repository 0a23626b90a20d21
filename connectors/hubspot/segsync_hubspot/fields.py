"""Where canonical fields live on HubSpot, and how their values are written and read.

`PropertyTarget` says which contact property holds a canonical field, its HubSpot type and
field type, and whether segsync must create it. Built-in HubSpot properties come from a table
(`BUILTIN_TARGETS`, which follows the shipped `mapping.yaml`); a mapping that names another
property for a field moves it there (`mapped_target`); any other canonical field becomes a
custom property of the same (sanitised) name whose type follows the canonical type
(`TYPE_FOR_FIELD`). Values on the wire are strings: numbers as decimals, booleans as
`true`/`false`, dates as midnight-UTC epoch milliseconds, datetimes as epoch milliseconds,
multi-valued fields `;`-joined.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from segsync.model import FieldSpec, FieldType

__all__ = [
    "BUILTIN_TARGETS",
    "ENGAGEMENT_TARGETS",
    "TYPE_FOR_FIELD",
    "PropertyTarget",
    "decode_value",
    "encode_value",
    "mapped_target",
    "property_name_for",
    "target_for",
]


@dataclasses.dataclass(frozen=True)
class PropertyTarget:
    """The HubSpot property of one canonical field."""

    name: str
    type: str  # string | number | bool | date | datetime | enumeration
    field_type: str
    builtin: bool = False
    read_only: bool = False
    transform: str | None = None  # "upper" | "lower" applied on write

    @property
    def multi(self) -> bool:
        """True for a multi-checkbox enumeration (values `;`-joined)."""
        return self.type == "enumeration" and self.field_type == "checkbox"


TYPE_FOR_FIELD: dict[FieldType, tuple[str, str]] = {
    FieldType.TEXT: ("string", "text"),
    FieldType.PHONE: ("string", "phonenumber"),
    FieldType.NUMBER: ("number", "number"),
    FieldType.INTEGER: ("number", "number"),
    FieldType.BOOLEAN: ("bool", "booleancheckbox"),
    FieldType.DATE: ("date", "date"),
    FieldType.DATETIME: ("datetime", "date"),
    FieldType.ENUM: ("enumeration", "select"),
    FieldType.MULTI_ENUM: ("enumeration", "checkbox"),
}
"""HubSpot (type, fieldType) of a custom property holding a canonical field of each type."""

BUILTIN_TARGETS: dict[str, PropertyTarget] = {
    "first_name": PropertyTarget("firstname", "string", "text", builtin=True),
    "last_name": PropertyTarget("lastname", "string", "text", builtin=True),
    "phone": PropertyTarget("phone", "string", "phonenumber", builtin=True),
    "mobile_phone": PropertyTarget("mobilephone", "string", "phonenumber", builtin=True),
    "company": PropertyTarget("company", "string", "text", builtin=True),
    "city": PropertyTarget("city", "string", "text", builtin=True),
    "country": PropertyTarget("country", "string", "text", builtin=True, transform="upper"),
    "state": PropertyTarget("state", "string", "text", builtin=True),
    "job_title": PropertyTarget("jobtitle", "string", "text", builtin=True),
    "website": PropertyTarget("website", "string", "text", builtin=True),
    "language": PropertyTarget(
        "hs_language", "enumeration", "select", builtin=True, transform="lower"
    ),
    "birthday": PropertyTarget("date_of_birth", "string", "text", builtin=True),
    "email": PropertyTarget("email", "string", "text", builtin=True),
}
"""Canonical fields that map onto HubSpot's own contact properties."""

ENGAGEMENT_TARGETS: dict[str, PropertyTarget] = {
    "emails_delivered": PropertyTarget("hs_email_delivered", "number", "number", True, True),
    "emails_opened": PropertyTarget("hs_email_open", "number", "number", True, True),
    "emails_clicked": PropertyTarget("hs_email_click", "number", "number", True, True),
    "last_open": PropertyTarget("hs_email_last_open_date", "datetime", "date", True, True),
    "last_click": PropertyTarget("hs_email_last_click_date", "datetime", "date", True, True),
    "lifecycle_stage": PropertyTarget("lifecyclestage", "enumeration", "radio", True, True),
}
"""Read-only engagement figures HubSpot reports, by canonical engagement name."""


def property_name_for(field: str) -> str:
    """The custom property name of a canonical field: lowercase `[a-z][a-z0-9_]*`."""
    name = re.sub(r"[^a-z0-9_]", "_", field.lower())
    if not name or not name[0].isalpha():
        name = f"f_{name}"
    return name[:99]


_BUILTIN_BY_PROPERTY: dict[str, PropertyTarget] = {
    t.name: t for t in (*BUILTIN_TARGETS.values(), *ENGAGEMENT_TARGETS.values())
}


def target_for(field: str, spec: FieldSpec | None, path: str | None = None) -> PropertyTarget:
    """The property holding canonical `field` (a built-in one, or a custom one to create).

    `path` is the property a mapping file names for the field, when one does.
    """
    if path is not None and path != target_for(field, spec).name:
        known = _BUILTIN_BY_PROPERTY.get(path)
        if known is not None:
            return known
        ftype = spec.type if spec is not None else FieldType.TEXT
        ptype, field_type = TYPE_FOR_FIELD[ftype]
        return PropertyTarget(path, ptype, field_type, read_only=bool(spec and spec.read_only))
    if field in BUILTIN_TARGETS:
        builtin = BUILTIN_TARGETS[field]
        if spec is None or spec.type in (FieldType.TEXT, FieldType.ENUM, FieldType.PHONE):
            return builtin
        if builtin.name == "date_of_birth" and spec.type is FieldType.DATE:
            return builtin
    if field in ENGAGEMENT_TARGETS:
        engagement = ENGAGEMENT_TARGETS[field]
        if spec is None or spec.read_only or field != "lifecycle_stage":
            return engagement
        return dataclasses.replace(engagement, read_only=False)  # HubSpot lets it be written
    ftype = spec.type if spec is not None else FieldType.TEXT
    ptype, field_type = TYPE_FOR_FIELD[ftype]
    return PropertyTarget(
        property_name_for(field), ptype, field_type, read_only=bool(spec and spec.read_only)
    )


def mapped_target(field: str, spec: FieldSpec | None, mapping: object) -> PropertyTarget:
    """The property of canonical `field` under `mapping` (a `PlatformMapping`, or None for the
    built-in table): the property the mapping names for it when it names one.

    The connector and its compiler both place fields through this, so a renamed property is
    the one written, read and filtered on.
    """
    platform_path = getattr(mapping, "platform_path", None)
    path = platform_path(field) if callable(platform_path) else None
    return target_for(field, spec, path if isinstance(path, str) else None)


def _midnight_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def encode_value(target: PropertyTarget, spec: FieldSpec | None, value: Any) -> str:
    """A canonical value as the string HubSpot stores ("" clears the property)."""
    if value is None:
        return ""
    ftype = spec.type if spec is not None else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        when = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        if target.type == "date":
            return str(_midnight_ms(when.astimezone(dt.UTC).date()))
        if target.type == "string":
            return when.isoformat()
        return str(round(when.timestamp() * 1000))
    if isinstance(value, dt.date):
        return value.isoformat() if target.type == "string" else str(_midnight_ms(value))
    if isinstance(value, frozenset | set | list | tuple):
        return ";".join(sorted(str(v) for v in value))
    if isinstance(value, float):
        return (
            str(int(value)) if value.is_integer() and ftype is not FieldType.NUMBER else repr(value)
        )
    text = str(value)
    if target.transform == "upper":
        text = text.strip().upper()
    elif target.transform == "lower":
        text = text.strip().lower()
    return text


def decode_value(target: PropertyTarget, spec: FieldSpec | None, raw: str | None) -> Any:
    """A HubSpot string as the canonical value (None when unset or unreadable)."""
    if raw is None or raw == "":
        return None
    ftype = spec.type if spec is not None else None
    try:
        if target.type in ("date", "datetime") or ftype in (FieldType.DATE, FieldType.DATETIME):
            text = raw.strip()
            if re.fullmatch(r"-?\d{5,}", text):
                when = dt.datetime.fromtimestamp(int(text) / 1000, tz=dt.UTC)
            elif len(text) == 10:
                day = dt.date.fromisoformat(text)
                when = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            else:
                when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
                when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
            if ftype is FieldType.DATE or (ftype is None and target.type == "date"):
                return when.astimezone(dt.UTC).date()
            return when
        if target.type == "number" or ftype in (FieldType.NUMBER, FieldType.INTEGER):
            number = float(raw)
            if ftype is FieldType.INTEGER and number.is_integer():
                return int(number)
            return number
        if target.type == "bool" or ftype is FieldType.BOOLEAN:
            return raw.lower() == "true"
        if ftype is FieldType.MULTI_ENUM or target.multi:
            return frozenset(v for v in raw.split(";") if v)
    except ValueError:
        return None
    return raw
