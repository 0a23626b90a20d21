"""Saved-segment conditions as the emulated Mailchimp evaluates them.

`CONDITION_EVALUATORS` maps each condition type the emulator evaluates to its evaluator and
the ops it accepts; `STORED_CONDITION_TYPES` are accepted and stored but match nobody. Text
conditions compare case-insensitively, and their `not`-ops also select blank values, as
Mailchimp's do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from segsync_mailchimp.api import iso_time, parse_time

if TYPE_CHECKING:
    from segsync_mailchimp.emulator.state import AudienceList, MailchimpState, Member, MergeField

__all__ = ["CONDITION_EVALUATORS", "STORED_CONDITION_TYPES", "ConditionEvaluator", "date_of"]


ConditionEvaluator = Callable[["MailchimpState", "AudienceList", "Member", Mapping[str, Any]], bool]
"""Whether one condition holds for a member (given the state, for its clock)."""


def _text_ops(actual: str, op: str, value: str, *, numeric: bool) -> bool:
    """TextMerge / EmailAddress semantics: case-insensitive; `not`-ops include blanks."""
    a, v = actual.casefold(), str(value).casefold()
    if op == "blank":
        return a == ""
    if op == "blank_not":
        return a != ""
    if op in ("is", "not", "greater", "less") and numeric:
        if op in ("greater", "less") and a == "":
            return False
        try:
            fa, fv = float(a), float(v)
        except ValueError:
            return op == "not"
        return {"is": fa == fv, "not": fa != fv, "greater": fa > fv, "less": fa < fv}[op]
    match op:
        case "is":
            return a == v
        case "not":
            return a != v
        case "contains":
            return v in a
        case "notcontain":
            return v not in a
        case "starts":
            return a.startswith(v)
        case "ends":
            return a.endswith(v)
        case "greater":
            return a != "" and a > v
        case "less":
            return a != "" and a < v
    return False


def _merge_value(lst: AudienceList, member: Member, tag: str) -> tuple[MergeField | None, Any]:
    mf = lst.merge_fields.get(tag.upper())
    return mf, member.merge_fields.get(tag.upper(), "")


def _eval_text_merge(
    emu: MailchimpState, lst: AudienceList, m: Member, c: Mapping[str, Any]
) -> bool:
    mf, value = _merge_value(lst, m, str(c["field"]))
    if mf is None:
        return False
    return _text_ops(str(value), str(c["op"]), str(c.get("value", "")), numeric=mf.type == "number")


def _eval_select_merge(
    emu: MailchimpState, lst: AudienceList, m: Member, c: Mapping[str, Any]
) -> bool:
    mf, value = _merge_value(lst, m, str(c["field"]))
    if mf is None:
        return False
    op = str(c["op"])
    op = {"notcontain": "notcontain", "contains": "contains"}.get(op, op)
    return _text_ops(str(value), op, str(c.get("value", "")), numeric=False)


def _eval_email(emu: MailchimpState, lst: AudienceList, m: Member, c: Mapping[str, Any]) -> bool:
    return _text_ops(m.email_address, str(c["op"]), str(c.get("value", "")), numeric=False)


def date_of(text: str, date_format: str) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        pass
    fmt = date_format.upper().replace("YYYY", "%Y").replace("MM", "%m").replace("DD", "%d")
    try:
        return dt.datetime.strptime(text, fmt).date()
    except ValueError:
        return None


def _date_ops(actual: dt.date | None, op: str, target: dt.date | None) -> bool:
    if op == "blank":
        return actual is None
    if op == "blank_not":
        return actual is not None
    if actual is None or target is None:
        return op == "not" and actual is None
    return {
        "is": actual == target,
        "not": actual != target,
        "greater": actual > target,
        "less": actual < target,
    }.get(op, False)


def _eval_date_merge(
    emu: MailchimpState, lst: AudienceList, m: Member, c: Mapping[str, Any]
) -> bool:
    mf, value = _merge_value(lst, m, str(c["field"]))
    if mf is None:
        return False
    fmt = str(mf.options.get("date_format") or "MM/DD/YYYY")
    return _date_ops(date_of(str(value), fmt), str(c["op"]), date_of(str(c.get("value", "")), fmt))


def _eval_birthday(emu: MailchimpState, lst: AudienceList, m: Member, c: Mapping[str, Any]) -> bool:
    mf, value = _merge_value(lst, m, str(c["field"]))
    if mf is None:
        return False
    return _text_ops(str(value), str(c["op"]), str(c.get("value", "")), numeric=False)


def _eval_date(emu: MailchimpState, lst: AudienceList, m: Member, c: Mapping[str, Any]) -> bool:
    field_name, op = str(c["field"]), str(c["op"])
    raw = {"timestamp_opt": m.timestamp_opt, "info_changed": iso_time(m.last_changed)}.get(
        field_name, ""
    )
    actual = parse_time(raw).date() if raw else None
    if op in ("within", "notwithin"):
        try:
            days = int(str(c.get("extra") or c.get("value")))
        except ValueError:
            return False
        inside = actual is not None and actual >= emu.clock.now().date() - dt.timedelta(days=days)
        return inside if op == "within" else not inside
    extra = c.get("extra")
    target = dt.date.fromisoformat(str(extra)[:10]) if extra else None
    return _date_ops(actual, op, target)


def _eval_static(emu: MailchimpState, lst: AudienceList, m: Member, c: Mapping[str, Any]) -> bool:
    segment = lst.segments.get(int(c["value"]))
    inside = segment is not None and m.id in segment.members
    return inside if c["op"] == "static_is" else not inside


def _eval_interests(
    emu: MailchimpState, lst: AudienceList, m: Member, c: Mapping[str, Any]
) -> bool:
    wanted = [str(v) for v in (c.get("value") or [])]
    held = {k for k, v in m.interests.items() if v}
    match c["op"]:
        case "interestcontains":
            return any(w in held for w in wanted)
        case "interestcontainsall":
            return all(w in held for w in wanted)
        case "interestnotcontains":
            return not any(w in held for w in wanted)
    return False


def _eval_rating(emu: MailchimpState, lst: AudienceList, m: Member, c: Mapping[str, Any]) -> bool:
    v = float(c["value"])
    return {
        "is": m.member_rating == v,
        "not": m.member_rating != v,
        "greater": m.member_rating > v,
        "less": m.member_rating < v,
    }.get(str(c["op"]), False)


def _eval_vip(emu: MailchimpState, lst: AudienceList, m: Member, c: Mapping[str, Any]) -> bool:
    return m.vip if c["op"] == "member" else not m.vip


def _eval_language(emu: MailchimpState, lst: AudienceList, m: Member, c: Mapping[str, Any]) -> bool:
    same = m.language.lower() == str(c.get("value", "")).lower()
    return same if c["op"] == "is" else not same


def _eval_ipgeo(emu: MailchimpState, lst: AudienceList, m: Member, c: Mapping[str, Any]) -> bool:
    country = str(m.location.get("country_code") or "").upper()
    value = str(c.get("value", "")).upper()
    match c["op"]:
        case "ipgeocountry":
            return country == value
        case "ipgeonotcountry":
            return country != value
        case "ipgeostate":
            return str(m.location.get("region") or "").upper() == value
        case "ipgeonotstate":
            return str(m.location.get("region") or "").upper() != value
    return False


#: condition_type -> (evaluator, the ops it accepts)
CONDITION_EVALUATORS: dict[str, tuple[ConditionEvaluator, frozenset[str]]] = {
    "TextMerge": (
        _eval_text_merge,
        frozenset(
            {
                "is",
                "not",
                "contains",
                "notcontain",
                "starts",
                "ends",
                "greater",
                "less",
                "blank",
                "blank_not",
            }
        ),
    ),
    "EmailAddress": (
        _eval_email,
        frozenset({"is", "not", "contains", "notcontain", "starts", "ends", "greater", "less"}),
    ),
    "SelectMerge": (
        _eval_select_merge,
        frozenset({"is", "not", "blank", "blank_not", "contains", "notcontain"}),
    ),
    "DateMerge": (
        _eval_date_merge,
        frozenset({"is", "not", "less", "greater", "blank", "blank_not"}),
    ),
    "BirthdayMerge": (_eval_birthday, frozenset({"is", "not", "blank", "blank_not"})),
    "Date": (
        _eval_date,
        frozenset({"greater", "less", "is", "not", "blank", "blank_not", "within", "notwithin"}),
    ),
    "StaticSegment": (_eval_static, frozenset({"static_is", "static_not"})),
    "Interests": (
        _eval_interests,
        frozenset({"interestcontains", "interestcontainsall", "interestnotcontains"}),
    ),
    "MemberRating": (_eval_rating, frozenset({"is", "not", "greater", "less"})),
    "VIP": (_eval_vip, frozenset({"member", "notmember"})),
    "Language": (_eval_language, frozenset({"is", "not"})),
    "IPGeoCountryState": (
        _eval_ipgeo,
        frozenset({"ipgeocountry", "ipgeonotcountry", "ipgeostate", "ipgeonotstate"}),
    ),
}

#: condition types accepted and stored but not evaluated (they match nobody here)
STORED_CONDITION_TYPES = frozenset(
    {
        "Aim",
        "Automation",
        "CampaignPoll",
        "Conversation",
        "EmailClient",
        "SignupSource",
        "SurveyMonkey",
        "EcommCategory",
        "EcommNumber",
        "EcommPurchased",
        "EcommSpent",
        "EcommStore",
        "GoalActivity",
        "GoalTimestamp",
        "FuzzySegment",
        "IPGeoIn",
        "IPGeoInZip",
        "IPGeoUnknown",
        "IPGeoZip",
        "SocialAge",
        "SocialGender",
        "SocialInfluence",
        "SocialNetworkMember",
        "SocialNetworkFollow",
        "AddressMerge",
        "ZipMerge",
        "PredictedGender",
        "PredictedAge",
        "NewSubscribers",
    }
)
