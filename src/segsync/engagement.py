"""Engagement: platform facts, kept per platform, and the canonical aggregates over them.

Connectors put each platform's own values in `RemoteContact.engagement` under the names of
`PLATFORM_ENGAGEMENT` (absent = the platform has no data, never 0). They are read only:
never written, never reconciled as fields. Rules name them in two ways:

- qualified by platform, `<platform>.<name>` (``mailchimp.open_rate``): that platform's own
  figure, declared for every configured platform (`qualified_fields`);
- bare (``open_rate``): the aggregate across platforms, by the function `AGGREGATES` declares
  for it (data, documented in docs/rules.md). A value absent on every platform is unset.

`engagement_view(per_platform, order)` is the dict a rule is evaluated on: the aggregates and
every qualified value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from typing import Any

from segsync.model import FieldSpec, FieldType

__all__ = [
    "AGGREGATES",
    "ALIASES",
    "ENGAGEMENT_FIELDS",
    "PLATFORM_ENGAGEMENT",
    "Aggregate",
    "AggregateFunction",
    "aggregate",
    "decided_by",
    "engagement_view",
    "is_aggregate",
    "platform_values",
    "qualified_fields",
    "split_qualified",
    "unread_platforms",
]


def _spec(ftype: FieldType, description: str, *, rate: bool = False) -> FieldSpec:
    return FieldSpec(type=ftype, read_only=True, description=description,
                     minimum=0.0 if rate else None, maximum=1.0 if rate else None)


PLATFORM_ENGAGEMENT: Mapping[str, FieldSpec] = {
    "emails_delivered": _spec(FieldType.INTEGER, "marketing emails delivered"),
    "opens": _spec(FieldType.INTEGER, "marketing emails opened"),
    "clicks": _spec(FieldType.INTEGER, "marketing emails clicked"),
    "open_rate": _spec(FieldType.NUMBER, "open rate, 0 to 1", rate=True),
    "click_rate": _spec(FieldType.NUMBER, "click rate, 0 to 1", rate=True),
    "last_open": _spec(FieldType.DATETIME, "when an email was last opened"),
    "last_click": _spec(FieldType.DATETIME, "when a link was last clicked"),
    "last_interaction": _spec(FieldType.DATETIME, "the later of last open and last click"),
    "signup_at": _spec(FieldType.DATETIME, "when the person signed up"),
    "opted_in_at": _spec(FieldType.DATETIME, "when the person opted in (evidence)"),
    "signup_source": _spec(FieldType.TEXT, "where the person signed up"),
    "member_rating": _spec(FieldType.INTEGER, "engagement rating, 1 to 5"),
    "lifecycle_stage": _spec(FieldType.TEXT, "CRM lifecycle stage"),
}
"""Each platform's own engagement values (qualified in rules: `<platform>.<name>`)."""

ALIASES: Mapping[str, str] = {
    "emails_opened": "opens",
    "emails_clicked": "clicks",
    "rating": "member_rating",
}
"""Older engagement names a mapping may still use, read as the name they map to."""


class AggregateFunction(enum.StrEnum):
    """How a canonical engagement value is computed from the platforms' values."""

    LATEST = "latest"  # the latest date of `inputs` on any platform
    EARLIEST = "earliest"  # the earliest date of `inputs` on any platform
    SUM = "sum"  # the sum over the platforms that report it
    RATE = "rate"  # inputs (count, delivered, rate): sum(count) / sum(delivered), see below
    AT_EARLIEST = "at_earliest"  # inputs (value, date): the value of the earliest date
    FIRST = "first"  # the first platform (config order) that reports it


@dataclasses.dataclass(frozen=True)
class Aggregate:
    """One canonical engagement value: its function and the per-platform names it reads."""

    function: AggregateFunction
    inputs: tuple[str, ...]


A = AggregateFunction
AGGREGATES: Mapping[str, Aggregate] = {
    "last_open": Aggregate(A.LATEST, ("last_open",)),
    "last_click": Aggregate(A.LATEST, ("last_click",)),
    "last_interaction": Aggregate(A.LATEST, ("last_open", "last_click")),
    "emails_delivered": Aggregate(A.SUM, ("emails_delivered",)),
    "opens": Aggregate(A.SUM, ("opens",)),
    "clicks": Aggregate(A.SUM, ("clicks",)),
    "open_rate": Aggregate(A.RATE, ("opens", "emails_delivered", "open_rate")),
    "click_rate": Aggregate(A.RATE, ("clicks", "emails_delivered", "click_rate")),
    "opted_in_at": Aggregate(A.EARLIEST, ("opted_in_at",)),
    "signup_at": Aggregate(A.EARLIEST, ("signup_at",)),
    "signup_source": Aggregate(A.AT_EARLIEST, ("signup_source", "signup_at")),
    "member_rating": Aggregate(A.FIRST, ("member_rating",)),
    "lifecycle_stage": Aggregate(A.FIRST, ("lifecycle_stage",)),
}
"""The canonical (bare) engagement names and how each is aggregated (docs/rules.md)."""
del A

ENGAGEMENT_FIELDS: dict[str, FieldSpec] = {
    **{name: PLATFORM_ENGAGEMENT[name] for name in AGGREGATES},
    **{
        old: PLATFORM_ENGAGEMENT[new].model_copy(update={"description": f"older name of {new}"})
        for old, new in ALIASES.items()
    },
}
"""Canonical engagement fields: aggregates of the platforms' values, usable in rules."""


def is_aggregate(name: str) -> bool:
    """Whether `name` is a canonical (aggregated) engagement name."""
    return name in AGGREGATES


def split_qualified(name: str) -> tuple[str, str] | None:
    """`(platform, engagement name)` for `<platform>.<name>` (an older name read as the name
    it maps to); None for any other name."""
    platform, dot, rest = name.partition(".")
    rest = ALIASES.get(rest, rest)
    if dot and platform and rest in PLATFORM_ENGAGEMENT:
        return platform, rest
    return None


#: the description of a platform's qualified fields when segsync does not read its engagement
#: (for people to read; what decides is `FieldSpec.read`)
UNREAD = "not read: the platform's engagement refresh is off"


def qualified_fields(
    platforms: Iterable[str], unread: Iterable[str] = ()
) -> dict[str, FieldSpec]:
    """The `<platform>.<name>` fields rules may use for the configured `platforms` (older
    names too, as the bare ones); those of the `unread` platforms (engagement refresh off,
    and nothing read without it) have `read` False and say so in their description."""
    off = set(unread)
    named = {**PLATFORM_ENGAGEMENT,
             **{old: PLATFORM_ENGAGEMENT[new] for old, new in ALIASES.items()}}
    return {
        f"{p}.{name}": (spec.model_copy(update={"description": UNREAD}).as_unread()
                        if p in off else spec)
        for p in platforms for name, spec in named.items()
    }


def unread_platforms(fields: Mapping[str, FieldSpec]) -> list[str]:
    """The platforms whose qualified fields in `fields` are marked not read (`read` False),
    whatever their description says."""
    return sorted({q[0] for n, spec in fields.items()
                   if (q := split_qualified(n)) and not spec.read})


def _datetime(value: Any) -> dt.datetime | None:
    try:
        out = FieldSpec(type=FieldType.DATETIME).coerce(value)
    except ValueError:
        return None
    return out if isinstance(out, dt.datetime) else None


def platform_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """One platform's engagement, by canonical name, coerced; unset and unreadable values
    left out (absent = no data). Older names (`ALIASES`) are renamed; `last_interaction`
    is the later of the platform's last open and last click."""
    out: dict[str, Any] = {}
    for raw_name, raw in values.items():
        name = ALIASES.get(raw_name, raw_name)
        spec = PLATFORM_ENGAGEMENT.get(name)
        if spec is None or raw is None or raw == "":
            continue
        try:
            value = spec.coerce(raw)
        except ValueError:
            continue
        if value is None or (spec.minimum is not None and value < spec.minimum) or (
            spec.maximum is not None and value > spec.maximum
        ):
            continue  # a rate outside 0-1 is no figure
        if name in PLATFORM_ENGAGEMENT and (name not in out or raw_name == name):
            out[name] = value
    dates = [out[k] for k in ("last_open", "last_click") if k in out]
    if dates and "last_interaction" not in out:
        out["last_interaction"] = max(dates)
    return out


def _rate(per: list[Mapping[str, Any]], count: str, delivered: str, rate: str) -> float | None:
    """sum(count) / sum(delivered) over the platforms with both (a platform with a rate and
    its deliveries counts rate x deliveries); a platform with a rate but no deliveries count
    weighs as the mean deliveries of the others, or 1 when no platform has a count (the
    plain mean of the rates)."""
    weighted: list[tuple[float, float]] = []  # (opens, delivered)
    unweighted: list[float] = []
    for values in per:
        sent = values.get(delivered)
        if sent is not None and sent > 0 and values.get(count) is not None:
            weighted.append((float(min(values[count], sent)), float(sent)))
        elif sent is not None and sent > 0 and values.get(rate) is not None:
            weighted.append((values[rate] * sent, float(sent)))
        elif values.get(rate) is not None:
            unweighted.append(float(values[rate]))
    if not weighted and not unweighted:
        return None
    weight = (sum(s for _, s in weighted) / len(weighted)) if weighted else 1.0
    top = sum(c for c, _ in weighted) + sum(r * weight for r in unweighted)
    bottom = sum(s for _, s in weighted) + weight * len(unweighted)
    return min(1.0, max(0.0, top / bottom))


def aggregate(per_platform: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The canonical engagement of one person from each platform's values (platform ->
    values, in config order; values as `platform_values` returns them). Unset where no
    platform has data."""
    per = list(per_platform.values())
    out: dict[str, Any] = {}
    for name, agg in AGGREGATES.items():
        value: Any = None
        match agg.function:
            case AggregateFunction.LATEST | AggregateFunction.EARLIEST:
                dates = [v[i] for v in per for i in agg.inputs if v.get(i) is not None]
                if dates:
                    pick = max if agg.function is AggregateFunction.LATEST else min
                    value = pick(dates)
            case AggregateFunction.SUM:
                found = [v[agg.inputs[0]] for v in per if v.get(agg.inputs[0]) is not None]
                value = sum(found) if found else None
            case AggregateFunction.RATE:
                value = _rate(per, *agg.inputs)
            case AggregateFunction.AT_EARLIEST:
                key, when = agg.inputs
                dated = [(v[when], i) for i, v in enumerate(per)
                         if v.get(key) is not None and v.get(when) is not None]
                if dated:
                    value = per[min(dated)[1]][key]
                else:  # no sign-up date anywhere: the first platform that tells the source
                    value = next((v[key] for v in per if v.get(key) is not None), None)
            case AggregateFunction.FIRST:
                value = next((v[agg.inputs[0]] for v in per if v.get(agg.inputs[0]) is not None),
                             None)
        if value is not None:
            out[name] = value
    return out


def engagement_view(
    per_platform: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """What rules read: the aggregates (bare names) and every platform's own values
    (`<platform>.<name>`), from raw per-platform engagement (platform -> values)."""
    cleaned = {p: platform_values(values) for p, values in per_platform.items()}
    view = aggregate(cleaned)
    for old, new in ALIASES.items():
        if new in view:
            view[old] = view[new]
    for platform, values in cleaned.items():
        for name, value in values.items():
            view[f"{platform}.{name}"] = value
        for old, new in ALIASES.items():
            if new in values:
                view[f"{platform}.{old}"] = values[new]
    return view


def decided_by(name: str, per_platform: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The platforms whose facts decide engagement `name` (bare or qualified) for one person,
    from raw per-platform values: the platform of a qualified name; for an aggregate, the
    platform(s) holding the value chosen (latest, earliest, first, earliest sign-up) or every
    platform counted in a sum or a rate. Empty when no platform has data."""
    cleaned = {p: platform_values(values) for p, values in per_platform.items()}
    qualified = split_qualified(name)
    if qualified is not None:
        platform, key = qualified
        return [platform] if key in cleaned.get(platform, {}) else []
    agg = AGGREGATES.get(ALIASES.get(name, name))
    if agg is None:
        return []
    value = aggregate(cleaned).get(ALIASES.get(name, name))
    if value is None:
        return []
    match agg.function:
        case AggregateFunction.LATEST | AggregateFunction.EARLIEST:
            return [p for p, v in cleaned.items() if any(v.get(i) == value for i in agg.inputs)]
        case AggregateFunction.SUM | AggregateFunction.RATE:
            return [p for p, v in cleaned.items() if any(i in v for i in agg.inputs)]
        case AggregateFunction.AT_EARLIEST:
            key, when = agg.inputs
            dated = [(v[when], p) for p, v in cleaned.items() if key in v and when in v]
            if dated:
                return [min(dated)[1]]
    return [next(p for p, v in cleaned.items() if v.get(agg.inputs[0]) is not None)]
