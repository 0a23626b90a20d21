"""The conformance kit catches broken connectors, and its opt-outs are strict.

Each test writes a connector module into a pytester directory: a subclass of the template
connector with one deliberate bug, run through `ConnectorSuite`, and asserts which of the
kit's tests fail. The template itself (examples/connector-template) passes the whole kit.
"""

from __future__ import annotations

import textwrap

import pytest

from segsync.testing import ConnectorSuite

pytest.importorskip(
    "segsync_template",
    reason="the template connector is not installed: pip install -e examples/connector-template",
)

HEADER = '''
import json
from segsync.http import RetryPolicy, build_client
from segsync.testing import ConnectorSuite
from segsync_template import TemplateConnector, TemplateEmulator


class Suite(ConnectorSuite):
    emulator_cls = TemplateEmulator
    config = {"api_key": TemplateEmulator.default_api_key}
    page_size = 10
    differential_rules = 8
'''


def run_suite(pytester: pytest.Pytester, body: str, *tests: str) -> pytest.RunResult:
    """Run the kit's `tests` (all when none) on the connector module `body`."""
    pytester.makepyfile(test_broken=HEADER + textwrap.dedent(body))
    args = ["-p", "no:cacheprovider", "-q", "-ra"]
    if tests:
        args += ["-k", " or ".join(tests)]
    return pytester.runpytest_inprocess(*args)


def test_the_template_passes_the_whole_kit(pytester: pytest.Pytester) -> None:
    """An unmodified connector passes every test of the kit."""
    result = run_suite(pytester, '''
        class TestTemplate(Suite):
            connector_cls = TemplateConnector
    ''')

    result.assert_outcomes(passed=len(ConnectorSuite.TESTS))


def test_ignoring_tags_remove_fails(pytester: pytest.Pytester) -> None:
    """A connector that drops tags_remove fails the tags test."""
    result = run_suite(pytester, '''
        class ForgetsRemovals(TemplateConnector):
            def to_record(self, change):
                record = super().to_record(change)
                record.pop("tags_remove", None)
                return record

        class TestForgetsRemovals(Suite):
            connector_cls = ForgetsRemovals
    ''', "test_tags_added_and_removed", "test_roundtrip_upsert")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FAILED*test_tags_added_and_removed*"])


def test_retrying_a_refused_record_fails(pytester: pytest.Pytester) -> None:
    """A connector that sends a refused record again fails the 4xx test."""
    result = run_suite(pytester, '''
        class Insists(TemplateConnector):
            async def write(self, changes):
                results = await super().write(changes)
                if any(not r.ok for r in results):
                    results = await super().write(changes)
                return results

        class TestInsists(Suite):
            connector_cls = Insists
    ''', "test_4xx_not_retried")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*sent once, not retried*"])


def test_resubscribing_an_opted_out_contact_fails(pytester: pytest.Pytester) -> None:
    """A connector that works around the platform's refusal to resubscribe fails."""
    result = run_suite(pytester, '''
        from segsync.model import ConsentStatus

        class Resubscribes(TemplateConnector):
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
    ''', "test_consent_never_resubscribed")

    result.assert_outcomes(failed=1)


def test_hiding_partial_failures_fails(pytester: pytest.Pytester) -> None:
    """A connector that reports a partly refused batch as all confirmed fails."""
    result = run_suite(pytester, '''
        from segsync.connector import ChangeResult

        class Optimist(TemplateConnector):
            async def write(self, changes):
                results = await super().write(changes)
                return [ChangeResult(email=r.email, ok=True, platform_id=r.platform_id)
                        for r in results]

        class TestOptimist(Suite):
            connector_cls = Optimist
    ''', "test_partial_batch_failure")

    result.assert_outcomes(failed=1)


def test_reading_one_page_only_fails(pytester: pytest.Pytester) -> None:
    """A connector that stops after the first page fails the paging test."""
    result = run_suite(pytester, '''
        class FirstPageOnly(TemplateConnector):
            async def read(self, cursor=None):
                async for page in super().read(cursor):
                    yield page
                    return

        class TestFirstPageOnly(Suite):
            connector_cls = FirstPageOnly
    ''', "test_paging_beyond_one_page")

    result.assert_outcomes(failed=1)


def test_not_retrying_429_and_5xx_fails(pytester: pytest.Pytester) -> None:
    """A connector whose client never retries fails the 429 and 5xx tests."""
    result = run_suite(pytester, '''
        class NoRetries(TemplateConnector):
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
    ''', "test_429_honours_retry_after", "test_5xx_retried", "test_check")

    result.assert_outcomes(passed=1, failed=2)


def test_an_incremental_read_that_repeats_everything_fails(pytester: pytest.Pytester) -> None:
    """A connector that ignores its cursor but claims incremental reads fails."""
    result = run_suite(pytester, '''
        class Forgetful(TemplateConnector):
            async def read(self, cursor=None):
                async for page in super().read(None):
                    yield page

        class TestForgetful(Suite):
            connector_cls = Forgetful
    ''', "test_incremental_cursor")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*unchanged contacts are not re-read*"])


def test_a_wrong_segment_filter_fails_the_differential_test(pytester: pytest.Pytester) -> None:
    """A connector that publishes a different filter than compiled fails the differential."""
    result = run_suite(pytester, '''
        class LooseFilters(TemplateConnector):
            async def publish_native(self, name, definition, ref):
                loose = {**definition, "conditions": definition["conditions"][:1]}
                loose["conditions"] = [
                    {**c, "op": "gte"} if c["op"] == "gt" else c for c in loose["conditions"]
                ]
                return await super().publish_native(name, loose, ref)

        class TestLooseFilters(Suite):
            connector_cls = LooseFilters
            differential_rules = 24
    ''', "test_native_segments")

    result.assert_outcomes(failed=1)


def test_an_opt_out_of_a_failing_test_is_an_xfail(pytester: pytest.Pytester) -> None:
    """A test listed in `skip` with a reason runs as an expected failure."""
    result = run_suite(pytester, '''
        class ForgetsRemovals(TemplateConnector):
            def to_record(self, change):
                record = super().to_record(change)
                record.pop("tags_remove", None)
                return record

        class TestForgetsRemovals(Suite):
            connector_cls = ForgetsRemovals
            skip = {"test_tags_added_and_removed": "this platform cannot remove tags"}
    ''', "test_tags_added_and_removed")

    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["*this platform cannot remove tags*"])


def test_an_opt_out_that_starts_passing_fails(pytester: pytest.Pytester) -> None:
    """A test listed in `skip` that passes is a strict XPASS: the run fails."""
    result = run_suite(pytester, '''
        class TestTemplate(Suite):
            connector_cls = TemplateConnector
            skip = {"test_tags_added_and_removed": "removing tags is not supported"}
    ''', "test_tags_added_and_removed")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*"])
    assert result.ret != 0


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
