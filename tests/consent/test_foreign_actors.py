"""Consent is evidence, judged over the three emulators with people acting between runs.

A hypothesis state machine starts from lived-in accounts (`lived_in.World`: people in every
status on each platform, the user's own tags and lists, some named as segsync names its own)
and interleaves sync runs with platform users and the people themselves acting directly:
adding people to their own Brevo lists (the declared consent list and others), deleting
segsync's consent attribute or its value, unsubscribing per list, blocklisting, unsubscribing
and cleaning on Mailchimp, opting out on HubSpot (the managed type or all email), confirming
double opt-ins, signing up with explicit evidence, tagging transactional members. After every
run the floor of `lived_in` holds (opt-ins only from evidence, opt-outs everywhere after one
run, a ledger row per consent change, a pending nobody touched stays pending).

`SEGSYNC_LONG=1` runs a longer campaign (`SEGSYNC_FOREIGN_EXAMPLES`/`_STEPS` override both).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

pytest.importorskip("segsync_mailchimp")
pytest.importorskip("segsync_hubspot")
pytest.importorskip("segsync_brevo.emulator")

from lived_in import MC_TAGS, PEOPLE, TOTALS, USER_LISTS, World

LONG = os.environ.get("SEGSYNC_LONG") == "1"
EXAMPLES = int(os.environ.get("SEGSYNC_FOREIGN_EXAMPLES", "200" if LONG else "25"))
STEPS = int(os.environ.get("SEGSYNC_FOREIGN_STEPS", "60" if LONG else "40"))

people = st.sampled_from(PEOPLE)


class ForeignActors(RuleBasedStateMachine):
    """Sync runs interleaved with people acting in Mailchimp, HubSpot and Brevo."""

    def __init__(self) -> None:
        super().__init__()
        self.world = World()

    def teardown(self) -> None:
        try:
            self._sync()  # the last acts are judged too
        finally:
            self.world.close()

    def _sync(self) -> None:
        problems = self.world.sync()
        assert not problems, "\n".join(problems)

    def _step(self) -> None:
        TOTALS.steps += 1

    # -- runs ----------------------------------------------------------------------------

    @rule()
    def sync(self) -> None:
        self._step()
        self._sync()

    @rule(minutes=st.integers(1, 600))
    def later_sync(self, minutes: int) -> None:
        self._step()
        self.world.clock.advance(60 * minutes)
        self._sync()

    # -- Brevo ---------------------------------------------------------------------------

    @rule(email=people, name=st.sampled_from(USER_LISTS))
    def brevo_add_to_own_list(self, email: str, name: str) -> None:
        self._step()
        self.world.brevo_add_to_list(email, name)

    @rule(email=people, whole_attribute=st.booleans())
    def brevo_delete_consent_attribute(self, email: str, whole_attribute: bool) -> None:
        self._step()
        if whole_attribute:
            self.world.brevo_delete_consent_attribute()
        else:
            self.world.brevo_clear_consent_value(email)

    @rule(email=people, name=st.sampled_from(USER_LISTS))
    def brevo_unsubscribe_from_list(self, email: str, name: str) -> None:
        self._step()
        self.world.brevo_unsubscribe_from_list(email, name)

    @rule(email=people)
    def brevo_blocklist(self, email: str) -> None:
        self._step()
        self.world.brevo_blocklist(email)

    @rule(email=people)
    def brevo_confirm_double_opt_in(self, email: str) -> None:
        self._step()
        self.world.brevo_confirm_double_opt_in(email)

    # -- Mailchimp -----------------------------------------------------------------------

    @rule(email=people, cleaned=st.booleans())
    def mailchimp_opt_out(self, email: str, cleaned: bool) -> None:
        self._step()
        if cleaned:
            self.world.mailchimp_clean(email)
        else:
            self.world.mailchimp_unsubscribe(email)

    @rule(email=people)
    def mailchimp_confirm_double_opt_in(self, email: str) -> None:
        self._step()
        self.world.mailchimp_confirm_double_opt_in(email)

    @rule(email=people)
    def mailchimp_sign_up(self, email: str) -> None:
        self._step()
        self.world.mailchimp_sign_up(email)

    @rule(email=people, tag=st.sampled_from(MC_TAGS))
    def mailchimp_tag_transactional(self, email: str, tag: str) -> None:
        self._step()
        self.world.mailchimp_tag(email, tag)

    # -- HubSpot -------------------------------------------------------------------------

    @rule(email=people, everything=st.booleans())
    def hubspot_opt_out(self, email: str, everything: bool) -> None:
        self._step()
        self.world.hubspot_unsubscribe(email, everything)

    @rule(email=people)
    def hubspot_subscribe(self, email: str) -> None:
        self._step()
        self.world.hubspot_subscribe(email)


@pytest.mark.timeout(900 if LONG else 240)
@pytest.mark.slow
def test_consent_floor_with_foreign_actors() -> None:
    """People acting in lived-in accounts between runs never break the consent floor."""
    ForeignActors.TestCase.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        derandomize=not LONG,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    before = (TOTALS.steps, TOTALS.syncs, TOTALS.checks)
    ForeignActors.TestCase().runTest()
    steps, syncs, checks = (a - b for a, b in zip(
        (TOTALS.steps, TOTALS.syncs, TOTALS.checks), before, strict=True))
    print(f"foreign actors: {steps} steps, {syncs} runs, {checks} invariant checks, "
          f"0 violations")
    assert steps >= min(300, EXAMPLES * STEPS // 2), steps
