"""Values on Brevo: the owned consent attribute's codes, category labels, dates and transforms.

Pure functions shared by the connector's parts (no I/O): `CONSENT_VALUES` is the enumeration
of the owned consent category attribute; `category_label` reads a category attribute's value;
`transformed` applies a mapping entry's text transforms; `parse_time` / `iso_time` read and
write Brevo's date-times.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from segsync.mapping import FieldMapping
from segsync.model import ConsentStatus

__all__ = ["CONSENT_VALUES", "category_label", "iso_time", "parse_time", "transformed"]

CONSENT_VALUES: dict[ConsentStatus, int] = {
    ConsentStatus.SUBSCRIBED: 1,
    ConsentStatus.NON_SUBSCRIBED: 2,
    ConsentStatus.PENDING: 3,
    ConsentStatus.UNSUBSCRIBED: 4,
    ConsentStatus.BOUNCED: 5,
}
"""The owned consent category attribute: canonical status -> enumeration value."""


def transformed(entry: FieldMapping | None, value: Any) -> Any:
    """A text value with the mapping's transforms (trim, case) applied."""
    if entry is None or not isinstance(value, str):
        return value
    for transform in entry.transforms:
        value = transform.apply(value)
    return value


def category_label(attribute: Mapping[str, Any] | None, raw: Any) -> str | None:
    """The label of a category attribute's value (by id, or already a label)."""
    if raw is None or attribute is None:
        return None
    for entry in attribute.get("enumeration") or []:
        if entry.get("value") == raw or entry.get("label") == raw:
            return str(entry["label"])
    return None


def parse_time(text: str) -> dt.datetime:
    """A Brevo date-time (any offset, `Z` allowed) as an aware datetime (naive: UTC)."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def iso_time(when: dt.datetime) -> str:
    """`when` as Brevo's query parameters take it: UTC, milliseconds, `Z`."""
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
