"""The Mailchimp emulator behaves as the fact sheet says the platform does."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from segsync_mailchimp import MailchimpEmulator, subscriber_hash

from segsync.clock import VirtualClock

KEY = MailchimpEmulator.default_api_key
LIST = MailchimpEmulator.default_list_id
BASE = "https://us21.api.mailchimp.com/3.0"


def run(
    body: Callable[[httpx.AsyncClient, MailchimpEmulator], Awaitable[None]], **kwargs: Any
) -> MailchimpEmulator:
    """Run `body` with a client reaching a fresh emulator in-process."""
    emulator = MailchimpEmulator(clock=VirtualClock(), **kwargs)

    async def main() -> None:
        async with httpx.AsyncClient(
            base_url=BASE, transport=emulator.transport(), auth=("anystring", KEY)
        ) as client:
            await body(client, emulator)

    asyncio.run(main())
    return emulator


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) >= {"type", "title", "status", "detail", "instance"}
    assert body["status"] == response.status_code
    return body  # type: ignore[no-any-return]


def test_subscriber_hash_is_md5_of_lowercased_email() -> None:
    """The member id is the MD5 of the lowercased address (the fact sheet's example)."""
    expected = hashlib.md5(b"urist.mcvankab@freddiesjokes.com").hexdigest()

    assert subscriber_hash("Urist.McVankab@freddiesjokes.com") == expected


def test_ping_and_auth() -> None:
    """Ping answers with a key; a wrong key is 401, a wrong datacenter 403, no key 401."""

    async def body(client: httpx.AsyncClient, emu: MailchimpEmulator) -> None:
        ok = await client.get("/ping")
        bad = await client.get("/ping", auth=("x", "0" * 32 + "-us21"))
        bearer = await client.get("/ping", auth=None, headers={"Authorization": f"Bearer {KEY}"})
        missing = await client.get("/ping", auth=None)
        wrong_dc = await client.get("https://us5.api.mailchimp.com/3.0/ping")

        assert ok.json() == {"health_status": "Everything's Chimpy!"}
        assert problem(bad)["title"] == "API Key Invalid"
        assert bearer.status_code == 200
        assert problem(missing)["title"] == "API Key Missing"
        assert (wrong_dc.status_code, problem(wrong_dc)["title"]) == (403, "Wrong Datacenter")

    run(body)


def test_member_lifecycle_post_put_patch_archive_delete() -> None:
    """POST creates or says Member Exists; PUT upserts; DELETE archives; a second DELETE is 405."""

    async def body(client: httpx.AsyncClient, emu: MailchimpEmulator) -> None:
        h = subscriber_hash("ann@segsync.dev")
        first = await client.post(
            f"/lists/{LIST}/members",
            json={"email_address": "ann@segsync.dev", "status": "subscribed", "tags": ["vip"]},
        )
        again = await client.post(
            f"/lists/{LIST}/members", json={"email_address": "ann@segsync.dev", "status": "pending"}
        )
        put = await client.put(
            f"/lists/{LIST}/members/{h}",
            json={
                "email_address": "ann@segsync.dev",
                "status_if_new": "subscribed",
                "merge_fields": {"FNAME": "Ann", "UNKNOWN": "dropped"},
                "tags": ["ignored"],
            },
        )
        patch_missing = await client.patch(f"/lists/{LIST}/members/{'0' * 32}", json={})
        by_email = await client.get(f"/lists/{LIST}/members/ANN@segsync.dev")
        archived = await client.delete(f"/lists/{LIST}/members/{h}")
        twice = await client.delete(f"/lists/{LIST}/members/{h}")

        assert first.json()["id"] == h
        assert [t["name"] for t in first.json()["tags"]] == ["vip"]
        assert problem(again)["title"] == "Member Exists"
        assert put.json()["merge_fields"]["FNAME"] == "Ann"
        assert "UNKNOWN" not in put.json()["merge_fields"]
        assert [t["name"] for t in put.json()["tags"]] == ["vip"], "PUT ignores tags"
        assert problem(patch_missing)["title"] == "Resource Not Found"
        assert by_email.json()["id"] == h
        assert archived.status_code == 204
        assert emu.get_member("ann@segsync.dev").status == "archived"  # type: ignore[union-attr]
        assert (twice.status_code, twice.headers["allow"]) == (405, "GET, PUT")

    run(body)


def test_compliance_state_and_forgotten_email() -> None:
    """Unsubscribed/cleaned cannot become subscribed (pending can); erased emails stay out."""

    async def body(client: httpx.AsyncClient, emu: MailchimpEmulator) -> None:
        emu.seed_member("out@segsync.dev", "unsubscribed")
        emu.seed_member("gone@segsync.dev", "subscribed")
        h = subscriber_hash("out@segsync.dev")
        refused = await client.patch(f"/lists/{LIST}/members/{h}", json={"status": "subscribed"})
        fields_ok = await client.patch(
            f"/lists/{LIST}/members/{h}", json={"merge_fields": {"FNAME": "Still"}}
        )
        pending = await client.patch(f"/lists/{LIST}/members/{h}", json={"status": "pending"})
        gone = subscriber_hash("gone@segsync.dev")
        erased = await client.post(f"/lists/{LIST}/members/{gone}/actions/delete-permanent")
        lookup = await client.get(f"/lists/{LIST}/members/{gone}")
        readd = await client.put(
            f"/lists/{LIST}/members/{gone}",
            json={"email_address": "gone@segsync.dev", "status_if_new": "subscribed"},
        )

        body_ = problem(refused)
        assert (refused.status_code, body_["title"]) == (400, "Member In Compliance State")
        assert body_["detail"] == (
            "out@segsync.dev is in a compliance state due to unsubscribe, bounce, or compliance "
            "review and cannot be subscribed."
        )
        assert fields_ok.status_code == 200
        assert pending.json()["status"] == "pending"
        assert erased.status_code == 204
        assert lookup.status_code == 404
        assert problem(readd)["title"] == "Forgotten Email Not Subscribed"

    run(body)


def test_list_members_paging_filters_and_fields() -> None:
    """count is capped at 1000, offset pages, since_last_changed filters, fields trims."""

    async def body(client: httpx.AsyncClient, emu: MailchimpEmulator) -> None:
        clock = emu.clock
        assert isinstance(clock, VirtualClock)
        for i in range(1005):
            emu.seed_member(f"m{i:04d}@segsync.dev", "subscribed")
        clock.advance(3600)
        later = clock.now()
        emu.seed_member("late@segsync.dev", "pending")
        first = await client.get(f"/lists/{LIST}/members", params={"count": 5000})
        second = await client.get(f"/lists/{LIST}/members", params={"count": 1000, "offset": 1000})
        since = await client.get(
            f"/lists/{LIST}/members",
            params={"since_last_changed": later.isoformat(), "fields": "members.email_address"},
        )
        pending = await client.get(f"/lists/{LIST}/members", params={"status": "pending"})

        assert len(first.json()["members"]) == 1000
        assert first.json()["total_items"] == 1006
        assert len(second.json()["members"]) == 6
        assert since.json() == {"members": [{"email_address": "late@segsync.dev"}]}
        assert [m["email_address"] for m in pending.json()["members"]] == ["late@segsync.dev"]

    run(body)


def test_merge_field_validation() -> None:
    """Typed merge fields refuse bad values with Mailchimp's message and field errors."""

    async def body(client: httpx.AsyncClient, emu: MailchimpEmulator) -> None:
        created = await client.post(
            f"/lists/{LIST}/merge-fields", json={"name": "Score", "type": "number", "tag": "SCORE"}
        )
        dup = await client.post(
            f"/lists/{LIST}/merge-fields", json={"name": "Score", "type": "number", "tag": "SCORE"}
        )
        bad = await client.post(
            f"/lists/{LIST}/members",
            json={
                "email_address": "n@segsync.dev",
                "status": "subscribed",
                "merge_fields": {"SCORE": "lots", "ADDRESS": {"addr1": "1 rue"}},
            },
        )

        assert created.json()["tag"] == "SCORE"
        assert dup.status_code == 400
        body_ = problem(bad)
        assert body_["detail"] == "Your merge fields were invalid."
        assert {e["field"]: e["message"] for e in body_["errors"]} == {
            "SCORE": "Please enter a number",
            "ADDRESS": "Please enter a complete address",
        }

    run(body)


@pytest.mark.parametrize("need_status", [True, False], ids=["strict", "lenient"])
def test_batch_subscribe_limits_and_per_record_errors(need_status: bool) -> None:
    """Batch subscribe takes 500 members, reports each refusal with its error_code and the
    documented texts; an item without `status` is refused unless the lenient reading is on."""

    async def body(client: httpx.AsyncClient, emu: MailchimpEmulator) -> None:
        emu.seed_member("old@segsync.dev", "subscribed")
        emu.seed_member("cleaned@segsync.dev", "cleaned")
        too_many = await client.post(
            f"/lists/{LIST}",
            json={
                "members": [
                    {"email_address": f"x{i}@segsync.dev", "status": "subscribed"}
                    for i in range(501)
                ]
            },
        )
        response = await client.post(
            f"/lists/{LIST}",
            json={
                "members": [
                    {"email_address": "new@segsync.dev", "status": "transactional"},
                    {"email_address": "old@segsync.dev", "status": "subscribed"},
                    {"email_address": "fake@example.com", "status": "subscribed"},
                ]
            },
        )
        update = await client.post(
            f"/lists/{LIST}",
            json={
                "update_existing": True,
                "members": [
                    {"email_address": "cleaned@segsync.dev", "status": "subscribed"},
                    {"email_address": "old@segsync.dev", "merge_fields": {"FNAME": "Old"}},
                ],
            },
        )

        assert too_many.status_code == 400
        data = response.json()
        assert [m["email_address"] for m in data["new_members"]] == ["new@segsync.dev"]
        codes = {e["email_address"]: e["error_code"] for e in data["errors"]}
        assert codes == {
            "old@segsync.dev": "ERROR_CONTACT_EXISTS",
            "fake@example.com": "ERROR_GENERIC",
        }
        assert (data["total_created"], data["error_count"]) == (1, 2)
        errors = {e["email_address"]: e for e in data["errors"]}
        assert errors["old@segsync.dev"]["error"] == (
            "old@segsync.dev is already a list member. Use PUT to insert or update list members."
        )
        assert errors["fake@example.com"]["error"] == (
            "fake@example.com looks fake or invalid, please enter a real email address."
        )
        updated = update.json()
        errors = {e["email_address"]: e for e in updated["errors"]}
        assert "compliance state" in errors["cleaned@segsync.dev"]["error"]
        old = emu.get_member("old@segsync.dev")
        assert old is not None
        if need_status:
            assert set(errors) == {"cleaned@segsync.dev", "old@segsync.dev"}
            assert errors["old@segsync.dev"]["error_code"] == "ERROR_GENERIC"
            assert "not provided: status" in errors["old@segsync.dev"]["field_message"]
            assert updated["updated_members"] == []
            assert old.merge_fields["FNAME"] == "", "a refused item changes nothing"
        else:
            assert set(errors) == {"cleaned@segsync.dev"}
            assert updated["updated_members"][0]["status"] == "subscribed", "status kept"
            assert updated["updated_members"][0]["merge_fields"]["FNAME"] == "Old"

    run(body, batch_items_need_status=need_status)


def test_tags_and_static_segment_bulk() -> None:
    """Member tags endpoint answers 204; bulk membership takes 500 + 500; names are unique."""

    async def body(client: httpx.AsyncClient, emu: MailchimpEmulator) -> None:
        emu.seed_member("a@segsync.dev")
        h = subscriber_hash("a@segsync.dev")
        tagged = await client.post(
            f"/lists/{LIST}/members/{h}/tags",
            json={
                "tags": [
                    {"name": "Influencer", "status": "active"},
                    {"name": "absent", "status": "inactive"},
                ]
            },
        )
        search = await client.get(f"/lists/{LIST}/tag-search", params={"name": "inf"})
        sid = search.json()["tags"][0]["id"]
        dup = await client.post(
            f"/lists/{LIST}/segments", json={"name": "INFLUENCER", "static_segment": []}
        )
        too_many = await client.post(
            f"/lists/{LIST}/segments/{sid}",
            json={"members_to_add": [f"x{i}@segsync.dev" for i in range(501)]},
        )
        bulk = await client.post(
            f"/lists/{LIST}/segments/{sid}",
            json={"members_to_remove": ["a@segsync.dev"], "members_to_add": ["nobody@segsync.dev"]},
        )
        neither = await client.post(f"/lists/{LIST}/segments", json={"name": "x"})

        assert tagged.status_code == 204
        assert search.json()["total_items"] == 1
        assert dup.status_code == 400
        assert problem(too_many)["detail"].startswith("Maximum allowed member items exceeded")
        assert (bulk.json()["total_removed"], bulk.json()["error_count"]) == (1, 1)
        assert problem(neither)["detail"] == (
            'Must provide either an "options" field or a "static_segment" field'
        )

    run(body)


def test_saved_segment_evaluation() -> None:
    """Saved segments are evaluated on read; member_count counts subscribed members only."""

    async def body(client: httpx.AsyncClient, emu: MailchimpEmulator) -> None:
        emu.seed_member("ann@segsync.dev", merge_fields={"FNAME": "Ann"}, tags=["vip"])
        emu.seed_member(
            "bob@segsync.dev", "unsubscribed", merge_fields={"FNAME": "Bob"}, tags=["vip"]
        )
        emu.seed_member("cid@segsync.dev", merge_fields={"FNAME": ""})
        vip = emu.lists[LIST].segments
        vip_id = next(iter(vip))
        created = await client.post(
            f"/lists/{LIST}/segments",
            json={
                "name": "vips",
                "options": {
                    "match": "all",
                    "conditions": [
                        {
                            "condition_type": "StaticSegment",
                            "field": "static_segment",
                            "op": "static_is",
                            "value": vip_id,
                        },
                        {"condition_type": "TextMerge", "field": "FNAME", "op": "blank_not"},
                    ],
                },
            },
        )
        sid = created.json()["id"]
        default = await client.get(f"/lists/{LIST}/segments/{sid}/members")
        everyone = await client.get(
            f"/lists/{LIST}/segments/{sid}/members", params={"include_unsubscribed": "true"}
        )
        too_many = await client.post(
            f"/lists/{LIST}/segments",
            json={
                "name": "big",
                "options": {
                    "match": "any",
                    "conditions": [
                        {
                            "condition_type": "TextMerge",
                            "field": "FNAME",
                            "op": "is",
                            "value": str(i),
                        }
                        for i in range(6)
                    ],
                },
            },
        )
        unknown = await client.post(
            f"/lists/{LIST}/segments",
            json={
                "name": "bad",
                "options": {
                    "match": "any",
                    "conditions": [
                        {"condition_type": "Nope", "field": "x", "op": "is", "value": "y"}
                    ],
                },
            },
        )

        assert created.json()["member_count"] == 1
        assert [m["email_address"] for m in default.json()["members"]] == ["ann@segsync.dev"]
        assert {m["email_address"] for m in everyone.json()["members"]} == {
            "ann@segsync.dev",
            "bob@segsync.dev",
        }
        assert too_many.status_code == 400
        assert problem(unknown)["title"] == "Invalid Resource"

    run(body)


def test_eleventh_concurrent_connection_gets_429() -> None:
    """Beyond 10 simultaneous connections Mailchimp answers 429 without rate headers."""

    async def body(client: httpx.AsyncClient, emu: MailchimpEmulator) -> None:
        responses = await asyncio.gather(*(client.get("/ping") for _ in range(11)))
        statuses = sorted(r.status_code for r in responses)
        limited = next(r for r in responses if r.status_code == 429)

        assert statuses == [200] * 10 + [429]
        assert problem(limited)["title"] == "Too Many Requests"
        assert "retry-after" not in limited.headers

    run(body, latency_ms=10)


def test_trigger_error_header_answers_the_named_error() -> None:
    """X-Trigger-Error makes any endpoint answer with that glossary error."""

    async def body(client: httpx.AsyncClient, emu: MailchimpEmulator) -> None:
        busy = await client.get("/ping", headers={"X-Trigger-Error": "InternalServerError"})
        wrong = await client.get("/ping", headers={"X-Trigger-Error": "WrongDatacenter"})

        assert (busy.status_code, problem(busy)["title"]) == (500, "Internal Server Error")
        assert (wrong.status_code, problem(wrong)["title"]) == (403, "Wrong Datacenter")

    run(body)
