"""The conformance kit, run against the Mailchimp emulator.

When the vendor's API description is present (`../shared/specs/mailchimp`), every request
the connector sends in these tests is also checked against it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import pytest
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator
from segsync_mailchimp.responsecheck import MISSING, response_validator
from segsync_mailchimp.speccheck import SpecChecker, SpecCheckingTransport, default_spec_dir

from segsync.clock import VirtualClock
from segsync.connector import Connector
from segsync.emulator.base import Emulator
from segsync.testing.harness import Harness, RecordingTransport
from segsync.testing.responses import ResponseValidator
from segsync.testing.suite import ConnectorSuite

SPEC_DIR = default_spec_dir()
CHECKER = SpecChecker(SPEC_DIR) if SPEC_DIR.is_dir() else None
RESPONSES = response_validator()


class TestMailchimpConformance(ConnectorSuite):
    connector_cls = MailchimpConnector
    emulator_cls = MailchimpEmulator
    config: ClassVar[dict[str, Any]] = {
        "api_key": MailchimpEmulator.default_api_key,
        "list_id": MailchimpEmulator.default_list_id,
    }
    # the kit writes addresses at example.com, which real Mailchimp refuses as fake
    emulator_kwargs: ClassVar[dict[str, Any]] = {"reject_fake_emails": False}
    page_size = 50

    checked: ClassVar[list[SpecCheckingTransport]] = []

    def response_validator(self) -> ResponseValidator | None:
        """Every emulator answer is checked against the description, when present."""
        return RESPONSES

    def make_connector(
        self, emulator: Emulator, clock: VirtualClock, transport: RecordingTransport
    ) -> Connector:
        """The kit's connector, with every request checked against the API description."""
        if CHECKER is None:
            return super().make_connector(emulator, clock, transport)
        checking = SpecCheckingTransport(transport, CHECKER)
        self.checked.append(checking)
        return super().make_connector(emulator, clock, checking)  # type: ignore[arg-type]

    def run(self, test: Callable[[Harness], Awaitable[None]]) -> None:
        """Run a kit test, then fail on any request that breaks the API description."""
        self.checked.clear()
        super().run(test)
        problems = [p for t in self.checked for p in t.summary()]
        assert not problems, "requests outside the Mailchimp API description:\n" + "\n".join(
            problems[:20]
        )


def test_conformance_requests_are_spec_checked() -> None:
    """The API description is present, so the kit's requests above were validated."""
    if CHECKER is None:
        pytest.skip(f"no Mailchimp API description at {SPEC_DIR} (../shared/specs absent)")
    suite = TestMailchimpConformance()
    suite.test_tags_added_and_removed()

    assert sum(t.checked for t in suite.checked) > 5


def test_conformance_answers_are_validated() -> None:
    """The description is present, so the emulator's answers above were checked against it."""
    if RESPONSES is None:
        pytest.skip(MISSING)
    suite = TestMailchimpConformance()
    suite.test_tags_added_and_removed()

    assert sum(t.checked for t in suite.response_checks) > 5
