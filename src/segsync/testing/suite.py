"""`ConnectorSuite`: the conformance tests every connector passes, configured in a few lines.

    class TestAcme(ConnectorSuite):
        connector_cls = AcmeConnector
        config = {"api_key": "acme-test-key", "list_id": "a1b2c3"}
        skip = {"test_native_segments": "why this platform cannot (a reason is required)"}

Each test builds a fresh world (`Harness`): a `VirtualClock` shared by the emulator and the
connector (rate-limit waits cost no wall time), the emulator, and the connector reaching it
in-process through `RecordingTransport` (the config's `base_url` is set to `base_url`).

What only the platform knows is a hook the subclass may override (sync or async):
`seed_remote`, `remote_state`, `modify_remote`, `unsubscribe_remote`, `invalid_change`,
`make_emulator`, `make_connector`, `settle`, and `response_validator` (a `ResponseValidator` built
from the vendor's API description: every JSON answer of the emulator is then checked
against it, and a test fails on any departure). The defaults go through a second connector
on the same emulator, so a connector passes with no overrides, but a platform should seed and
read back through its emulator's state (so a connector bug cannot hide itself).

Eventually consistent platforms: an emulator whose reads find a write only after a lag
declares it as `read_lag_seconds` (e.g. HubSpot's search index); the kit then advances the
shared clock by that much (`settle`) after writing and before reading back, as a person
would wait, so the contract is tested against the platform's strict reading. How the
connector copes when it does not wait is the platform's own tests' business.

Lived-in accounts: the tests in `LIVED_IN_TESTS` (round-trip, idempotent re-run, consent
never re-subscribed) start from the account fixture `account_fixture` (default `lived-in`,
the one the connector ships; a file path; None: an empty account) when the emulator can load
one (`segsync.emulator.fixture.Seedable`); they also check that what people made before
segsync is still there, unchanged, afterwards. `--segsync-account-fixture` overrides it
(`empty` for none).

Opting out of a test: list it in `skip` with a non-empty reason; the plugin runs it as
`xfail(strict=True)`, so the run fails once the test starts passing.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

import httpx
import pytest

from segsync.clock import VirtualClock
from segsync.connector import (
    ChangeResult,
    Connector,
    ContactChange,
    ReadPage,
    RemoteContact,
    load_object,
)
from segsync.emulator.base import Emulator
from segsync.emulator.fixture import Seedable
from segsync.http import ApiError
from segsync.model import CONSENT_OPT_OUTS, Consent, ConsentStatus, Contact, Schema, normalize_email
from segsync.rules import ast
from segsync.rules.compiler import RuleCompiler, Strictness
from segsync.rules.evaluate import evaluate
from segsync.rules.generate import CONNECTIVES, LEAF_TYPES, RuleGenerator
from segsync.testing.data import DEFAULT_SCHEMA, DEFAULT_TAGS, change_for, sample_contacts
from segsync.testing.harness import Harness, RecordingTransport, between_pages
from segsync.testing.responses import ResponseCheckingTransport, ResponseValidator

__all__ = ["ConnectorSuite", "SuiteTest"]

SuiteTest = Callable[["ConnectorSuite"], None]


async def _maybe_await(value: Any) -> Any:
    """A hook's result: hooks may be overridden as plain or async methods."""
    if inspect.isawaitable(value):
        return await value
    return value


def _set(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _key(email: str) -> str:
    return normalize_email(email)


class ConnectorSuite:
    """Base class of a connector's conformance tests; see the module docstring.

    Configuration (class attributes):
        connector_cls: the `Connector` subclass under test (required).
        emulator_cls: its `Emulator` subclass (default: the class its `emulator_path` names,
            imported when the first test builds its world).
        config: the connector's config; `base_url` is set by the kit.
        schema: the canonical schema of the suite (default: `DEFAULT_SCHEMA`).
        mapping: passed to the connector as `mapping=` (None: its default mapping).
        tags: the tags the suite writes.
        consents: the consent statuses given to created contacts.
        emulator_kwargs: extra keyword arguments for `emulator_cls`.
        base_url: the address the connector is configured with, before the emulator's
            `base_path` (requests stay in-process).
        page_size: when set, the connector runs with this `read_page_size` (keeps paging fast).
        skip: test name -> reason for opting out (a strict xfail).
        seed: seeds every generated contact and rule.
        differential_rules / differential_contacts: size of `test_native_segments`.
    """

    connector_cls: ClassVar[type[Connector]]
    emulator_cls: ClassVar[type[Emulator] | None] = None
    config: ClassVar[Mapping[str, Any]] = {}
    schema: ClassVar[Schema] = DEFAULT_SCHEMA
    mapping: ClassVar[Any] = None
    tags: ClassVar[tuple[str, ...]] = DEFAULT_TAGS
    consents: ClassVar[tuple[ConsentStatus, ...]] = (
        ConsentStatus.SUBSCRIBED,
        ConsentStatus.NON_SUBSCRIBED,
    )
    emulator_kwargs: ClassVar[Mapping[str, Any]] = {}
    base_url: ClassVar[str] = "http://127.0.0.1:8080"
    page_size: ClassVar[int | None] = None
    skip: ClassVar[Mapping[str, str]] = {}
    seed: ClassVar[int] = 0
    differential_rules: ClassVar[int] = 24
    differential_contacts: ClassVar[int] = 40
    #: contacts written in one call by `test_partial_batch_failure`
    partial_batch: ClassVar[int] = 5
    #: how far the clock moves between two incremental reads (beyond any read overlap)
    cursor_gap_seconds: ClassVar[float] = 3600.0
    #: the text field `modify_remote` changes by default
    modify_field: ClassVar[str] = "first_name"
    #: how long each page takes in `test_edits_during_a_slow_read_are_read` (beyond any
    #: connector's read overlap, so a cursor taken at the read's end loses the edits)
    slow_page_seconds: ClassVar[float] = 1000.0

    #: the account the emulator starts from in `LIVED_IN_TESTS`: a bundled fixture name, a
    #: file, or None for an empty account
    account_fixture: ClassVar[str | None] = "lived-in"
    #: the tests that run against a lived-in account (their premise holds there)
    LIVED_IN_TESTS: ClassVar[tuple[str, ...]] = (
        "test_roundtrip_upsert",
        "test_idempotent_rerun",
        "test_consent_never_resubscribed",
    )

    #: the tests of the kit, in the order they are defined
    TESTS: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, reason in cls.skip.items():
            if name not in ConnectorSuite.TESTS:
                raise TypeError(
                    f"{cls.__name__}.skip names {name!r}, which is not a conformance test "
                    f"(known: {', '.join(ConnectorSuite.TESTS)})"
                )
            if not isinstance(reason, str) or not reason.strip():
                raise TypeError(f"{cls.__name__}.skip[{name!r}] needs a reason")

    @pytest.fixture(autouse=True)
    def _kit_options(self, request: pytest.FixtureRequest) -> None:
        """Apply the plugin's command-line options to this test's instance."""
        seed = request.config.getoption("--segsync-seed", default=None)
        if seed is not None:
            self.seed = seed  # type: ignore[misc]
        fixture = request.config.getoption("--segsync-account-fixture", default=None)
        if fixture is not None:
            self.account_fixture = None if fixture == "empty" else fixture  # type: ignore[misc]
        self._test_name = str(getattr(request.node, "originalname", request.node.name))

    # -- building the world ---------------------------------------------------------------

    def make_clock(self) -> VirtualClock:
        return VirtualClock()

    def emulator_class(self) -> type[Emulator]:
        """`emulator_cls`, else the emulator the connector names in `emulator_path`."""
        if self.emulator_cls is not None:
            return self.emulator_cls
        path = self.connector_cls.emulator_path
        if path is None:
            raise NotImplementedError(
                f"{self.connector_cls.name} names no emulator_path; set emulator_cls"
            )
        cls: type[Emulator] = load_object(path)
        return cls

    def make_emulator(self, clock: VirtualClock) -> Emulator:
        """The emulator for one test, on the shared clock."""
        return self.emulator_class()(clock=clock, seed=self.seed, **dict(self.emulator_kwargs))

    def connector_class(self) -> type[Connector]:
        """`connector_cls`, with `read_page_size` replaced when `page_size` is set."""
        cls = self.connector_cls
        if self.page_size is None:
            return cls
        caps = cls.capabilities.model_copy(update={"read_page_size": self.page_size})
        return type(cls.__name__, (cls,), {"capabilities": caps, "__module__": cls.__module__})

    def make_connector(
        self, emulator: Emulator, clock: VirtualClock, transport: RecordingTransport
    ) -> Connector:
        """A connector configured for the emulator, reaching it through `transport`."""
        config = {**dict(self.config), "base_url": self.base_url + emulator.base_path}
        return self.connector_class()(
            config, schema=self.schema, mapping=self.mapping, transport=transport, clock=clock
        )

    def lived_in(self) -> bool:
        """Whether the current test starts from `account_fixture`."""
        return (
            self.account_fixture is not None
            and getattr(self, "_test_name", "") in self.LIVED_IN_TESTS
            and issubclass(self.emulator_class(), Seedable)
        )

    def load_account_fixture(self, emulator: Emulator) -> None:
        """Stage `account_fixture` in `emulator` (a `Seedable` one)."""
        assert isinstance(emulator, Seedable)
        assert self.account_fixture is not None
        data, source = type(emulator).fixture_data(self.account_fixture)
        emulator.load_fixture(data, source=source)

    def response_validator(self) -> ResponseValidator | None:
        """The checker of the emulator's JSON answers against the vendor's description
        (default None: answers are not checked). When one is returned, every answer the
        connectors of a test get is checked, and the test fails on any departure."""
        return None

    def _emulator_transport(self, emulator: Emulator) -> httpx.AsyncBaseTransport:
        """The emulator's transport, checking its answers when `response_validator` says."""
        inner: httpx.AsyncBaseTransport = emulator.transport()
        validator = getattr(self, "_responses", None)
        if validator is None:
            return inner
        checking = ResponseCheckingTransport(inner, validator)
        self.response_checks.append(checking)
        return checking

    async def _build(self) -> Harness:
        clock = self.make_clock()
        emulator = self.make_emulator(clock)
        if self.lived_in():
            self.load_account_fixture(emulator)
        recorder = RecordingTransport(self._emulator_transport(emulator), clock)
        connector = self.make_connector(emulator, clock, recorder)
        return Harness(clock, emulator, connector, recorder)

    async def preexisting(self) -> dict[str, RemoteContact]:
        """What the account held before the test wrote anything (empty unless lived-in)."""
        if not self.lived_in():
            return {}
        return dict(await _maybe_await(self.remote_state(self.harness.emulator)))

    def assert_untouched(
        self, before: Mapping[str, RemoteContact], after: Mapping[str, RemoteContact]
    ) -> None:
        """Everyone the account held before is still there with the same id, fields, tags
        and consent."""
        for email, was in before.items():
            assert email in after, f"{email}, in the account before, is gone"
            now = after[email]
            assert now.platform_id == was.platform_id, email
            assert _set(now.fields) == _set(was.fields), email  # new fields read as unset
            assert now.tags == was.tags, email
            assert now.consent.status == was.consent.status, email

    def run(self, test: Callable[[Harness], Awaitable[None]]) -> None:
        """Run one async test body in a fresh world, closing connectors afterwards."""

        self._responses = self.response_validator()
        self.response_checks: list[ResponseCheckingTransport] = []

        async def main() -> None:
            self.harness = await self._build()
            self._helpers: list[Connector] = []
            try:
                await test(self.harness)
            finally:
                await self.harness.connector.aclose()
                for helper in self._helpers:
                    await helper.aclose()

        asyncio.run(main())
        problems = [p for t in self.response_checks for p in t.problems]
        assert not problems, "emulator answers outside the vendor's description:\n" + "\n".join(
            list(dict.fromkeys(problems))[:20]
        )

    def helper_connector(self) -> Connector:
        """A second connector on the current emulator (the default hooks use it)."""
        h = self.harness
        recorder = RecordingTransport(self._emulator_transport(h.emulator), h.clock)
        connector = self.make_connector(h.emulator, h.clock, recorder)
        self._helpers.append(connector)
        return connector

    # -- hooks a platform may override -------------------------------------------------

    def settle(self, emulator: Emulator) -> None:
        """Wait until the platform's reads find every write: advance the shared clock by the
        emulator's `read_lag_seconds` (0 when it declares none)."""
        lag = float(getattr(emulator, "read_lag_seconds", 0.0) or 0.0)
        if lag > 0:
            self.harness.clock.advance(lag)

    async def seed_remote(self, emulator: Emulator, contacts: Sequence[Contact]) -> None:
        """Put `contacts` on the platform (default: written through a helper connector)."""
        helper = self.helper_connector()
        tags = set(self.tags).union(*(c.tags for c in contacts))
        await helper.prepare(self.schema.fields, sorted(tags))
        results = await helper.write([change_for(c) for c in contacts])
        failed = [r for r in results if not r.ok]
        assert not failed, f"seeding failed: {failed[:3]}"

    async def remote_state(self, emulator: Emulator) -> dict[str, RemoteContact]:
        """Every contact on the platform by normalised email (default: a helper's read,
        once the platform's reads caught up)."""
        self.settle(emulator)
        return {_key(c.email): c for c in await self.read_all(self.helper_connector())}

    async def modify_remote(self, emulator: Emulator, emails: Sequence[str]) -> None:
        """Change `modify_field` of `emails` on the platform, as a person would there."""
        helper = self.helper_connector()
        results = await helper.write(
            [ContactChange(email=e, fields={self.modify_field: f"Changed {i}"})
             for i, e in enumerate(emails)]
        )
        assert all(r.ok for r in results), results

    async def unsubscribe_remote(self, emulator: Emulator, email: str) -> None:
        """Make `email` unsubscribed on the platform (as if the person opted out there)."""
        helper = self.helper_connector()
        results = await helper.write(
            [ContactChange(email=email, consent=ConsentStatus.UNSUBSCRIBED)]
        )
        assert all(r.ok for r in results), results

    def invalid_change(self) -> ContactChange:
        """A change the platform refuses with a 4xx validation error."""
        return ContactChange(
            email="not-an-address", create=True, consent=ConsentStatus.NON_SUBSCRIBED
        )

    def compiler(self, connector: Connector) -> RuleCompiler:
        """`connector`'s rule compiler, built by the connector itself (`build_compiler`)
        from its own config, schema and mapping, as a sync builds it."""
        compiler = connector.compiler(Strictness.IGNORE)
        if compiler is None:
            raise NotImplementedError(f"{connector.name} has no rule compiler")
        return compiler

    # -- helpers --------------------------------------------------------------------------

    def contacts(self, n: int, prefix: str = "contact") -> list[Contact]:
        """`n` seeded sample contacts of the suite's schema."""
        return sample_contacts(
            self.schema, n, random.Random(self.seed), tags=self.tags,
            consents=self.consents, prefix=prefix,
        )

    @staticmethod
    async def read_pages(connector: Connector, cursor: str | None = None) -> list[ReadPage]:
        return [page async for page in connector.read(cursor)]

    async def read_all(
        self, connector: Connector, cursor: str | None = None
    ) -> list[RemoteContact]:
        return [c for page in await self.read_pages(connector, cursor) for c in page.contacts]

    async def write_ok(
        self, connector: Connector, changes: Sequence[ContactChange]
    ) -> list[ChangeResult]:
        results = await connector.write(changes)
        assert len(results) == len(changes), "write() returns one result per change"
        failed = [r for r in results if not r.ok]
        assert not failed, f"writes refused: {failed[:3]}"
        return results

    def assert_same_contact(self, expected: Contact, actual: RemoteContact) -> None:
        """Mapped fields, tags and consent of `actual` equal `expected`'s."""
        wanted = self.schema.coerce_fields(
            {k: v for k, v in expected.fields.items() if v is not None}
        )
        got = self.schema.coerce_fields(
            {k: v for k, v in actual.fields.items() if k in self.schema.fields and v is not None}
        )
        assert got == wanted, f"{expected.email}: fields {got} != {wanted}"
        assert set(actual.tags) == set(expected.tags), f"{expected.email}: tags"
        assert actual.consent.status == expected.consent.status, f"{expected.email}: consent"

    # -- the tests ----------------------------------------------------------------------------

    def test_check(self) -> None:
        """check() passes with the configured key and raises ApiError with another one."""

        async def body(h: Harness) -> None:
            await h.connector.check()
            h.emulator.api_key = "segsync-kit-wrong-key-000000"
            with pytest.raises(ApiError) as refused:
                await h.connector.check()

            assert refused.value.status in (401, 403)

        self.run(body)

    def test_secrets_stay_secret(self) -> None:
        """The config's secrets appear in no repr and no error message."""

        async def body(h: Harness) -> None:
            secrets = h.connector.config.secrets()
            assert secrets, "the config declares its key as a SecretStr"
            h.emulator.api_key = "segsync-kit-wrong-key-000000"
            with pytest.raises(ApiError) as refused:
                await h.connector.check()
            shown = [repr(h.connector), repr(h.connector.config), str(refused.value),
                     repr(refused.value), str(h.connector.config)]
            for secret in secrets:
                assert not any(secret in text for text in shown), "a secret was shown"

        self.run(body)

    def test_roundtrip_upsert(self) -> None:
        """Contacts written come back from read() equal on mapped fields, tags and consent."""

        async def body(h: Harness) -> None:
            contacts = self.contacts(6)
            before = await self.preexisting()
            await h.connector.prepare(self.schema.fields, list(self.tags))
            results = await self.write_ok(h.connector, [change_for(c) for c in contacts])
            assert [_key(r.email) for r in results] == [c.email for c in contacts]
            state = await _maybe_await(self.remote_state(h.emulator))
            assert set(state) == {c.email for c in contacts} | set(before)
            for contact in contacts:
                self.assert_same_contact(contact, state[contact.email])
            self.assert_untouched(before, state)

        self.run(body)

    def test_idempotent_rerun(self) -> None:
        """Writing the same changes again leaves the platform's state as it was."""

        async def body(h: Harness) -> None:
            contacts = self.contacts(4)
            lived = await self.preexisting()
            await h.connector.prepare(self.schema.fields, list(self.tags))
            first = await self.write_ok(h.connector, [change_for(c) for c in contacts])
            before = await _maybe_await(self.remote_state(h.emulator))
            assert set(lived) <= set(before)
            ids = {_key(r.email): r.platform_id for r in first}
            again = [
                change_for(c, create=False).model_copy(update={"platform_id": ids[c.email]})
                for c in contacts
            ]
            await self.write_ok(h.connector, again)
            after = await _maybe_await(self.remote_state(h.emulator))

            assert set(after) == set(before)
            for email, contact in before.items():
                assert after[email].platform_id == contact.platform_id
                assert after[email].fields == contact.fields
                assert after[email].tags == contact.tags
                assert after[email].consent.status == contact.consent.status
            self.assert_untouched(lived, after)

        self.run(body)

    def test_empty_write_sends_nothing(self) -> None:
        """write([]) and changes with nothing to change send no request."""

        async def body(h: Harness) -> None:
            contacts = self.contacts(2)
            await h.connector.prepare(self.schema.fields, list(self.tags))
            results = await self.write_ok(h.connector, [change_for(c) for c in contacts])
            sent = len(h.recorder.exchanges)

            assert await h.connector.write([]) == []
            empty = [ContactChange(email=r.email, platform_id=r.platform_id) for r in results]
            nothing = await h.connector.write(empty)

            assert [r.ok for r in nothing] == [True, True]
            assert h.recorder.exchanges[sent:] == []

        self.run(body)

    def test_paging_beyond_one_page(self) -> None:
        """A read of more than one page returns every contact exactly once."""

        async def body(h: Harness) -> None:
            size = h.connector.capabilities.read_page_size
            contacts = self.contacts(size + max(3, size // 2), prefix="page")
            await _maybe_await(self.seed_remote(h.emulator, contacts))
            self.settle(h.emulator)
            pages = await self.read_pages(h.connector)
            emails = [_key(c.email) for page in pages for c in page.contacts]

            assert len(pages) >= 2, "read() yields one page per platform page"
            assert len(emails) == len(set(emails)), "no contact read twice"
            assert set(emails) == {c.email for c in contacts}

        self.run(body)

    def test_incremental_cursor(self) -> None:
        """Reading from a cursor returns the contacts changed since, each once."""

        async def body(h: Harness) -> None:
            contacts = self.contacts(6, prefix="cursor")
            await _maybe_await(self.seed_remote(h.emulator, contacts))
            self.settle(h.emulator)
            pages = await self.read_pages(h.connector)
            cursor = pages[-1].cursor if pages else None
            assert cursor is not None, "a full read leaves a cursor"

            h.clock.advance(self.cursor_gap_seconds)
            changed = [contacts[1].email, contacts[4].email]
            await _maybe_await(self.modify_remote(h.emulator, changed))
            self.settle(h.emulator)
            h.clock.advance(1.0)
            again = await self.read_all(h.connector, cursor)
            emails = [_key(c.email) for c in again]

            assert len(emails) == len(set(emails)), "overlap is de-duplicated"
            assert set(changed) <= set(emails)
            if h.connector.capabilities.incremental_reads:
                assert set(emails) == set(changed), "unchanged contacts are not re-read"
            by_email = {_key(c.email): c for c in again}
            for email in changed:
                assert str(by_email[email].fields.get(self.modify_field, "")).startswith("Changed")

        self.run(body)

    def test_incremental_overlap_deduplicated(self) -> None:
        """Changes seconds after a cursor come back once; unchanged ones re-read are dropped.

        A cursor that re-reads an overlap (for clock skew and same-second writes) must not
        return again the contacts it already returned unchanged.
        """

        async def body(h: Harness) -> None:
            contacts = self.contacts(6, prefix="overlap")
            await _maybe_await(self.seed_remote(h.emulator, contacts))
            self.settle(h.emulator)
            pages = await self.read_pages(h.connector)
            cursor = pages[-1].cursor if pages else None
            assert cursor is not None, "a full read leaves a cursor"

            for changed in (contacts[2].email, contacts[3].email):
                h.clock.advance(2.0)
                await _maybe_await(self.modify_remote(h.emulator, [changed]))
                self.settle(h.emulator)
                h.clock.advance(1.0)
                pages = await self.read_pages(h.connector, cursor)
                emails = [_key(c.email) for page in pages for c in page.contacts]

                assert emails.count(changed) == 1, f"{changed} changed and is read once"
                if h.connector.capabilities.incremental_reads:
                    assert emails == [changed], "contacts re-read unchanged are dropped"
                cursor = next((p.cursor for p in reversed(pages) if p.cursor), cursor)

        self.run(body)

    def test_edits_between_pages_are_read(self) -> None:
        """An edit or a creation made between two pages of a read is seen by this read or the
        next incremental read, and no contact is lost from the read it pages through."""
        self.run(lambda h: self._edits_while_paging(h, page_seconds=1.0))

    def test_edits_during_a_slow_read_are_read(self) -> None:
        """As `test_edits_between_pages_are_read`, but each page takes `slow_page_seconds`
        (the read lasts far longer than the connector's overlap): the next read still has
        every edit, so the cursor is the read's start, not its end."""
        self.run(lambda h: self._edits_while_paging(h, page_seconds=self.slow_page_seconds))

    async def _edits_while_paging(self, h: Harness, *, page_seconds: float) -> None:
        """Three pages of contacts; after page 1, contacts at both ends and in the middle
        are edited and one is created; after page 2, two more are edited; every page takes
        `page_seconds` on the clock (after the edits, so they are early in the read)."""
        size = h.connector.capabilities.read_page_size
        contacts = self.contacts(2 * size + max(3, size // 2), prefix="paged")
        await _maybe_await(self.seed_remote(h.emulator, contacts))
        self.settle(h.emulator)
        created = self.contacts(1, prefix="created")[0]
        emails = [c.email for c in contacts]
        rounds = {
            1: [emails[0], emails[size + 1], emails[-1]],
            2: [emails[1], emails[-2]],
        }
        edited: dict[str, str] = {}
        h.clock.advance(self.cursor_gap_seconds)

        async def act(served: int) -> None:
            h.clock.advance(1.0)
            if served in rounds:
                await _maybe_await(self.modify_remote(h.emulator, rounds[served]))
                edited.update({e: f"Changed {i}" for i, e in enumerate(rounds[served])})
            if served == 1:
                await _maybe_await(self.seed_remote(h.emulator, [created]))
            h.clock.advance(max(0.0, page_seconds - 1.0))

        with between_pages(h.emulator, act):
            pages = await self.read_pages(h.connector)
        cursor = next((p.cursor for p in reversed(pages) if p.cursor), None)
        assert cursor is not None, "a full read leaves a cursor"
        first = [c for p in pages for c in p.contacts]
        assert edited, "the read served more than one page"
        h.clock.advance(60.0)
        second = await self.read_all(h.connector, cursor)
        latest = {_key(c.email): c for c in first + second}

        assert len(second) == len({_key(c.email) for c in second}), "no contact read twice"
        missing = sorted(set(emails) - set(latest))
        assert not missing, f"contacts lost by a read edited while it paged: {missing[:5]}"
        assert created.email in latest, "a contact created while the read paged is not read"
        lost = {
            e: latest[e].fields.get(self.modify_field)
            for e, value in edited.items()
            if str(latest[e].fields.get(self.modify_field)) != value
        }
        assert not lost, f"edits made while the read paged were never read: {lost}"
        if h.connector.capabilities.incremental_reads:
            reread = {_key(c.email) for c in second} & (set(emails) - set(edited))
            assert not reread, f"the next read re-reads unchanged contacts: {sorted(reread)[:5]}"

    def test_tags_added_and_removed(self) -> None:
        """tags_add and tags_remove both reach the platform."""

        async def body(h: Harness) -> None:
            first, second, third = self.tags[:3]
            contact = self.contacts(1, prefix="tags")[0].model_copy(
                update={"tags": frozenset({first, second})}
            )
            await h.connector.prepare(self.schema.fields, list(self.tags))
            [result] = await self.write_ok(h.connector, [change_for(contact)])
            change = ContactChange(
                email=contact.email, platform_id=result.platform_id,
                tags_add=frozenset({third}), tags_remove=frozenset({first}),
            )
            await self.write_ok(h.connector, [change])
            state = await _maybe_await(self.remote_state(h.emulator))

            assert set(state[contact.email].tags) == {second, third}

        self.run(body)

    def test_429_honours_retry_after(self) -> None:
        """A 429 is retried after the wait the platform asked for, then succeeds."""

        async def body(h: Harness) -> None:
            contacts = self.contacts(3, prefix="limited")
            await _maybe_await(self.seed_remote(h.emulator, contacts))
            self.settle(h.emulator)
            h.fault("429")
            got = await self.read_all(h.connector)

            assert {_key(c.email) for c in got} == {c.email for c in contacts}
            limited = [i for i, e in enumerate(h.recorder.exchanges) if e.status == 429]
            assert len(limited) == 1, "the 429 was seen once"
            hit = h.recorder.exchanges[limited[0]]
            retry = next(
                (e for e in h.recorder.exchanges[limited[0] + 1 :]
                 if (e.method, e.path) == (hit.method, hit.path)),
                None,
            )
            assert retry is not None, "the rate-limited request was retried"
            assert retry.status < 400
            wait = _retry_after(hit.headers)
            if wait is not None:
                assert retry.at - hit.at >= wait - 1e-6, "Retry-After was waited out"

        self.run(body)

    def test_5xx_retried(self) -> None:
        """A 5xx on a read is retried and the read completes."""

        async def body(h: Harness) -> None:
            contacts = self.contacts(3, prefix="flaky")
            await _maybe_await(self.seed_remote(h.emulator, contacts))
            self.settle(h.emulator)
            h.fault("503", times=2)
            got = await self.read_all(h.connector)

            assert {_key(c.email) for c in got} == {c.email for c in contacts}
            assert [e.status for e in h.recorder.exchanges].count(503) == 2
            assert h.recorder.exchanges[-1].status < 400

        self.run(body)

    def test_4xx_not_retried(self) -> None:
        """A record the platform refuses is sent once; the error carries its message."""

        async def body(h: Harness) -> None:
            await h.connector.prepare(self.schema.fields, list(self.tags))
            sent = len(h.recorder.exchanges)
            change = self.invalid_change()
            try:
                results = await h.connector.write([change])
            except ApiError as exc:
                status, message = exc.status, exc.message
                assert 400 <= status < 500, f"refused with a 4xx, not {status}"
            else:
                assert len(results) == 1
                assert not results[0].ok, "an invalid record is reported as failed"
                message = results[0].error or ""
            writes = [e for e in h.recorder.exchanges[sent:] if e.is_write]

            assert len(writes) == 1, f"sent once, not retried: {writes}"
            assert message.strip(), "the platform's message is kept"
            said = _messages_in(writes[0].body)
            assert not said or any(m in message for m in said), (
                f"the error {message!r} carries none of the platform's messages {said}"
            )

        self.run(body)

    def test_partial_batch_failure(self) -> None:
        """When a batch is refused in part, each record gets its own verdict."""

        async def body(h: Harness) -> None:
            contacts = self.contacts(self.partial_batch, prefix="partial")
            await h.connector.prepare(self.schema.fields, list(self.tags))
            h.fault("partial", times=10**6)
            results = await h.connector.write([change_for(c) for c in contacts])
            h.no_faults()

            assert [_key(r.email) for r in results] == [c.email for c in contacts]
            failed = {_key(r.email) for r in results if not r.ok}
            assert failed, "the injected partial failure is reported"
            assert len(failed) < len(contacts), "the other records are confirmed"
            assert all(r.error for r in results if not r.ok), "failures carry a message"
            state = await _maybe_await(self.remote_state(h.emulator))
            assert {c.email for c in contacts} - failed <= set(state)

        self.run(body)

    def test_consent_never_resubscribed(self) -> None:
        """A write asking `subscribed` for an opted-out contact leaves it opted out."""

        async def body(h: Harness) -> None:
            contact = self.contacts(1, prefix="optout")[0].model_copy(
                update={"consent": Consent(status=ConsentStatus.SUBSCRIBED)}
            )
            lived = await self.preexisting()
            await _maybe_await(self.seed_remote(h.emulator, [contact]))
            await _maybe_await(self.unsubscribe_remote(h.emulator, contact.email))
            state = await _maybe_await(self.remote_state(h.emulator))
            assert state[contact.email].consent.status in CONSENT_OPT_OUTS
            # the people who opted out before segsync came are asked for too
            opted_out = sorted(e for e, c in lived.items() if c.consent.status in CONSENT_OPT_OUTS)
            asks = [contact.email, *opted_out]

            await h.connector.write(
                [ContactChange(email=email, platform_id=state[email].platform_id,
                               consent=ConsentStatus.SUBSCRIBED) for email in asks]
            )
            after = await _maybe_await(self.remote_state(h.emulator))

            for email in asks:
                assert after[email].consent.status in CONSENT_OPT_OUTS, email

        self.run(body)

    def test_native_segments(self) -> None:
        """Published native segments select exactly what the reference evaluator selects.

        Rules are generated from the compiler's own capabilities (leaf types, connectives,
        depth); contacts are generated near the rules' literals and seeded on the platform.
        Rules the compiler does not publish natively are skipped; at least one must be.
        """

        async def body(h: Harness) -> None:
            compiler = self.compiler(h.connector)
            caps = compiler.CAPS
            now = h.clock.now()
            connectives = set(caps.connectives) | ({"not"} if caps.negated_leaves else set())
            generator = RuleGenerator(
                self.schema, seed=self.seed, now=now,
                node_types=set(caps.node_types) & LEAF_TYPES,
                connectives=connectives & CONNECTIVES,
                max_depth=max(0, caps.max_depth),
            )
            rules = [generator.rule() for _ in range(self.differential_rules)]
            contacts = generator.contacts(
                self.differential_contacts, rule=ast.Or(items=tuple(rules))
            )
            await _maybe_await(self.seed_remote(h.emulator, contacts))
            self.settle(h.emulator)
            published = 0
            for i, rule in enumerate(rules):
                name = f"conformance-{i}"
                compiled = compiler.compile(name, rule)
                if compiled.mode not in ("native", "split") or compiled.definition is None:
                    continue
                if compiled.residual is not None and compiled.residual_tag is not None:
                    await self.tag_residual(h, contacts, compiled.residual, compiled.residual_tag)
                ref = await h.connector.publish_native(name, compiled.definition, None)
                members = {_key(e) async for e in h.connector.segment_members(ref)}
                expected = {
                    c.email for c in contacts
                    if evaluate(rule, c, now=h.clock.now(), schema=self.schema)
                }
                assert members == expected, (
                    f"{name}: {ast.rule_to_json(rule)} -> {compiled.definition}: "
                    f"only on the platform {sorted(members - expected)}, "
                    f"only in the evaluator {sorted(expected - members)}"
                )
                published += 1
            assert published, "at least one generated rule compiles natively"

        self.run(body)

    async def tag_residual(
        self, h: Harness, contacts: Sequence[Contact], residual: ast.Rule, tag: str
    ) -> None:
        """Materialise a split segment's residual: tag the contacts it selects, as sync would."""
        now = h.clock.now()
        members = [c for c in contacts if evaluate(residual, c, now=now, schema=self.schema)]
        if not members:
            return
        await h.connector.prepare(self.schema.fields, [tag])
        await self.write_ok(
            h.connector, [ContactChange(email=c.email, tags_add=frozenset({tag})) for c in members]
        )


def _messages_in(body: str) -> list[str]:
    """Human-readable strings of a JSON error body (values of message-like keys)."""
    try:
        data = json.loads(body)
    except ValueError:
        return []
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.lower() in _MESSAGE_KEYS and isinstance(value, str) and value.strip():
                    found.append(value.strip())
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return found


_MESSAGE_KEYS = frozenset({"message", "error", "detail", "title", "error_description", "reason"})


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


ConnectorSuite.TESTS = tuple(
    name for name in vars(ConnectorSuite) if name.startswith("test_")
)
