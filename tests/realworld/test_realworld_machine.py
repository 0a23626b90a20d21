"""Real accounts while segsync runs, as a hypothesis state machine over the three emulators.

From lived-in accounts (`lived_in.World`, extended by `realworld.RealWorld` with segments),
sync runs interleave with platform users: making tags and lists under the names segsync
gives its own, deleting people and importing them again, editing people (another case,
whitespace, empty) between runs and during a run's read, pointing a platform at another
account and rebinding it, a platform going down mid-run, and people opting in and out. After
every run the invariants of `realworld` hold: no cross-linked person, no lost edit, no
adopted object, nothing written after a quiet run, owed writes shown by `plan`, a refused
account written nothing while the others carry on, and the consent floor.

`SEGSYNC_LONG=1` runs a longer campaign (`SEGSYNC_REALWORLD_EXAMPLES`/`_STEPS` override).
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

pytest.importorskip("segsync_mailchimp")
pytest.importorskip("segsync_hubspot")
pytest.importorskip("segsync_brevo.emulator")

from lived_in import MC_TAGS, PEOPLE, PLATFORMS, TOTALS, USER_LISTS
from realworld import COUNTRIES, NAMED_LIKE_SEGSYNC, NEW_TAGS, RealWorld, stem

LONG = os.environ.get("SEGSYNC_LONG") == "1"
EXAMPLES = int(os.environ.get("SEGSYNC_REALWORLD_EXAMPLES", "150" if LONG else "12"))
STEPS = int(os.environ.get("SEGSYNC_REALWORLD_STEPS", "60" if LONG else "40"))
#: `SEGSYNC_REALWORLD_SHRINK=0` reports a violation as found (shrinking replays many runs)
SHRINK = os.environ.get("SEGSYNC_REALWORLD_SHRINK", "1") != "0"

people = st.sampled_from(PEOPLE)
platforms = st.sampled_from(PLATFORMS)
#: how a user types a value: as is, another case, padded, or emptied ("" vs unset)
typings = st.sampled_from(("as is", "upper", "lower", "padded", "empty", "unset"))
fields = st.sampled_from(("first_name", "country"))


def typed(field: str, email: str, n: int, typing: str) -> str | None:
    value = f"{stem(email)} {n}" if field == "first_name" else COUNTRIES[n % len(COUNTRIES)]
    return {"as is": value, "upper": value.upper(), "lower": value.lower(),
            "padded": f"  {value} ", "empty": "", "unset": None}[typing]


class RealAccounts(RuleBasedStateMachine):
    """Sync runs interleaved with users and people acting on the three platforms."""

    def __init__(self) -> None:
        super().__init__()
        self.world = RealWorld()

    def teardown(self) -> None:
        try:
            for platform in list(self.world.swapped):  # the last acts are judged too
                self.world.swap_back(platform)
            self._sync()
        finally:
            self.world.close()

    def _sync(self) -> None:
        problems = self.world.sync()
        assert not problems, "\n".join(problems)

    def _act(self) -> None:
        TOTALS.steps += 1
        self.world.quiet = False

    def _free(self, platform: str) -> bool:
        return platform not in self.world.swapped

    # -- runs ----------------------------------------------------------------------------

    @rule()
    def sync(self) -> None:
        TOTALS.steps += 1
        self._sync()

    @rule(minutes=st.integers(1, 600))
    def later_sync(self, minutes: int) -> None:
        TOTALS.steps += 1
        self.world.clock.advance(60 * minutes)
        self._sync()

    @rule(platform=platforms, email=people, field=fields, n=st.integers(1, 9), how=typings)
    def sync_with_an_edit_during_its_read(
        self, platform: str, email: str, field: str, n: int, how: str
    ) -> None:
        TOTALS.steps += 1
        if self._free(platform):
            self.world.edit_during_read(platform, email, field, typed(field, email, n, how))
        self._sync()

    @rule(platform=platforms, writes=st.integers(0, 3))
    def sync_with_a_platform_going_down(self, platform: str, writes: int) -> None:
        TOTALS.steps += 1
        self.world.arm_death(platform, writes)
        self._sync()

    # -- users editing, deleting, re-importing --------------------------------------------

    @rule(platform=platforms, email=people, field=fields, n=st.integers(1, 9), how=typings)
    def user_edits(self, platform: str, email: str, field: str, n: int, how: str) -> None:
        self._act()
        if self._free(platform):
            self.world.edit(platform, email, field, typed(field, email, n, how))

    @rule(platform=platforms, email=people)
    def user_deletes(self, platform: str, email: str) -> None:
        self._act()
        self.world.delete(platform, email)

    @rule(platform=platforms, email=people, case=st.booleans())
    def user_reimports(self, platform: str, email: str, case: bool) -> None:
        self._act()
        self.world.reimport(platform, email, case=case)

    @rule(email=people, tag=st.sampled_from((*NEW_TAGS, *MC_TAGS)))
    def user_tags_on_mailchimp(self, email: str, tag: str) -> None:
        self._act()
        member = self.world.mc.get_member(email)
        if member is None or member.status == "archived" or not self._free("mailchimp"):
            return
        lst = self.world.mc.lists[self.world.mc.default_list_id]
        self.world.mc._set_tags(lst, member, [tag], replace=False)  # hook: tag_member
        self.world.mc_tagged_at = self.world.clock.monotonic()

    # -- users' objects under segsync's names --------------------------------------------

    @rule(data=st.data(), email=people, in_segsync_folder=st.booleans())
    def user_makes_an_object_named_like_segsyncs(
        self, data: st.DataObject, email: str, in_segsync_folder: bool
    ) -> None:
        self._act()
        platform = data.draw(platforms)
        name = data.draw(st.sampled_from(NAMED_LIKE_SEGSYNC[platform]))
        self.world.make_named_object(platform, name, email, in_segsync_folder)

    @rule()
    def configuration_gains_a_segment(self) -> None:
        self._act()
        self.world.add_segment_later()

    # -- accounts ------------------------------------------------------------------------

    @rule(platform=st.sampled_from(("hubspot", "brevo")))
    def config_points_at_another_account(self, platform: str) -> None:
        self._act()
        self.world.swap_account(platform)

    @rule(platform=st.sampled_from(("hubspot", "brevo")))
    def config_points_back(self, platform: str) -> None:
        self._act()
        self.world.swap_back(platform)

    @rule()
    def rebind_hubspot(self) -> None:
        self._act()
        self.world.rebind_sandbox()

    # -- people's consent (on platforms segsync reaches) ----------------------------------

    @rule(email=people, name=st.sampled_from(USER_LISTS))
    def brevo_add_to_own_list(self, email: str, name: str) -> None:
        self._act()
        if self._free("brevo"):
            self.world.brevo_add_to_list(email, name)

    @rule(email=people, name=st.sampled_from(USER_LISTS))
    def brevo_unsubscribe_from_list(self, email: str, name: str) -> None:
        self._act()
        if self._free("brevo"):
            self.world.brevo_unsubscribe_from_list(email, name)

    @rule(email=people)
    def brevo_blocklist(self, email: str) -> None:
        self._act()
        if self._free("brevo"):
            self.world.brevo_blocklist(email)

    @rule(email=people, cleaned=st.booleans())
    def mailchimp_opt_out(self, email: str, cleaned: bool) -> None:
        self._act()
        if cleaned:
            self.world.mailchimp_clean(email)
        else:
            self.world.mailchimp_unsubscribe(email)

    @rule(email=people)
    def mailchimp_sign_up(self, email: str) -> None:
        self._act()
        self.world.mailchimp_sign_up(email)

    @rule(email=people)
    def mailchimp_confirm_double_opt_in(self, email: str) -> None:
        self._act()
        self.world.mailchimp_confirm_double_opt_in(email)

    @rule(email=people, everything=st.booleans())
    def hubspot_opt_out(self, email: str, everything: bool) -> None:
        self._act()
        if self._free("hubspot"):
            self.world.hubspot_unsubscribe(email, everything)

    @rule(email=people)
    def hubspot_subscribe(self, email: str) -> None:
        self._act()
        if self._free("hubspot"):
            self.world.hubspot_subscribe(email)


_ = precondition


@pytest.mark.timeout(3600 if LONG else 300)
@pytest.mark.slow
def test_real_accounts_with_users_acting() -> None:
    """Users and people acting in lived-in accounts while segsync runs break no invariant."""
    RealAccounts.TestCase.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        derandomize=not LONG,
        phases=tuple(Phase) if SHRINK else (Phase.explicit, Phase.reuse, Phase.generate),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    started = time.monotonic()
    before = (TOTALS.steps, TOTALS.syncs, TOTALS.checks, TOTALS.violations)
    try:
        RealAccounts.TestCase().runTest()
    finally:
        steps, syncs, checks, violations = (a - b for a, b in zip(
            (TOTALS.steps, TOTALS.syncs, TOTALS.checks, TOTALS.violations), before,
            strict=True))
        print(f"real accounts: {steps} steps, {syncs} runs, {checks} invariant checks, "
              f"{violations} violations, {time.monotonic() - started:.1f}s")
    assert steps >= min(300, EXAMPLES * STEPS // 2), steps
