"""`segsync erase` and the account bindings: a platform whose configuration reaches another
account than its state is bound to is refused (nothing deleted there), as a sync refuses it;
a stored platform id is used only on a verified account."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accounts_world import ALICE, BOB, STRANGER, World, other_brevo
from segsync_brevo import BrevoConnector

from segsync.connector import AccountIdentity
from segsync.erasure import ErasureReport, erase_people
from segsync.state.base import erasure_hash
from segsync.testing.data import DEFAULT_SCHEMA


class BlindBrevo(BrevoConnector):
    """A Brevo connector that cannot tell which account it reaches."""

    async def account_identity(self) -> AccountIdentity | None:
        return None


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def erase(world: World, *emails: str) -> ErasureReport:
    world.clock.advance(60)
    state = world.engine().state
    return world.loop.run_until_complete(
        erase_people(list(emails), world.connectors, state, clock=world.clock)
    )


def writes(log: object) -> list[tuple[str, str]]:
    """The requests of an emulator's log that are not reads."""
    entries = log.entries  # type: ignore[attr-defined]
    return [(e.method, e.path) for e in entries if e.method != "GET"]


def deletions(log: object) -> list[str]:
    return [path for method, path in writes(log) if method == "DELETE"]


def test_a_platform_reaching_another_account_is_refused_and_the_others_are_erased(
    world: World,
) -> None:
    assert world.sync().status == "ok"
    other = other_brevo(world.clock)
    # the stranger holds, in the other account, the very id ALICE has in the customer's
    assert other.contact(STRANGER).id == world.bv.contact(ALICE).id
    world.replace("brevo", world.brevo(other))

    report = erase(world, ALICE)

    assert set(report.account_mismatch) == {"brevo"}
    message = report.account_mismatch["brevo"]
    assert "org:org-customer-0001" in message
    assert "org:org-other-0002" in message
    assert "segsync rebind brevo" in message
    brevo = report.people[0].platforms["brevo"]
    assert not brevo.confirmed
    assert brevo.error is not None
    assert "nothing was deleted" in brevo.error
    assert report.unconfirmed_platforms() == ["brevo"]
    # nothing was asked of the other account but its identity; the stranger is there
    assert writes(other.log) == []
    assert other.contact(STRANGER) is not None
    assert other.contact(BOB) is not None
    # the customer's other platforms are erased, and the tombstone is kept
    assert world.mc.get_member(ALICE) is None
    assert world.hs.contact_by_email(ALICE) is None
    digest = erasure_hash(world.store.erasure_key(), ALICE)
    assert [h for h, _ in world.engine().state.tombstones()] == [digest]
    # the customer's Brevo still holds ALICE: pointed back, the same erase completes
    assert world.bv.contact(ALICE) is not None
    world.replace("brevo", world.brevo(world.bv))

    again = erase(world, ALICE)

    assert again.confirmed, again.render()
    assert again.account_mismatch == {}
    assert world.bv.contact(ALICE) is None
    assert world.bv.contact(BOB) is not None


def test_an_identity_that_cannot_be_read_is_not_asked_to_delete(world: World) -> None:
    world.sync()
    revoked = BrevoConnector(
        {"api_key": "xkeysib-" + "9" * 64 + "-revoked000001"},
        transport=world.bv.transport(), schema=DEFAULT_SCHEMA, clock=world.clock,
    )
    world.replace("brevo", revoked)

    report = erase(world, ALICE)

    brevo = report.people[0].platforms["brevo"]
    assert not brevo.confirmed
    assert brevo.error is not None
    assert "identity" in brevo.error
    assert "9" * 64 not in brevo.error
    assert report.account_mismatch == {}
    assert deletions(world.bv.log) == []
    assert world.bv.contact(ALICE) is not None
    assert world.hs.contact_by_email(ALICE) is None


def test_an_account_that_cannot_tell_itself_is_erased_by_email_never_by_stored_id(
    world: World,
) -> None:
    world.sync()
    other = other_brevo(world.clock)
    world.replace("brevo", BlindBrevo(
        {"api_key": other.api_key}, transport=other.transport(), schema=DEFAULT_SCHEMA,
        clock=world.clock,
    ))

    report = erase(world, ALICE)

    assert report.people[0].platforms["brevo"].confirmed  # ALICE is not in that account
    deletes = writes(other.log)
    assert deletes, "the address is deleted by email"
    assert all(path.startswith("/v3/contacts/alice") for _, path in deletes), deletes
    assert other.contact(STRANGER) is not None


def test_an_unbound_platform_is_erased_by_email_never_by_stored_id(world: World) -> None:
    """A state whose platform is not bound (made before bindings, say) but holds its ids."""
    world.sync()
    with world.store._tx() as tx:  # type: ignore[attr-defined]
        tx.execute("DELETE FROM bindings WHERE platform = ?", ("brevo",))
    assert world.engine().state.binding("brevo") is None
    assert world.engine().state.erasure_targets(ALICE).get("brevo")
    other = other_brevo(world.clock)
    world.replace("brevo", world.brevo(other))

    report = erase(world, ALICE)

    assert report.account_mismatch == {}
    deletes = writes(other.log)
    assert deletes
    assert all(path.startswith("/v3/contacts/alice") for _, path in deletes), deletes
    assert other.contact(STRANGER) is not None
    assert world.engine().state.binding("brevo") is None  # erase binds nothing
