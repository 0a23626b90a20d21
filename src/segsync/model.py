"""The canonical model: contacts, consent, schema and segments.

Every platform's records are mapped into these types on the way in and out of them on the
way out; the sync engine and the rule language only ever see this model.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import re
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

__all__ = [
    "CONSENT_OPT_OUTS",
    "Consent",
    "ConsentStatus",
    "Contact",
    "FieldSpec",
    "FieldType",
    "InvalidEmail",
    "PublishMode",
    "Schema",
    "Segment",
    "normalize_email",
]


class InvalidEmail(ValueError):
    """An email address that cannot be normalised; the message says why."""

    def __init__(self, email: str, reason: str) -> None:
        super().__init__(f"invalid email {email!r}: {reason}")
        self.email = email
        self.reason = reason


_LOCAL_ALLOWED = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-\u0080-\U0010ffff]+$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_WHITESPACE = re.compile(r"\s")  # the characters `str.isspace` accepts


@functools.lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str:
    """The IDNA form of a domain (ValueError with the reason when it is not valid); cached."""
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"domain is not a valid internationalised name ({exc})") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2:
        raise ValueError("domain has no dot")
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(f"domain label {label!r} is not valid")
    if labels[-1].isdigit():
        raise ValueError("top-level domain is numeric")
    return ascii_domain


_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})
"""Unicode categories refused in an address: controls, format characters (zero-width
spaces and joiners, bidirectional marks, overrides and isolates, the BOM, soft hyphens),
private-use, surrogates and unassigned code points. They are invisible or reorder what is
shown, so two different addresses would print alike."""


def _invisible(text: str) -> str | None:
    """The first invisible or bidirectional-control character of `text`, as `U+XXXX`."""
    for char in text:
        if char.isspace() or " " <= char < "\x7f":
            continue  # whitespace has its own message
        if unicodedata.category(char) in _INVISIBLE_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def normalize_email(email: str) -> str:
    """Return the canonical key for an email: trimmed, Unicode NFC, lowercased, domain in
    IDNA (punycode). The NFC and NFD spellings of one address are one key.

    Raises `InvalidEmail` with the reason when the address cannot be an email, including
    when it holds an invisible or bidirectional-control character (named as `U+XXXX`).
    """
    if not isinstance(email, str):
        raise InvalidEmail(repr(email), "not a string")
    text = email.strip()
    hidden = _invisible(text)
    if hidden is not None:
        raise InvalidEmail(
            email, f"contains an invisible or bidirectional-control character ({hidden})"
        )
    text = unicodedata.normalize("NFC", text)
    if not text:
        raise InvalidEmail(email, "empty")
    if len(text) > 254:
        raise InvalidEmail(email, f"longer than 254 characters ({len(text)})")
    if _WHITESPACE.search(text):
        raise InvalidEmail(email, "contains whitespace")
    if text.count("@") != 1:
        raise InvalidEmail(email, "must contain exactly one '@'")
    local, domain = text.split("@")
    if not local:
        raise InvalidEmail(email, "nothing before '@'")
    if len(local) > 64:
        raise InvalidEmail(email, "the part before '@' is longer than 64 characters")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidEmail(email, "dots at the start or end, or two in a row, before '@'")
    if not _LOCAL_ALLOWED.match(local):
        raise InvalidEmail(email, "a character not allowed before '@'")
    if not domain:
        raise InvalidEmail(email, "nothing after '@'")
    try:
        ascii_domain = _ascii_domain(domain.rstrip(".").lower())
    except ValueError as exc:
        raise InvalidEmail(email, str(exc)) from None
    return f"{unicodedata.normalize('NFC', local.lower())}@{ascii_domain}"


class ConsentStatus(enum.StrEnum):
    """Email marketing consent, in the vocabulary all platforms map onto."""

    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    PENDING = "pending"
    BOUNCED = "bounced"
    NON_SUBSCRIBED = "non_subscribed"


CONSENT_OPT_OUTS: frozenset[ConsentStatus] = frozenset(
    {ConsentStatus.UNSUBSCRIBED, ConsentStatus.BOUNCED}
)
"""Statuses that no sync may ever turn back into `subscribed` (the consent floor)."""


class Consent(BaseModel):
    """The email channel's consent, with when, where and on what basis it was recorded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: ConsentStatus = ConsentStatus.NON_SUBSCRIBED
    updated_at: dt.datetime | None = None
    source: str | None = None
    legal_basis: str | None = None
    #: what the status rests on, as the platform said it (`field=value`, e.g.
    #: `status=subscribed`, `emailBlacklisted=true`); None when there is no evidence: the
    #: status is unknown, or only an echo of what segsync wrote itself (never proof)
    evidence: str | None = None

    @property
    def is_opt_out(self) -> bool:
        """True for unsubscribed and bounced: the statuses sync must never override."""
        return self.status in CONSENT_OPT_OUTS


class FieldType(enum.StrEnum):
    """The value types of canonical fields."""

    TEXT = "text"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    ENUM = "enum"
    MULTI_ENUM = "multi_enum"
    PHONE = "phone"


class FieldSpec(BaseModel):
    """One canonical field: its type, and for enums the allowed options (empty = open)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: FieldType
    options: tuple[str, ...] = ()
    description: str | None = None
    read_only: bool = False
    minimum: float | None = Field(
        default=None, description="least meaningful value of a number (rules are checked)"
    )
    maximum: float | None = Field(
        default=None, description="greatest meaningful value of a number (rules are checked)"
    )
    recurring: bool = Field(
        default=False,
        description="a date whose yearly anniversary matters (a birthday): 'within N days' "
        "in a rule matches the anniversary in the next N days, year ignored",
    )
    # segsync's own mark, never declared: not a field, so not in the configuration, its
    # JSON Schema or dumps; kept by model_copy
    _read: bool = PrivateAttr(default=True)

    @property
    def read(self) -> bool:
        """False on a platform's engagement fields when segsync does not read that platform's
        engagement (`as_unread`); True otherwise."""
        return self._read

    def as_unread(self) -> FieldSpec:
        """This spec, marked as a field whose values segsync does not read."""
        out = self.model_copy()
        out._read = False
        return out

    def coerce(self, value: Any) -> Any:
        """Return `value` as this field's Python type, or raise ValueError saying why."""
        return coerce_value(self.type, value, self.options)


_PHONE = re.compile(r"^\+?[0-9 ().\-]{4,32}$")


def coerce_value(ftype: FieldType, value: Any, options: tuple[str, ...] = ()) -> Any:
    """Coerce a raw value into the Python type of `ftype`; None stays None (unset)."""
    if value is None:
        return None
    match ftype:
        case FieldType.TEXT:
            if isinstance(value, str):
                return value
            if isinstance(value, bool | int | float):
                return str(value)
        case FieldType.PHONE:
            if isinstance(value, str) and _PHONE.match(value.strip()):
                return value.strip()
            raise ValueError(f"{value!r} is not a phone number (digits, spaces, + ( ) . -)")
        case FieldType.NUMBER:
            if isinstance(value, bool):
                raise ValueError(f"{value!r} is a boolean, not a number")
            if isinstance(value, int | float):
                return float(value)
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
        case FieldType.INTEGER:
            if isinstance(value, bool):
                raise ValueError(f"{value!r} is a boolean, not an integer")
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
                return int(value)
        case FieldType.BOOLEAN:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "false"}:
                return value.lower() == "true"
        case FieldType.DATE:
            if isinstance(value, dt.datetime):
                return value.date()
            if isinstance(value, dt.date):
                return value
            if isinstance(value, str):
                try:
                    return dt.date.fromisoformat(value[:10])
                except ValueError:
                    pass
        case FieldType.DATETIME:
            if isinstance(value, dt.datetime):
                return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            if isinstance(value, dt.date):
                return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
            if isinstance(value, str):
                try:
                    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    pass
                else:
                    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        case FieldType.ENUM:
            if isinstance(value, str):
                if options and value not in options:
                    # a platform's copy in another case or padded ('fr ') is that option
                    same = [o for o in options if o.casefold() == value.strip().casefold()]
                    if len(same) != 1:
                        raise ValueError(f"{value!r} is not one of {list(options)}")
                    return same[0]
                return value
        case FieldType.MULTI_ENUM:
            items = value.split(";") if isinstance(value, str) else value
            if isinstance(items, list | tuple | set | frozenset):
                result = frozenset(str(i) for i in items if str(i) != "")
                bad = sorted(result - set(options)) if options else []
                if bad:
                    raise ValueError(f"{bad} not among {list(options)}")
                return result
    raise ValueError(f"{value!r} is not a valid {ftype.value}")


class Schema(BaseModel):
    """The canonical fields, by name. `email`, `tags` and `consent` are built in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fields: dict[str, FieldSpec] = Field(default_factory=dict)

    BUILTIN: tuple[str, ...] = ("email", "tags", "consent")

    @model_validator(mode="after")
    def _no_builtin_names(self) -> Schema:
        clash = [name for name in self.fields if name in ("email", "tags", "consent")]
        if clash:
            raise ValueError(f"fields {clash} are built in and cannot be declared")
        return self

    def get(self, name: str) -> FieldSpec | None:
        """The spec of a declared field, or None."""
        return self.fields.get(name)

    def names(self) -> list[str]:
        """Every name a rule may use: built-ins and declared fields."""
        return ["email", "tags", "consent", *self.fields]

    def coerce_fields(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Coerce a dict of raw values; unknown names or bad values raise ValueError naming them."""
        out: dict[str, Any] = {}
        problems: list[str] = []
        for name, value in values.items():
            spec = self.fields.get(name)
            if spec is None:
                problems.append(f"{name}: not a field of the schema")
                continue
            try:
                out[name] = spec.coerce(value)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return out


FieldValue = Annotated[Any, Field(description="a value of the field's type; None = unset")]


class Contact(BaseModel):
    """One person, keyed by normalised email.

    `fields` holds canonical values (None or absent = unset); `ids` maps platform name to
    that platform's record id; `engagement` holds read-only figures platforms report.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    consent: Consent = Field(default_factory=Consent)
    ids: dict[str, str] = Field(default_factory=dict)
    engagement: dict[str, FieldValue] = Field(default_factory=dict)
    updated_at: dt.datetime | None = None

    @field_validator("email")
    @classmethod
    def _normalise(cls, value: str) -> str:
        try:
            return normalize_email(value)
        except InvalidEmail as exc:
            raise ValueError(str(exc)) from None

    @property
    def key(self) -> str:
        """The canonical identity: the normalised email."""
        return self.email

    def value(self, name: str) -> Any:
        """The value of a field or built-in by name; None when unset."""
        if name == "email":
            return self.email
        if name == "tags":
            return self.tags
        if name == "consent":
            return self.consent.status
        if name in self.fields:
            return self.fields[name]
        return self.engagement.get(name)


class PublishMode(enum.StrEnum):
    """How a segment is published on a platform."""

    AUTO = "auto"  # native where the rule compiles, materialised otherwise (with a diagnostic)
    NATIVE = "native"  # native or an error
    MATERIALISE = "materialise"  # always static membership (tag / list)
    LIST = "list"  # alias accepted in config for materialise as a list
    OFF = "off"  # not published on that platform


class Segment(BaseModel):
    """A named rule, and how it is published on each platform."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    rule: str
    description: str | None = None
    publish: dict[str, PublishMode] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name_ok(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_\-. ]{0,99}", value):
            raise ValueError(
                f"segment name {value!r}: use letters, digits, _ - . and spaces, 1-100 characters"
            )
        return value

    def mode_for(self, platform: str) -> PublishMode:
        """The publish mode on `platform` (auto when not stated)."""
        return self.publish.get(platform, PublishMode.AUTO)
