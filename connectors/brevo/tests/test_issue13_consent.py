"""Brevo consent findings of issue #13 on the connector: segsync's own lists.

A per-list unsubscribe from a list segsync writes is the person's "no" (Brevo campaigns go to
those lists): segsync never puts them back in it, even where the user allows people without
opt-in in that list; and `check` refuses one of segsync's lists as a declared consent list.
"""

from __future__ import annotations

import pytest
from segsync_brevo.emulator import BrevoEmulator

from segsync.clock import VirtualClock
from segsync.connector import ContactChange
from segsync.http import ApiError
from segsync.model import ConsentStatus

from .test_connector import SCHEMA, TAGS, BrevoConnector, read_all, run

ALLOWED = {"consent": {"allow_unconsented_in_lists": ["segment: vips", "tag: alpha"]}}


def test_a_person_is_never_put_back_in_a_list_they_unsubscribed_from() -> None:
    """Two segsync lists the user lets anyone into; the person unsubscribes from both (their
    unsubscribe links). Adding her again (segment membership, a tag added again) leaves her
    out: reported, not an error; the rest of the account is untouched."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        emu.seed_list("Customers", emu.seed_folder("Marketing"))  # the user's own
        await connector.prepare(SCHEMA.fields, TAGS)
        email = "left@example.com"
        [made] = await connector.write(
            [ContactChange(email=email, create=True, tags_add=frozenset({"alpha"}))]
        )
        vips = int(await connector.ensure_static("vips", None))
        await connector.change_static_members(str(vips), [email, "stays@example.com"], [])
        alpha = next(i for i, d in emu.lists.items() if d["name"] == "tag: alpha")
        contact = emu.contact(email)
        assert made.ok
        assert contact is not None
        assert {alpha, vips} <= contact.list_ids
        emu.unsubscribe_from_list(email, alpha)
        emu.unsubscribe_from_list(email, vips)
        clock.advance(60)
        [back] = [c for c in await read_all(connector) if c.email == email]

        again = await connector.change_static_members(str(vips), [email], [])
        [tagged] = await connector.write(
            [ContactChange(email=email, platform_id=back.platform_id,
                           tags_add=frozenset({"alpha"}), fields={"first_name": "Lea"})]
        )

        assert back.consent.status is ConsentStatus.UNSUBSCRIBED
        assert [(r.ok, r.code) for r in again] == [(True, "list_unsubscribed")]
        assert tagged.ok
        assert vips not in contact.list_ids
        assert alpha not in contact.list_ids
        assert "alpha" in (contact.attributes.get("SEGSYNC_TAGS") or [])  # the tag is kept

    run(body, ALLOWED)


@pytest.mark.parametrize("name", ["segment: subs", "tag: vip", "segsync contacts"])
def test_check_refuses_one_of_segsyncs_lists_as_a_consent_list(name: str) -> None:
    """`brevo.consent.lists` naming a list segsync writes would make segsync's own writes
    evidence: `check` refuses it, naming the list and the fix. The user's list of the same
    name outside segsync's folder is accepted."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        with pytest.raises(ApiError) as info:
            await connector.check()

        message = info.value.message
        assert message.startswith(f"brevo.consent.lists: list {own} ({name!r}")
        assert "fix: declare the list people sign up to" in message

    emu = BrevoEmulator(clock=VirtualClock())
    own = emu.seed_list(name, emu.seed_folder("segsync"))
    theirs = emu.seed_list(name, emu.seed_folder("Marketing"))
    _check_on(emu, [own], body)
    _check_on(emu, [theirs], None)


def _check_on(emu: BrevoEmulator, lists: list[int], body: object) -> None:
    import asyncio

    async def main() -> None:
        connector = BrevoConnector(
            {"api_key": emu.api_key, "consent": {"lists": lists}},
            schema=SCHEMA, transport=emu.transport(), clock=emu.clock,
        )
        async with connector:
            if body is None:
                await connector.check()
            else:
                await body(connector, emu, emu.clock)  # type: ignore[operator]

    asyncio.run(main())
