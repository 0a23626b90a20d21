"""The conformance kit runs round-trip, idempotent re-run and consent-never-resubscribed
from a lived-in account, and checks that what people made before is left alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator

from segsync.clock import VirtualClock
from segsync.connector import ChangeResult, Connector, ContactChange
from segsync.emulator.base import Emulator
from segsync.model import ConsentStatus
from segsync.testing.harness import Harness, RecordingTransport
from segsync.testing.suite import ConnectorSuite


class Probe(ConnectorSuite):
    """The Mailchimp suite, recording how many members each test's account starts with."""

    connector_cls = MailchimpConnector
    emulator_cls = MailchimpEmulator
    config: ClassVar[dict[str, Any]] = {
        "api_key": MailchimpEmulator.default_api_key,
        "list_id": MailchimpEmulator.default_list_id,
    }
    emulator_kwargs: ClassVar[dict[str, Any]] = {"reject_fake_emails": False}
    started_with: ClassVar[dict[str, int]] = {}

    async def _build(self) -> Harness:
        harness = await super()._build()
        emulator = harness.emulator
        assert isinstance(emulator, MailchimpEmulator)
        self.started_with[self._test_name] = len(emulator.lists[emulator.default_list_id].members)
        return harness


def run_probe(name: str, suite: type[Probe] = Probe) -> None:
    probe = suite()
    probe._test_name = name
    getattr(probe, name)()


@pytest.mark.parametrize("name", Probe.LIVED_IN_TESTS)
def test_lived_in_tests_start_from_the_bundled_account(name: str) -> None:
    run_probe(name)
    assert Probe.started_with[name] == 7  # the members of segsync_mailchimp's lived-in.yaml


def test_other_tests_start_empty_and_none_means_empty() -> None:
    run_probe("test_check")
    assert Probe.started_with["test_check"] == 0

    class Empty(Probe):
        account_fixture = None

    run_probe("test_roundtrip_upsert", Empty)
    assert Probe.started_with["test_roundtrip_upsert"] == 0


class Meddling(Probe):
    """A platform (or connector) that re-subscribes a person who had unsubscribed before
    segsync came, while the test writes its own contacts."""

    async def _build(self) -> Harness:
        harness = await super()._build()
        emulator = harness.emulator
        assert isinstance(emulator, MailchimpEmulator)
        self._meddle_on = emulator
        return harness

    async def write_ok(self, connector: Any, changes: Any) -> Any:
        results = await super().write_ok(connector, changes)
        member = self._meddle_on.get_member("dee.unsubscribed@lived.dev")
        assert member is not None
        member.status = "subscribed"
        return results


def test_the_kit_catches_a_write_that_touches_pre_existing_people() -> None:
    with pytest.raises(AssertionError, match=r"dee\.unsubscribed@lived\.dev"):
        run_probe("test_roundtrip_upsert", Meddling)


def test_consent_never_resubscribed_asks_for_the_lived_in_opt_outs_too() -> None:
    """The kit asks `subscribed` for people who opted out before segsync (unsubscribed,
    cleaned) too: a connector that re-subscribes only those fails it."""

    class Leaky(Probe):
        def make_connector(
            self, emulator: Emulator, clock: VirtualClock, transport: RecordingTransport
        ) -> Connector:
            connector = super().make_connector(emulator, clock, transport)
            assert isinstance(emulator, MailchimpEmulator)
            real = connector.write

            async def write(changes: Sequence[ContactChange]) -> list[ChangeResult]:
                results = await real(changes)
                for change in changes:
                    member = emulator.get_member(change.email)
                    if (
                        change.consent == ConsentStatus.SUBSCRIBED
                        and change.email.endswith("@lived.dev")
                        and member is not None
                    ):
                        member.status = "subscribed"
                return results

            connector.write = write  # type: ignore[method-assign]
            return connector

    with pytest.raises(AssertionError, match=r"lived\.dev"):
        run_probe("test_consent_never_resubscribed", Leaky)
    run_probe("test_consent_never_resubscribed")  # the real connector keeps them out
