"""A create whose answer was lost (the connection dropped after the platform acted) is found
again on the next attempt, never created twice nor failed forever."""

from __future__ import annotations

import asyncio

from fault_world import connector_config, make_emulator

from segsync.clock import VirtualClock
from segsync.connector import ContactChange, registry
from segsync.http import TransientError
from segsync.testing.data import DEFAULT_SCHEMA


def test_mailchimp_tag_created_by_a_lost_call_is_found_next_time() -> None:
    """The tag's creation answer is lost; the next write finds the tag instead of failing."""
    clock = VirtualClock()
    emulator = make_emulator("mailchimp", clock)
    lost: list[str] = []

    def draw_fault(method: str, path: str) -> str | None:
        if method == "POST" and path.endswith("/segments") and not lost:
            lost.append(path)
            return "drop_after"
        return None

    emulator.draw_fault = draw_fault  # type: ignore[method-assign]
    connector = registry.get("mailchimp")(
        connector_config("mailchimp", emulator, "http://127.0.0.1:8080"),
        schema=DEFAULT_SCHEMA,
        transport=emulator.transport(),
        clock=clock,
    )

    async def main() -> tuple[bool, bool, list[str]]:
        create = ContactChange(email="ada@example.com", create=True)
        created = await connector.write([create])
        tag = ContactChange(
            email="ada@example.com", platform_id=created[0].platform_id, tags_add=frozenset({"vip"})
        )
        try:  # the tag's creation answer is lost: a failed result, or the call's error
            first_ok = (await connector.write([tag]))[0].ok
        except TransientError:
            first_ok = False
        second = await connector.write([tag])
        members = [c async for page in connector.read(None) for c in page.contacts]
        await connector.aclose()
        return first_ok, second[0].ok, sorted(members[0].tags)

    first_ok, second_ok, tags = asyncio.run(main())
    lists = emulator.lists.values()  # type: ignore[attr-defined]
    vip = [s for lst in lists for s in lst.segments.values() if s.name == "vip"]

    assert lost, "the fault was not injected"
    assert not first_ok
    assert second_ok
    assert tags == ["vip"]
    assert len(vip) == 1
