"""The state is bound to each platform's account: a config pointed at another account is
refused for that platform (both accounts named, nobody cross-linked), the others sync, and
`rebind` adopts the new account explicitly (the next run links people by email)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accounts_world import ALICE, BOB, CAROL, STRANGER, World, other_brevo

from segsync.cli.rebind import rebind
from segsync.state import Binding
from segsync.state.base import LedgerEntry
from segsync.sync.plan import PlanStale, RecordError


def bound(binding: Binding | None) -> Binding:
    assert binding is not None
    return binding


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def _mismatch(errors: Sequence[RecordError], platform: str) -> list[RecordError]:
    return [e for e in errors if e.platform == platform and e.code == "account_mismatch"]


def _alice_is_alice(world: World) -> None:
    """ALICE's records kept her own name and email everywhere."""
    assert world.hs.contact_by_email(ALICE)["firstname"] == "Alice"
    alice = world.mc.get_member(ALICE)
    assert alice is not None
    assert alice.merge_fields["FNAME"] == "Alice"


def _no_cross_link(world: World) -> None:
    """ALICE is herself everywhere and STRANGER reached no platform."""
    _alice_is_alice(world)
    assert world.hs.contact_by_email(STRANGER) is None
    assert world.mc.get_member(STRANGER) is None


def test_a_first_run_binds_every_platform_and_a_second_goes_on(world: World) -> None:
    report = world.sync()

    assert not report.errors, report.errors
    bindings = {p: bound(world.engine().state.binding(p))
                for p in ("mailchimp", "hubspot", "brevo")}
    assert bindings["brevo"].account_id == "org:org-customer-0001"
    assert "Customer Ltd" in (bindings["brevo"].label or "")
    assert bindings["hubspot"].account_id == str(world.hs.portal_id)
    assert str(bindings["mailchimp"].account_id).endswith("/" + world.mc.default_list_id)
    assert not world.sync().errors


def test_another_brevo_account_is_refused_before_any_read_and_nobody_is_cross_linked(
    world: World,
) -> None:
    world.sync()
    other = other_brevo(world.clock)
    # the measured defect: STRANGER holds, in the other account, the id ALICE had
    assert other.contact(STRANGER).id == world.bv.contact(ALICE).id
    world.replace("brevo", world.brevo(other))
    world.hs.modify_contact(world.hs._find_email(BOB).id, {"firstname": "Bobby"})

    plan = world.plan()

    [error] = _mismatch(plan.errors, "brevo")
    assert error.email is None
    assert error.platform_id is None
    assert "Customer Ltd" in error.message
    assert "org:org-customer-0001" in error.message
    assert "Other Agency" in error.message
    assert "org:org-other-0002" in error.message
    assert "segsync rebind brevo" in error.message
    assert "brevo" not in plan.platforms
    rendered = "\n".join(plan.render())
    assert "Stranger" not in rendered
    assert STRANGER not in rendered

    report = world.sync()

    assert _mismatch(report.errors, "brevo")
    _no_cross_link(world)
    # the other platforms carried on: BOB's edit on HubSpot reached Mailchimp
    assert world.mc.get_member(BOB).merge_fields["FNAME"] == "Bobby"
    # nothing but the identity was asked of the other account, once a run
    paths = {entry.path for entry in other.log.entries}
    assert paths <= {"/account", "/v3/account"}, paths
    assert len(other.log.entries) == 2  # one plan, one sync
    assert world.bv.contact(ALICE).attributes["FIRSTNAME"] == "Alice"


def test_another_brevo_account_without_organization_id_is_told_by_its_login(
    world: World,
) -> None:
    world.bv.organization_id = None  # the 2025-02 description: login email and company only
    world.sync()
    other = other_brevo(world.clock, organization=None)
    world.replace("brevo", world.brevo(other))

    [error] = _mismatch(world.plan().errors, "brevo")

    assert "login:ops@customer.test" in error.message
    assert "Customer Ltd" in error.message
    assert "login:boss@other.test" in error.message


def test_rebind_adopts_the_new_account_and_the_next_run_links_by_email(world: World) -> None:
    world.sync()
    state = world.engine().state
    state.add_ledger([LedgerEntry(ALICE, ALICE, "brevo", "2026-01-01T00:00:00+00:00", None,
                                  "subscribed", "brevo")])
    ledger_before = len(state.ledger())
    other = other_brevo(world.clock)
    world.replace("brevo", world.brevo(other))
    assert _mismatch(world.sync().errors, "brevo")

    outcome = world.loop.run_until_complete(
        rebind("brevo", world.connectors["brevo"], state, clock=world.clock)
    )

    assert outcome.done
    assert bound(outcome.previous).account_id == "org:org-customer-0001"
    assert outcome.current is not None
    assert outcome.current.id == "org:org-other-0002"
    assert outcome.forgotten["records"] >= 2
    assert bound(state.binding("brevo")).account_id == "org:org-other-0002"
    assert len(state.ledger()) == ledger_before  # never the consent ledger

    report = world.sync()

    assert not _mismatch(report.errors, "brevo")
    _alice_is_alice(world)
    # STRANGER is a person of their own, linked by nobody's id
    assert world.hs.contact_by_email(STRANGER)["firstname"] == "Stranger"
    # BOB of the other account is linked to BOB by email (one HubSpot record)
    assert sum(
        1 for r in world.hs.contacts.values() if r.properties.get("email") == BOB
    ) == 1
    assert world.hs.contact_by_email(CAROL)["firstname"] == "Carol"
    # ALICE, whom the new account lacked, is written there under her own name
    assert other.contact(ALICE).attributes["FIRSTNAME"] == "Alice"
    assert other.contact(STRANGER).attributes["FIRSTNAME"] == "Stranger"
    assert not world.sync().errors


def test_a_mailchimp_audience_change_is_detected(world: World) -> None:
    world.sync()
    second = world.mc.seed_list("Newsletter (another audience)")
    world.mc.seed_member(STRANGER, "subscribed", list_id=second.id,
                         merge_fields={"FNAME": "Stranger"})
    world.replace("mailchimp", world.mailchimp(second.id))

    plan = world.plan()

    [error] = _mismatch(plan.errors, "mailchimp")
    assert world.mc.default_list_id in error.message
    assert second.id in error.message
    assert "segsync rebind mailchimp" in error.message
    assert set(plan.platforms) == {"hubspot", "brevo"}


def test_a_hubspot_portal_change_is_detected_even_with_the_same_record_ids(
    world: World,
) -> None:
    world.sync()
    # a sandbox copy of the portal: the same records under the same ids, another portal
    world.hs.portal_id = 99887766
    world.hs.modify_contact(world.hs._find_email(ALICE).id, {"firstname": "Sandbox Alice"})

    report = world.sync()

    [error] = _mismatch(report.errors, "hubspot")
    assert "12345678" in error.message
    assert "99887766" in error.message
    assert world.mc.get_member(ALICE).merge_fields["FNAME"] == "Alice"
    assert world.bv.contact(ALICE).attributes["FIRSTNAME"] == "Alice"


def test_rebind_forgets_that_platform_only(world: World) -> None:
    world.sync()
    state = world.engine().state
    state.add_tombstone("ab" * 32, at="2026-01-01T00:00:00+00:00")
    state.add_ledger([LedgerEntry(BOB, BOB, "brevo", "2026-01-01T00:00:00+00:00", None,
                                  "subscribed", "brevo")])
    before = {p: len(list(world.store.base_rows("accounts", p)))
              for p in ("mailchimp", "hubspot", "brevo")}
    owned = {p: len(state.owned(p)) for p in ("mailchimp", "hubspot", "brevo")}
    contacts = state.counts()["contacts"]
    ledger = len(state.ledger())
    cursors = {p: state.cursor(p) for p in ("mailchimp", "hubspot")}

    preview = state.forget_platform("brevo", dry_run=True)
    assert preview["records"] == before["brevo"] > 0
    assert len(list(world.store.base_rows("accounts", "brevo"))) == before["brevo"]

    forgotten = state.forget_platform("brevo")

    assert forgotten == preview
    assert list(world.store.base_rows("accounts", "brevo")) == []
    assert state.owned("brevo") == []
    assert state.cursor("brevo") is None
    assert state.binding("brevo") is None
    for p in ("mailchimp", "hubspot"):
        assert len(list(world.store.base_rows("accounts", p))) == before[p]
        assert len(state.owned(p)) == owned[p]
        assert state.cursor(p) == cursors[p]
        assert state.binding(p) is not None
    assert state.counts()["contacts"] == contacts
    assert len(state.ledger()) == ledger
    assert state.tombstones() == [("ab" * 32, "2026-01-01T00:00:00+00:00")]


def test_a_saved_plan_is_not_applied_to_another_account(world: World) -> None:
    world.sync()
    world.hs.modify_contact(world.hs._find_email(ALICE).id, {"firstname": "Alicia"})
    plan = world.plan()
    assert plan.platforms["brevo"].changes  # ALICE's new name is owed to Brevo
    other = other_brevo(world.clock)
    world.replace("brevo", world.brevo(other))

    with pytest.raises(PlanStale) as refused:
        world.loop.run_until_complete(world.engine().apply(plan))

    assert "org:org-customer-0001" in str(refused.value)
    assert "org:org-other-0002" in str(refused.value)
    assert other.contact(STRANGER).attributes["FIRSTNAME"] == "Stranger"
    assert world.mc.get_member(ALICE).merge_fields["FNAME"] == "Alice"  # nothing applied
