"""Ownership on a lived-in audience: a static segment never takes over a person's tag.

Mailchimp tags are case-insensitive, so a person's `Webinar` tag is the tag a segment
`webinar` would be called. segsync holds the segment in `segsync:webinar`, and `find_owned`
(after a run killed while creating it) finds only that tag, never the person's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from segsync_mailchimp import MailchimpConnector, MailchimpEmulator, subscriber_hash
from segsync_mailchimp.segments import static_tag

from segsync.clock import VirtualClock


def connector(emulator: MailchimpEmulator, clock: VirtualClock) -> MailchimpConnector:
    return MailchimpConnector(
        {"api_key": emulator.default_api_key, "list_id": emulator.default_list_id,
         "base_url": "http://127.0.0.1:9" + emulator.base_path},
        transport=emulator.transport(), clock=clock,
    )


def test_static_segment_never_adopts_a_person_tag_named_like_it() -> None:
    clock = VirtualClock()
    emulator = MailchimpEmulator(clock=clock, reject_fake_emails=False)
    emulator.seed_member("ada@tags.dev", "subscribed", tags=["Webinar"])
    emulator.seed_member("bob@tags.dev", "subscribed")
    audience = emulator.lists[emulator.default_list_id]
    user_tag = emulator._tag_segment(audience, "Webinar", create=False)  # hook: the person's tag
    assert user_tag is not None

    async def main() -> dict[str, Any]:
        mc = connector(emulator, clock)
        out: dict[str, Any] = {"before": await mc.find_owned("static", "webinar")}
        ref = await mc.ensure_static("webinar", None)
        out["ref"] = ref
        out["again"] = await connector(emulator, clock).find_owned("static", "webinar")
        out["results"] = await mc.change_static_members(ref, ["bob@tags.dev"], ["ada@tags.dev"])
        out["members"] = [e async for e in mc.segment_members(ref)]
        await mc.aclose()
        return out

    out = asyncio.run(main())

    assert out["before"] is None  # a killed run's intent never adopts the person's tag
    assert out["ref"] != str(user_tag.id)
    assert out["again"] == out["ref"]  # but finds segsync's own after a kill
    assert emulator._tag_segment(audience, static_tag("webinar"), create=False) is not None
    assert all(r.ok for r in out["results"])
    assert out["members"] == ["bob@tags.dev"]
    assert set(user_tag.members) == {subscriber_hash("ada@tags.dev")}  # untouched


def test_static_tag_names() -> None:
    assert static_tag("webinar") == "segsync:webinar"
    assert static_tag("segsync:split:0a1b2c") == "segsync:split:0a1b2c"  # a residual tag
