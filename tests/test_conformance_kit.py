"""The conformance kit catches broken connectors, and its opt-outs are strict.

One pytester run (shared by the tests of this module) puts the kit on the template connector
and on subclasses of it that each carry one deliberate bug; each test then asserts which of
the kit's tests failed for which connector.
"""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from segsync.testing import ConnectorSuite

pytest.importorskip(
    "segsync_template",
    reason="the template connector is not installed: pip install -e examples/connector-template",
)

MODULE = '''
import json

from segsync.connector import ChangeResult
from segsync.http import RetryPolicy, build_client
from segsync.model import ConsentStatus
from segsync.testing import ConnectorSuite
from segsync_template import TemplateConnector
from segsync_template.emulator import TemplateEmulator


NO_HOOK = "the template emulator cannot edit between pages"


class Suite(ConnectorSuite):
    emulator_cls = TemplateEmulator
    config = {"api_key": TemplateEmulator.default_api_key}
    page_size = 10
    differential_rules = 12
    skip = {
        "test_edits_between_pages_are_read": NO_HOOK,
        "test_edits_during_a_slow_read_are_read": NO_HOOK,
    }


class TestTemplate(Suite):
    connector_cls = TemplateConnector


class ForgetsRemovals(TemplateConnector):
    """Drops tags_remove."""

    def to_record(self, change):
        record = super().to_record(change)
        record.pop("tags_remove", None)
        return record


class TestForgetsRemovals(Suite):
    connector_cls = ForgetsRemovals


class TestForgetsRemovalsOptedOut(Suite):
    connector_cls = ForgetsRemovals
    skip = {**Suite.skip, "test_tags_added_and_removed": "this platform cannot remove tags"}


class TestTemplateOptedOut(Suite):
    connector_cls = TemplateConnector
    skip = {**Suite.skip, "test_tags_added_and_removed": "removing tags is not supported"}


class Insists(TemplateConnector):
    """Sends a batch again when a record was refused."""

    async def write(self, changes):
        results = await super().write(changes)
        if any(not r.ok for r in results):
            results = await super().write(changes)
        return results


class TestInsists(Suite):
    connector_cls = Insists


class Resubscribes(TemplateConnector):
    """Works around the platform's refusal to resubscribe an opted-out contact."""

    async def write(self, changes):
        detour = [
            c.model_copy(update={"consent": ConsentStatus.NON_SUBSCRIBED})
            for c in changes if c.consent is ConsentStatus.SUBSCRIBED
        ]
        if detour:
            await super().write(detour)
        return await super().write(changes)


class TestResubscribes(Suite):
    connector_cls = Resubscribes


class Optimist(TemplateConnector):
    """Reports every record as confirmed."""

    async def write(self, changes):
        results = await super().write(changes)
        return [ChangeResult(email=r.email, ok=True, platform_id=r.platform_id) for r in results]


class TestOptimist(Suite):
    connector_cls = Optimist


class FirstPageOnly(TemplateConnector):
    """Stops reading after one page."""

    async def read(self, cursor=None):
        async for page in super().read(cursor):
            yield page
            return


class TestFirstPageOnly(Suite):
    connector_cls = FirstPageOnly


class NoRetries(TemplateConnector):
    """Never retries anything."""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        key = self.config.api_key.get_secret_value()
        self.client = build_client(
            platform=self.name, base_url=self.config.base_url,
            headers={"Authorization": f"Bearer {key}"}, secrets=[key],
            budget=self.budget, transport=self.transport, clock=self.clock,
            retry=RetryPolicy(attempts=1),
        )


class TestNoRetries(Suite):
    connector_cls = NoRetries


class Forgetful(TemplateConnector):
    """Ignores its cursor (re-reads everything) while declaring incremental reads."""

    async def read(self, cursor=None):
        async for page in super().read(None):
            yield page


class TestForgetful(Suite):
    connector_cls = Forgetful


class NoDedup(TemplateConnector):
    """Re-reads its overlap without dropping what it already returned."""

    async def read(self, cursor=None):
        if cursor:
            cursor = json.dumps({**json.loads(cursor), "seen": []})
        async for page in super().read(cursor):
            yield page


class TestNoDedup(Suite):
    connector_cls = NoDedup


class Vague(TemplateConnector):
    """Replaces the platform's messages with its own."""

    async def write(self, changes):
        results = await super().write(changes)
        return [r if r.ok else r.model_copy(update={"error": "write failed"}) for r in results]


class TestVague(Suite):
    connector_cls = Vague


class Leaky(TemplateConnector):
    """Shows its key in its repr."""

    def __repr__(self):
        return f"Leaky(key={self.config.api_key.get_secret_value()})"


class TestLeaky(Suite):
    connector_cls = Leaky


class LooseFilters(TemplateConnector):
    """Publishes a looser filter than the compiled one."""

    async def publish_native(self, name, definition, ref):
        conditions = [
            {**c, "op": "gte"} if c["op"] == "gt" else c for c in definition["conditions"][:1]
        ]
        return await super().publish_native(name, {**definition, "conditions": conditions}, ref)


class TestLooseFilters(Suite):
    connector_cls = LooseFilters
    differential_rules = 24
'''

#: connector class -> the kit's tests run on it (the template runs them all)
SELECTION: dict[str, tuple[str, ...]] = {
    "TestTemplate": (),
    "TestForgetsRemovals": ("test_tags_added_and_removed", "test_roundtrip_upsert"),
    "TestForgetsRemovalsOptedOut": ("test_tags_added_and_removed",),
    "TestTemplateOptedOut": ("test_tags_added_and_removed",),
    "TestInsists": ("test_4xx_not_retried",),
    "TestResubscribes": ("test_consent_never_resubscribed",),
    "TestOptimist": ("test_partial_batch_failure",),
    "TestFirstPageOnly": ("test_paging_beyond_one_page",),
    "TestNoRetries": ("test_429_honours_retry_after", "test_5xx_retried", "test_check"),
    "TestForgetful": ("test_incremental_cursor",),
    "TestLooseFilters": ("test_native_segments",),
    "TestVague": ("test_4xx_not_retried",),
    "TestNoDedup": ("test_incremental_overlap_deduplicated", "test_incremental_cursor"),
    "TestLeaky": ("test_secrets_stay_secret", "test_check"),
}


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What happened to one kit test on one connector."""

    outcome: str  # passed | failed | xfailed
    text: str


_OUTCOMES: dict[tuple[str, str], Outcome] = {}


@pytest.fixture
def outcomes(pytester: pytest.Pytester) -> dict[tuple[str, str], Outcome]:
    """(suite class, kit test) -> outcome, from one in-process run shared by the module."""
    if not _OUTCOMES:
        pytester.makepyfile(test_broken=textwrap.dedent(MODULE))
        selected = [
            f"{cls} and {test}" if tests else cls
            for cls, tests in SELECTION.items()
            for test in (tests or ("",))
        ]
        selected = [s.removesuffix(" and ") for s in selected]
        recorder = pytester.inline_run("-p", "no:cacheprovider", "-k", " or ".join(selected))
        for report in recorder.getreports("pytest_runtest_logreport"):
            if report.when != "call" and not report.failed:
                continue
            _, cls, test = report.nodeid.split("::")
            kind = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
            _OUTCOMES[(cls, test)] = Outcome(kind, str(report.longrepr or ""))
    return _OUTCOMES


def failed(outcomes: dict[tuple[str, str], Outcome], cls: str) -> set[str]:
    return {test for (c, test), o in outcomes.items() if c == cls and o.outcome == "failed"}


@pytest.mark.slow
def test_the_template_passes_the_whole_kit(outcomes: dict[tuple[str, str], Outcome]) -> None:
    """An unmodified connector passes every test of the kit (but those its emulator cannot
    run, which it opts out of: they fail, as strict xfails)."""
    ran = {test: o.outcome for (cls, test), o in outcomes.items() if cls == "TestTemplate"}
    opted_out = {"test_edits_between_pages_are_read", "test_edits_during_a_slow_read_are_read"}

    assert ran == {
        test: "xfailed" if test in opted_out else "passed" for test in ConnectorSuite.TESTS
    }


@pytest.mark.parametrize(
    ("cls", "failing"),
    [
        ("TestForgetsRemovals", {"test_tags_added_and_removed"}),
        ("TestInsists", {"test_4xx_not_retried"}),
        ("TestResubscribes", {"test_consent_never_resubscribed"}),
        ("TestOptimist", {"test_partial_batch_failure"}),
        ("TestFirstPageOnly", {"test_paging_beyond_one_page"}),
        ("TestNoRetries", {"test_429_honours_retry_after", "test_5xx_retried"}),
        ("TestForgetful", {"test_incremental_cursor"}),
        ("TestLooseFilters", {"test_native_segments"}),
        ("TestVague", {"test_4xx_not_retried"}),
        ("TestNoDedup", {"test_incremental_overlap_deduplicated", "test_incremental_cursor"}),
        ("TestLeaky", {"test_secrets_stay_secret"}),
    ],
)
@pytest.mark.slow
def test_a_broken_connector_fails_the_test_for_its_bug(
    outcomes: dict[tuple[str, str], Outcome], cls: str, failing: set[str]
) -> None:
    """Each deliberate bug fails exactly the kit tests that cover it (and not the others run)."""
    assert failed(outcomes, cls) == failing
    ran = {test for (c, test) in outcomes if c == cls}
    assert ran == set(SELECTION[cls])


@pytest.mark.slow
def test_failures_say_what_went_wrong(outcomes: dict[tuple[str, str], Outcome]) -> None:
    """The kit's assertion messages name the broken behaviour."""
    assert "sent once, not retried" in outcomes[("TestInsists", "test_4xx_not_retried")].text
    assert "unchanged contacts are not re-read" in (
        outcomes[("TestForgetful", "test_incremental_cursor")].text
    )
    assert "only on the platform" in outcomes[("TestLooseFilters", "test_native_segments")].text
    assert "carries none of the platform's messages" in (
        outcomes[("TestVague", "test_4xx_not_retried")].text
    )
    assert "a secret was shown" in outcomes[("TestLeaky", "test_secrets_stay_secret")].text


@pytest.mark.slow
def test_an_opt_out_of_a_failing_test_is_an_xfail(
    outcomes: dict[tuple[str, str], Outcome],
) -> None:
    """A test listed in `skip` with a reason runs as an expected failure."""
    result = outcomes[("TestForgetsRemovalsOptedOut", "test_tags_added_and_removed")]

    assert result.outcome == "xfailed"


@pytest.mark.slow
def test_an_opt_out_that_starts_passing_fails(outcomes: dict[tuple[str, str], Outcome]) -> None:
    """A test listed in `skip` that passes is a strict XPASS: a failure naming the reason."""
    result = outcomes[("TestTemplateOptedOut", "test_tags_added_and_removed")]

    assert result.outcome == "failed"
    assert "XPASS(strict)" in result.text
    assert "removing tags is not supported" in result.text


@pytest.mark.parametrize(
    ("skip", "message"),
    [
        ({"test_no_such_thing": "reason"}, "not a conformance test"),
        ({"test_check": "   "}, "needs a reason"),
    ],
)
def test_opt_outs_need_a_known_test_and_a_reason(skip: dict[str, str], message: str) -> None:
    """`skip` names must be tests of the kit, each with a non-empty reason."""
    with pytest.raises(TypeError, match=message):
        type("TestBad", (ConnectorSuite,), {"skip": skip})


def test_the_plugin_registers_its_marker(pytester: pytest.Pytester) -> None:
    """`--strict-markers` accepts the kit's marker (the plugin is loaded by its entry point)."""
    result = pytester.runpytest_inprocess("--markers")

    result.stdout.fnmatch_lines(["*segsync_optout*"])


@pytest.mark.parametrize(("lag", "waited"), [(5.0, 5.0), (0.0, 0.0), (None, 0.0)])
def test_the_kit_waits_for_an_eventually_consistent_emulator(
    lag: float | None, waited: float
) -> None:
    """`settle` advances the shared clock by the emulator's `read_lag_seconds` (nothing when
    it declares none)."""
    import types

    from segsync.clock import VirtualClock

    clock = VirtualClock()
    emulator = types.SimpleNamespace() if lag is None else types.SimpleNamespace(
        read_lag_seconds=lag
    )
    suite = ConnectorSuite()
    suite.harness = types.SimpleNamespace(clock=clock)  # type: ignore[assignment]
    start = clock.now()

    suite.settle(emulator)  # type: ignore[arg-type]

    assert (clock.now() - start).total_seconds() == waited
