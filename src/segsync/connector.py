"""The connector contract: what every platform adapter declares and implements.

A connector is a `Connector` subclass registered under the entry-point group
`segsync.connectors` (name = `Connector.name`). It declares `Capabilities` as class data and
implements, asynchronously:

- `check()` — credentials and account reachable;
- `account_identity()` — which account the credentials reach (the state is bound to it);
- `prepare(schema, tags)` — create the fields/properties/attributes and tag containers it needs;
- `read(cursor)` — stream canonical contacts changed since an opaque cursor, page by page;
- `write(changes)` — apply a batch of contact changes (fields, consent, tags, email);
- segment publication: `publish_native`, `ensure_static`, `change_static_members`, `delete_owned`.

It speaks HTTP only through `segsync.http` (the `transport` argument is the test seam) and
maps platform records to and from the canonical model itself, using its `PlatformMapping`.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import difflib
import enum
import hashlib
import importlib
import importlib.metadata
import json
import logging
import math
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from segsync.clock import Clock, SystemClock
from segsync.http import (
    GENERIC_RATE_LIMIT_HINTS,
    RateBudget,
    RateLimitHints,
    RateWindow,
    RequestStats,
    check_base_url,
)
from segsync.model import Consent, ConsentStatus, FieldSpec, Schema

if TYPE_CHECKING:
    import importlib.resources.abc

    from segsync.rules.compiler import RuleCompiler, Strictness

__all__ = [
    "AccountIdentity",
    "Capabilities",
    "ChangeResult",
    "Connector",
    "ConnectorConfig",
    "ConnectorEntry",
    "ConnectorRegistry",
    "ConnectorUnavailable",
    "ContactChange",
    "EngagementPage",
    "ErasureResult",
    "Estimate",
    "GroupRepresentation",
    "PreflightItem",
    "ReadPage",
    "RemoteContact",
    "SegmentRepresentation",
    "TagRepresentation",
    "UnknownConnector",
    "Unwritable",
    "load_object",
    "registry",
    "unset_if_empty",
]

log = logging.getLogger("segsync.connector")


def load_object(path: str) -> Any:
    """Import `"package.module:Attr.attr"` (or `"package.module.Attr"`) and return the object."""
    module_name, sep, attrs = path.partition(":")
    if not sep:
        module_name, _, attrs = path.rpartition(".")
    if not module_name or not attrs:
        raise ValueError(f"{path!r} is not an import path like 'package.module:Name'")
    obj: Any = importlib.import_module(module_name)
    for attr in attrs.split("."):
        obj = getattr(obj, attr)
    return obj


class TagRepresentation(enum.StrEnum):
    """How a platform stores tags."""

    TAGS = "tags"  # native tags (kept as static segments on some platforms)
    MULTI_CHECKBOX = "multi_checkbox"  # a multi-select property of the contact
    ATTRIBUTE = "attribute"  # a multiple-choice attribute of the contact
    LISTS = "lists"  # one list per tag in an owned folder / MANUAL lists


class GroupRepresentation(enum.StrEnum):
    INTERESTS = "interests"  # interest categories holding interests
    ENUM_PROPERTY = "enum_property"  # enumeration properties
    CATEGORY_ATTRIBUTE = "category_attribute"  # category attributes
    NONE = "none"


class SegmentRepresentation(enum.StrEnum):
    SAVED_SEGMENT = "saved_segment"  # a saved segment (one flat any/all list of conditions)
    DYNAMIC_LIST = "dynamic_list"  # a dynamic list with a filter (an OR of ANDs)
    NONE = "none"  # no native dynamic segments through the API


class Capabilities(BaseModel):
    """What a platform allows, as data; the engine batches and paces from this alone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    write_batch_size: int = Field(gt=0, description="contacts per write call at most")
    read_page_size: int = Field(gt=0, description="contacts per read page at most")
    membership_batch_size: int = Field(gt=0, description="adds/removes per membership call")
    max_concurrency: int = Field(gt=0, description="requests in flight at once")
    rate_windows: tuple[RateWindow, ...] = ()
    tags: TagRepresentation
    groups: GroupRepresentation = GroupRepresentation.NONE
    native_segments: SegmentRepresentation = SegmentRepresentation.NONE
    static_segments: str = Field(description="what a materialised segment becomes: tag or list")
    incremental_reads: bool = True
    consent_not_held: frozenset[str] = Field(
        default=frozenset(),
        description="canonical consent statuses the platform cannot hold (a write of one "
        "sends nothing, so none is planned there)",
    )
    notes: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view for `segsync connectors`."""
        data = self.model_dump(mode="json")
        data["rate_windows"] = [
            f"{w.requests}/{w.seconds:g}s" + (f" ({w.scope})" if w.scope != "default" else "")
            for w in self.rate_windows
        ]
        return data


class ConnectorConfig(BaseModel):
    """Base for a connector's config block; subclasses add their secret as `SecretStr`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the platform's own API hosts (a parent domain covers its subdomains); a `base_url`
    #: elsewhere than these or loopback needs `allow_custom_host: true`
    vendor_hosts: ClassVar[tuple[str, ...]] = ()

    # declared before base_url, whose validator reads it
    allow_custom_host: bool = Field(
        default=False,
        description="accept a base_url that is neither the platform's API host nor loopback "
        "(the credentials are sent there)",
    )
    base_url: str | None = Field(
        default=None, description="override the API address (e.g. a `segsync emulate` server)"
    )
    enabled: bool = True

    @field_validator("base_url")
    @classmethod
    def _base_url_ok(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        allowed = bool(info.data.get("allow_custom_host", False))
        checked = check_base_url(value, vendor_hosts=cls.vendor_hosts, allow_custom_host=allowed)
        return checked.rstrip("/")

    def secrets(self) -> list[str]:
        """Every secret value in this config, for redaction."""
        return [
            v.get_secret_value() for v in self.__dict__.values() if isinstance(v, SecretStr)
        ]

    def fingerprint(self) -> str:
        """A digest of this validated config without its secrets (`SecretStr` fields left
        out, at any depth): equal for equal settings, different once a setting changes. The
        engine checks a platform again when it differs from the one last checked."""
        data = self.model_dump(mode="python")

        def plain(value: Any) -> Any:
            if isinstance(value, SecretStr):
                return None
            if isinstance(value, Mapping):
                return {
                    str(k): plain(v) for k, v in value.items() if not isinstance(v, SecretStr)
                }
            if isinstance(value, list | tuple | set | frozenset):
                items = [plain(v) for v in value]
                return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
            return value

        text = json.dumps(plain(data), sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


class AccountIdentity(BaseModel):
    """The account a connector's credentials reach: a stable `id` (never a secret) the state
    is bound to, and a human `label` for messages. Two identities are the same account when
    their ids are equal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, description="stable identifier of the account")
    label: str = Field(default="", description="a name a person recognises")

    def describe(self) -> str:
        """`label (id id)` for messages, or the id alone."""
        return f"{self.label} (id {self.id})" if self.label and self.label != self.id else (
            f"id {self.id}"
        )


def unset_if_empty(value: Any) -> Any:
    """None for blank text and empty collections (platforms hold them as unset), else
    `value`."""
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, frozenset | set | list | tuple) and not value:
        return None
    return value


class RemoteContact(BaseModel):
    """One platform record as read, already mapped to canonical names and types.

    `email` is the address as the platform holds it (normalised by the engine);
    `updated_at` is the platform's last-modified time, used for cursors and conflicts.
    `reachable` says whether the platform can still email the person whatever `consent`
    says (None: its consent status tells it all); a connector sets it True where an opt-out
    it reads (e.g. from one list) leaves the person reachable there, so that the engine
    sends the opt-out to that platform too. `unread` names what was not read (absent from
    `fields` / `tags` for that reason, not because it is unset).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform_id: str
    email: str
    fields: dict[str, Any] = Field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    consent: Consent = Field(default_factory=Consent)
    engagement: dict[str, Any] = Field(default_factory=dict)
    updated_at: dt.datetime | None = None
    deleted: bool = False
    reachable: bool | None = None
    #: canonical field names (and `tags`) the platform cannot hold now, so not read (e.g.
    #: the property or attribute behind them is missing from the account): unknown, never
    #: cleared; the engine keeps what it knew and writes the values back
    unread: frozenset[str] = frozenset()
    #: ids this record was known by before (e.g. an id scheme the connector no longer uses):
    #: the engine links a record it does not know by `platform_id` through them, once
    aliases: frozenset[str] = frozenset()


#: the canonical engagement names a connector may put in `RemoteContact.engagement` (and in
#: an `EngagementPage`), with their types; absent = the platform has no data (never 0)
ENGAGEMENT_KEYS: Mapping[str, str] = {
    "emails_delivered": "int",
    "opens": "int",
    "clicks": "int",
    "open_rate": "float",  # 0-1
    "click_rate": "float",  # 0-1
    "last_open": "datetime",  # UTC
    "last_click": "datetime",
    "signup_at": "datetime",
    "opted_in_at": "datetime",
    "signup_source": "text",
    "member_rating": "int",
}


@dataclasses.dataclass(frozen=True)
class EngagementPage:
    """A page of a `Connector.read_engagement` refresh: `values` maps platform id to that
    record's engagement (canonical engagement names, absent = no data, as in
    `RemoteContact.engagement`); `cursor` resumes after this page (None: nothing to
    remember)."""

    values: Mapping[str, Mapping[str, Any]]
    cursor: str | None


@dataclasses.dataclass(frozen=True)
class ReadPage:
    """A page of a read; `cursor` resumes after this page (None: nothing new to remember)."""

    contacts: Sequence[RemoteContact]
    cursor: str | None


class ContactChange(BaseModel):
    """The minimal write for one contact on one platform.

    Only what changed is set: `fields` maps canonical name to new value (None clears it);
    `consent` is the new status when it changes; `tags_add`/`tags_remove` are tag deltas;
    `new_email` renames the record. `platform_id` is known for records seen before; `create`
    is True when the platform has no record yet; `archive` removes the record instead (the
    `on_delete: archive_elsewhere` policy; a connector that cannot archive answers it
    `ok=False`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str
    platform_id: str | None = None
    create: bool = False
    fields: dict[str, Any] = Field(default_factory=dict)
    consent: ConsentStatus | None = None
    consent_basis: str | None = None
    tags_add: frozenset[str] = frozenset()
    tags_remove: frozenset[str] = frozenset()
    new_email: str | None = None
    #: archive the record (the least destructive removal the platform has: an archive where
    #: it has one, else a delete) instead of writing it; answered `deleted` when done
    archive: bool = False
    #: with `consent` non_subscribed: the record holds an opt-in that is another person's (a
    #: record relinked to this person); a platform that cannot take a record back to "never
    #: opted in" opts it out instead, never leaves it subscribed
    foreign_opt_in: bool = False

    @property
    def is_empty(self) -> bool:
        """True when nothing would be written."""
        return not (
            self.archive
            or self.create
            or self.fields
            or self.consent is not None
            or self.tags_add
            or self.tags_remove
            or self.new_email
        )


class ChangeResult(BaseModel):
    """The platform's verdict on one `ContactChange` (or one membership change)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str
    ok: bool
    platform_id: str | None = None
    created: bool = False
    error: str | None = Field(default=None, description="the platform's own message")
    code: str | None = None
    #: the part that was confirmed, when the platform confirmed only part (e.g. fields but not tags)
    partial: bool = False
    #: the consent status actually sent and confirmed (e.g. `pending` where `subscribed` was
    #: asked for); None when no consent was written
    sent_consent: ConsentStatus | None = None
    #: the legal basis sent with that consent, where the platform takes one; with
    #: `basis_from_default` True when it was the connector's configured default rather than
    #: the change's own `consent_basis` (the ledger records which)
    sent_basis: str | None = None
    basis_from_default: bool = False
    #: True when the change asked a consent status the platform cannot hold (e.g. `pending`
    #: where there is no double opt-in) and nothing was sent for it: no ledger row is written
    consent_not_sent: bool = False
    #: the consent status the platform held right before the write, where the connector
    #: read it then (a guard read): the ledger's `previous` (else the last one seen)
    held_consent: ConsentStatus | None = None
    #: the platform no longer holds the record (deleted or archived there: answered "not
    #: found" to an update of a linked record), or an `archive` change removed it; the engine
    #: records it as deleted there and never writes or re-creates it (`ok` False: nothing
    #: else of the change was written)
    deleted: bool = False


class ErasureResult(BaseModel):
    """A platform's verdict on the permanent deletion of one person (`Connector.erase`).

    `confirmed` is True when the platform no longer holds the person: deleted now, or
    `already_absent`. `error` is the platform's message when it is not confirmed (it never
    names the address).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str
    platform: str
    confirmed: bool
    already_absent: bool = False
    error: str | None = None


TYPICAL_CALL_SECONDS = 0.2
"""What one API call takes to be answered, for `Connector.estimate` (no platform is faster)."""


class Estimate(BaseModel):
    """What a first sync of `contacts` people costs: HTTP `calls` and `seconds` at best."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contacts: int
    calls: int
    seconds: float
    notes: tuple[str, ...] = ()


class PreflightItem(BaseModel):
    """One fact `segsync doctor` shows; `problem` is set when it blocks a first sync, and
    `unavailable` when that problem is the platform refusing the credentials."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    value: str
    problem: str | None = None
    unavailable: bool = False


@dataclasses.dataclass(frozen=True)
class Unwritable:
    """A schema field or a tag the platform cannot hold (found by `prepare` or
    `Connector.tag_problem`): left out of that platform's writes, never the platform's
    failure. `kind` is "field" or "tag"; `message` says why and how to fix it."""

    kind: str
    name: str
    message: str


class Connector(abc.ABC):
    """Base class of every connector; see the module docstring for the contract."""

    name: ClassVar[str]
    title: ClassVar[str]
    config_model: ClassVar[type[ConnectorConfig]]
    capabilities: ClassVar[Capabilities]
    #: dotted path of the rule compiler class ("pkg.module:Class"), imported lazily
    compiler_path: ClassVar[str | None] = None
    #: dotted path of the emulator class, imported lazily (for `segsync emulate`)
    emulator_path: ClassVar[str | None] = None
    #: default base URL (a connector may derive it from its config, e.g. a datacenter)
    default_base_url: ClassVar[str] = ""
    #: how the platform says how long to wait after a 429 (headers, body fields); the HTTP
    #: layer reads these hints from the connector and from nowhere else
    rate_limit_hints: ClassVar[RateLimitHints] = GENERIC_RATE_LIMIT_HINTS
    #: regular expressions matching this platform's credentials; they are redacted from every
    #: log line, error and report once the connector class is loaded
    credential_patterns: ClassVar[tuple[str, ...]] = ()
    #: the mapping file shipped inside the connector's own package (a resource name next to
    #: the connector's top-level module, e.g. "mapping.yaml"); None when it ships none
    default_mapping: ClassVar[str | None] = None
    #: whether `read_engagement` runs on the `engagement.refresh` period without being asked
    #: for this platform (False where a refresh is dear, e.g. one call per contact: it runs
    #: only when `engagement.platforms.<name>` sets a period)
    engagement_refresh_by_default: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.credential_patterns:
            from segsync.logs import register_credential_patterns

            register_credential_patterns(cls.credential_patterns)

    @classmethod
    def default_mapping_resource(cls) -> importlib.resources.abc.Traversable | None:
        """The shipped mapping file of this connector's package, or None."""
        if cls.default_mapping is None:
            return None
        import importlib.resources

        package = cls.__module__.partition(".")[0]
        return importlib.resources.files(package) / cls.default_mapping

    @classmethod
    def normalise_value(cls, spec: FieldSpec, value: Any) -> Any:
        """`value` as the platform stores and returns it (case, trimming, empty vs unset,
        precision), so that diffs compare like with like. The default keeps it as it is."""
        return value

    def normalise_field(self, name: str, value: Any) -> Any:
        """The canonical value of field `name` as this connector writes it and reads it back
        (None: read back as unset). The engine compares and records written values in this
        form. The default coerces to the schema's type, goes through the mapping's entry
        (transforms, formats) both ways, reads blank text and empty sets as
        unset (`unset_if_empty`: no platform tells them apart) and applies `normalise_value`;
        a connector whose rewrites depend on the field (a mapped property) overrides it."""
        spec = self.schema.fields.get(name)
        if spec is None or value is None:
            return value
        try:
            value = spec.coerce(value)
        except (TypeError, ValueError):
            return value
        from segsync.mapping import PlatformMapping  # the mapping module imports this one

        mapping = self.mapping
        if isinstance(mapping, PlatformMapping) and value is not None:
            entry = mapping.fields.get(name)
            if entry is not None and entry.writable and entry.readable:
                # through the mapping's transforms and formats, both ways
                value = mapping.from_platform(mapping.to_platform({name: value})).get(name)
        return type(self).normalise_value(spec, unset_if_empty(value))

    @classmethod
    def build_compiler(
        cls,
        schema: Schema,
        *,
        strictness: Strictness | str,
        config: ConnectorConfig | None = None,
        mapping: Any = None,
    ) -> RuleCompiler | None:
        """The one construction site of this platform's rule compiler (None: it has none).

        The compiler sees the connector's config and mapping, so a renamed property or merge
        field is what the native definition filters on. `config` may be None where no
        credentials are at hand (`segsync check`); the compiler then uses the defaults.
        """
        compiler_cls = cls.compiler_class()
        if compiler_cls is None:
            return None
        return compiler_cls(schema, strictness=strictness, config=config, mapping=mapping)

    def may_hold(self, static: str, consent: ConsentStatus) -> bool:
        """Whether segsync may place a person whose canonical consent is `consent` in its
        static segment `static`. A platform where membership makes a person reachable by
        campaigns (a list) answers False without an opt-in; the engine then leaves that
        person out of the membership until they opt in. The default holds anyone."""
        return True

    def compiler(self, strictness: Strictness | str) -> RuleCompiler | None:
        """This connector's rule compiler, built from its own config, schema and mapping."""
        return self.build_compiler(
            self.schema, strictness=strictness, config=self.config, mapping=self.mapping
        )

    def __init__(
        self,
        config: ConnectorConfig | Mapping[str, Any],
        *,
        schema: Schema | None = None,
        mapping: Any = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        budget: RateBudget | None = None,
    ) -> None:
        if not isinstance(config, self.config_model):
            config = self.config_model.model_validate(config)
        self.config = config
        self.schema = schema or Schema()
        self.mapping = mapping
        self.transport = transport
        self.clock = clock or SystemClock()
        self.budget = budget or RateBudget(
            max_concurrency=self.capabilities.max_concurrency,
            windows=self.capabilities.rate_windows,
            clock=self.clock,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    @classmethod
    def compiler_class(cls) -> type[RuleCompiler] | None:
        """The rule compiler class named by `compiler_path` (None when there is none)."""
        if cls.compiler_path is None:
            return None
        compiler: type[RuleCompiler] = load_object(cls.compiler_path)
        return compiler

    @property
    @abc.abstractmethod
    def stats(self) -> RequestStats:
        """Request accounting of this connector's client."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    async def __aenter__(self) -> Connector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @abc.abstractmethod
    async def check(self) -> None:
        """Verify credentials and the configured account/list; raise ApiError otherwise."""

    async def account_identity(self) -> AccountIdentity | None:
        """The account the credentials reach, read with one cheap documented call; None when
        the connector cannot tell (its state is then not bound to an account). Raises
        ApiError when the platform cannot be reached or refuses the credentials."""
        return None

    def account_facts(self) -> dict[str, str]:
        """Choices this connector made about the account (label -> value, e.g. the consent
        subscription type), for `check` and `plan` to print; empty until resolved."""
        return {}

    #: response headers in which the platform reports its rate-limit headroom (for
    #: `segsync doctor`); empty when it reports none
    rate_limit_headers: ClassVar[tuple[str, ...]] = ()

    def estimate(self, contacts: int) -> Estimate:
        """The calls and time a first sync of `contacts` people costs (a full read, then one
        write each), from the capabilities' batch sizes and rate windows; a connector with
        its own cost model (asynchronous imports, per-record calls) overrides it."""
        caps = self.capabilities
        reads = math.ceil(contacts / caps.read_page_size)
        writes = math.ceil(contacts / caps.write_batch_size)
        calls = reads + writes
        paced = [calls / w.requests * w.seconds for w in caps.rate_windows if w.scope == "default"]
        answered = calls * TYPICAL_CALL_SECONDS / caps.max_concurrency
        return Estimate(contacts=contacts, calls=calls, seconds=max([answered, *paced]))

    async def audience_size(self) -> int | None:
        """How many contacts the configured audience holds, read cheaply (None: cannot tell).
        Reads only."""
        return None

    async def preflight(self) -> list[PreflightItem]:
        """Read-only facts for `segsync doctor` beyond `check()` and `account_facts()`
        (scopes, consent lists, ...), each with the blocking problem it shows, if any.
        Default: none."""
        return []

    @abc.abstractmethod
    async def prepare(
        self, fields: Mapping[str, FieldSpec], tags: Sequence[str]
    ) -> list[Unwritable] | None:
        """Create what the platform needs before writes (fields, properties, tag options).

        A field or tag it cannot hold (e.g. an existing property of another type) is
        returned as an `Unwritable` (the engine leaves it out of this platform's writes),
        not raised; raise only when nothing can be written."""

    async def unwritable_fields(self, fields: Mapping[str, FieldSpec]) -> list[Unwritable]:
        """Reads only: the schema `fields` the account cannot hold as it is (e.g. an existing
        property of another type), which `prepare` would report; for `check --online` and
        `doctor`. Default: none."""
        return []

    def tag_problem(self, tag: str) -> str | None:
        """Why the platform cannot hold tag `tag` (None: it can); such a tag is left out of
        its writes and not given to `prepare`. Default: every tag is valid."""
        return None

    @abc.abstractmethod
    def read(self, cursor: str | None = None) -> AsyncIterator[ReadPage]:
        """Stream contacts changed since `cursor` (everything when None), de-duplicated."""

    async def missing(self, platform_ids: Sequence[str]) -> set[str]:
        """Which of `platform_ids` the platform no longer holds (deleted or archived), asked
        when a record appears next to one its contact is linked to that no read returned.
        Reads only. Default: none known (the new record is then reported as a duplicate)."""
        return set()

    async def read_engagement(self, cursor: str | None) -> AsyncIterator[EngagementPage]:
        """Stream engagement values that change without moving the `read` cursor (opens,
        clicks, rates), page by page, resuming after `cursor` (everything when None). Read
        only; the engine calls it when `engagement.refresh` is due for this platform and
        stores the values per platform. Default: yields nothing."""
        return
        yield  # pragma: no cover

    @abc.abstractmethod
    async def write(self, changes: Sequence[ContactChange]) -> list[ChangeResult]:
        """Apply changes (batched at the platform's maxima); one result per change, in order.

        Must never send `subscribed` for a contact the platform holds as unsubscribed or
        bounced; a refused record is a failed result carrying the platform's message.
        """

    async def publish_native(
        self, name: str, definition: Mapping[str, Any], ref: str | None
    ) -> str:
        """Create (ref None) or update an owned native segment; return its platform ref."""
        raise NotImplementedError(f"{self.name} has no native segments")

    @abc.abstractmethod
    async def ensure_static(self, name: str, ref: str | None) -> str:
        """Create (or find, when ref is known) an owned static segment (tag or list)."""

    async def find_owned(self, kind: str, name: str) -> str | None:
        """The ref of the platform's object segsync creates for `name` (`kind`: static or
        native), or None when there is none or the connector cannot look it up.

        The engine calls it for an object it started creating in a run that died before
        recording the answer, to adopt it rather than create a second one.
        """
        return None

    async def creation_name(self, kind: str, name: str) -> tuple[str, str | None]:
        """The platform name a new owned object for `name` (`kind`: static or native) will
        get, and, when the name segsync would choose is held by an object it did not
        create, a note naming that object (segsync then creates a distinct name, never
        adopts). The plan shows both. Default: `(name, None)`."""
        return name, None

    async def planned_objects(
        self,
        fields: Mapping[str, FieldSpec],
        tags: Sequence[str],
        definitions: Sequence[Mapping[str, Any]],
    ) -> list[str]:
        """What `prepare(fields, tags)` and publishing the native `definitions` would create
        on the platform now (merge fields, properties, attributes, options, tags, groups,
        lists), one line each, for the plan to show. Reads only. Default: nothing."""
        return []

    async def disowned(
        self, objects: Sequence[tuple[str, str, str]]
    ) -> dict[tuple[str, str], str]:
        """Of the owned objects `(kind, name, ref)` the state records, those that are not
        segsync's by the connector's current naming (e.g. recorded by an older segsync
        under a name people use), `(kind, name)` -> why. The plan treats them as not owned:
        it never writes or deletes them and publishes the segment anew. Default: none."""
        return {}

    async def recall(  # noqa: B027 - optional hook
        self, objects: Sequence[tuple[str, str, str]], *, first_run: bool,
        record: Callable[[str, str, str], None] | None = None,
    ) -> None:
        """Told at the start of a plan and of an apply: the objects the connector made for
        itself (`made`: containers such as a folder or tag lists, not segments) that the
        state records, `(kind, name, ref)`; `first_run`: the state never read this platform;
        `record(kind, name, ref)` (apply): records an object (or the intent to create one)
        at once, so a killed run leaves a trace. A connector knows its containers by these
        refs, never by name. Default: ignored."""

    def made(self) -> list[tuple[str, str, str]]:
        """The objects the connector made (or adopted) for itself since last asked,
        `(kind, name, ref)` (kinds other than tag, static and native), for the engine to
        record and give back (`recall`); drained. Default: none."""
        return []

    @abc.abstractmethod
    async def change_static_members(
        self, ref: str, add: Sequence[str], remove: Sequence[str]
    ) -> list[ChangeResult]:
        """Add and remove members (by email) of an owned static segment, batched."""

    @abc.abstractmethod
    async def delete_owned(self, kind: str, ref: str) -> None:
        """Delete an object segsync created (`kind`: segment, list, tag, ...)."""

    async def erase(self, email: str, platform_id: str | None) -> ErasureResult:
        """Delete the person with the normalised `email` permanently (GDPR erasure), by
        `platform_id` when known, else by email. Idempotent: a person the platform does not
        hold is `already_absent` (confirmed). Raises ApiError when the platform refuses or
        cannot be reached."""
        raise NotImplementedError(f"{self.name} cannot erase contacts")

    async def segment_members(self, ref: str) -> AsyncIterator[str]:
        """Emails the platform holds in a segment or list (for tests and verification)."""
        raise NotImplementedError(f"{self.name} cannot list segment members")
        yield  # pragma: no cover

    #: whether `read(cursor)` can miss an edit made shortly before it: the platform lists
    #: changes from an index that lags its writes (e.g. an eventually consistent search).
    #: The re-check before writing then also reads the records it writes by id
    #: (`read_by_id`), which sees every write at once
    listing_lags: ClassVar[bool] = False

    async def read_by_id(self, platform_ids: Sequence[str]) -> list[RemoteContact] | None:
        """The records `platform_ids` as the platform holds them now, read directly (not
        through the change listing), mapped as `read` maps them; an id the platform no
        longer holds (deleted, archived) comes back as `RemoteContact(deleted=True)` with that
        id and an empty email; a record the platform answers under another id (merged into
        another record) comes back under its own id. Reads only; batched and paced like the
        other reads. None: the connector cannot read by id (the default); the re-check then
        relies on `read` alone."""
        return None


class UnknownConnector(LookupError):
    """A connector name that is not installed; the message suggests the closest one."""


class ConnectorUnavailable(UnknownConnector):
    """A connector that is installed but cannot be loaded; the message says why."""


EntryPointSource = Callable[[str], Iterable[importlib.metadata.EntryPoint]]
"""Returns the entry points of a group (the registry's seam for tests)."""


def _installed_entry_points(group: str) -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=group)


@dataclasses.dataclass
class ConnectorEntry:
    """One installed connector: loaded lazily; `error` says why it is unavailable."""

    name: str
    target: str
    distribution: str | None
    _cls: type[Connector] | None = None
    error: str | None = None

    def load(self) -> type[Connector] | None:
        """Import the connector class; on failure, warn once and record why (then None)."""
        if self._cls is None and self.error is None:
            try:
                cls = load_object(self.target)
                if not (isinstance(cls, type) and issubclass(cls, Connector)):
                    raise TypeError(f"{self.target} is not a segsync Connector subclass")
                if getattr(cls, "name", None) != self.name:
                    raise TypeError(
                        f"{self.target}.name is {getattr(cls, 'name', None)!r}, "
                        f"but it is registered as {self.name!r}"
                    )
                self._cls = cls
            except Exception as exc:  # any failure to import or check makes it unavailable
                self.error = f"{type(exc).__name__}: {exc}"
                warnings.warn(
                    f"connector {self.name!r} ({self.target}) is unavailable: {self.error}",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return self._cls

    @property
    def available(self) -> bool:
        return self.load() is not None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view: name, target, distribution, availability, capabilities."""
        cls = self.load()
        return {
            "name": self.name,
            "title": getattr(cls, "title", self.name) if cls else self.name,
            "target": self.target,
            "distribution": self.distribution,
            "available": cls is not None,
            "error": self.error,
            "capabilities": cls.capabilities.summary() if cls else None,
            "compiler": cls.compiler_path if cls else None,
        }


class ConnectorRegistry:
    """Connectors found through the `segsync.connectors` entry points (plus registered ones).

    Discovery reads entry-point metadata only; a connector's module is imported on first use
    (`get`, `ConnectorEntry.load`). A connector that fails to import is listed as unavailable,
    with the reason, after one `RuntimeWarning`.
    """

    GROUP = "segsync.connectors"

    def __init__(self, entry_points: EntryPointSource = _installed_entry_points) -> None:
        self._source = entry_points
        self._entries: dict[str, ConnectorEntry] | None = None
        self._extra: dict[str, type[Connector]] = {}

    def _discover(self) -> dict[str, ConnectorEntry]:
        if self._entries is None:
            entries: dict[str, ConnectorEntry] = {}
            for ep in self._source(self.GROUP):
                dist = ep.dist.name if ep.dist is not None else None
                entries.setdefault(ep.name, ConnectorEntry(ep.name, ep.value, dist))
            self._entries = entries
        return self._entries

    def refresh(self) -> None:
        """Forget what was discovered (after installing a connector in-process)."""
        self._entries = None

    def register(self, cls: type[Connector]) -> None:
        """Register a class directly (tests, embedding); it wins over an entry point."""
        self._extra[cls.name] = cls

    def unregister(self, name: str) -> None:
        """Remove a class registered with `register`."""
        self._extra.pop(name, None)

    def installed(self) -> list[ConnectorEntry]:
        """The connectors found through entry points, by name, leaving out classes registered
        in-process (not imported until asked)."""
        found = self._discover()
        return [found[k] for k in sorted(found)]

    def entries(self) -> list[ConnectorEntry]:
        """Every installed connector, by name (not imported until asked)."""
        found = dict(self._discover())
        for name, cls in self._extra.items():
            found[name] = ConnectorEntry(name, f"{cls.__module__}:{cls.__qualname__}", None, cls)
        return [found[k] for k in sorted(found)]

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def available(self) -> list[type[Connector]]:
        """The connector classes that load, by name."""
        return [cls for e in self.entries() if (cls := e.load()) is not None]

    def get(self, name: str) -> type[Connector]:
        """The connector class called `name`.

        Raises:
            UnknownConnector: no such name (the message suggests the closest installed one).
            ConnectorUnavailable: installed, but it failed to load (the message says why).
        """
        if name in self._extra:
            return self._extra[name]
        entry = self._discover().get(name)
        if entry is None:
            names = self.names()
            close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownConnector(
                f"no connector called {name!r}{hint} (installed: {', '.join(names) or 'none'})"
            )
        cls = entry.load()
        if cls is None:
            raise ConnectorUnavailable(
                f"connector {name!r} is installed but unavailable: {entry.error}"
            )
        return cls


registry = ConnectorRegistry()
"""The process-wide registry."""
