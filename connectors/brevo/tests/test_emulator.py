"""The Brevo emulator behaves as the fact sheet says Brevo does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from segsync_brevo.emulator import BrevoEmulator

from segsync.clock import VirtualClock

Body = Callable[[httpx.AsyncClient, BrevoEmulator, VirtualClock], Awaitable[None]]


def run(body: Body, **kwargs: Any) -> BrevoEmulator:
    """Run `body` with a client on a fresh emulator (virtual clock); return the emulator."""
    clock = VirtualClock()
    emulator = BrevoEmulator(clock=clock, **kwargs)

    async def main() -> None:
        async with httpx.AsyncClient(
            transport=emulator.transport(),
            base_url="https://api.brevo.com/v3",
            headers={"api-key": emulator.api_key},
        ) as client:
            await body(client, emulator, clock)

    asyncio.run(main())
    return emulator


def test_401_without_a_valid_key() -> None:
    """A wrong key is answered 401 with Brevo's body."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        response = await client.get("/contacts", headers={"api-key": "xkeysib-wrong"})

        assert response.status_code == 401
        assert response.json() == {"code": "unauthorized", "message": "Key not found"}

    run(body)


def test_create_update_and_duplicate() -> None:
    """POST /contacts: 201 with id, 204 with updateEnabled, 400 duplicate_parameter otherwise."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        created = await client.post("/contacts", json={"email": "Ada@Example.com"})
        updated = await client.post(
            "/contacts",
            json={
                "email": "ada@example.com",
                "attributes": {"FIRSTNAME": "Ada"},
                "updateEnabled": True,
            },
        )
        duplicate = await client.post("/contacts", json={"email": "ada@example.com"})
        missing = await client.post("/contacts", json={"attributes": {"FIRSTNAME": "X"}})

        assert created.status_code == 201
        assert created.json() == {"id": 1}
        assert updated.status_code == 204
        assert updated.content == b""
        assert duplicate.status_code == 400
        assert duplicate.json()["code"] == "duplicate_parameter"
        assert duplicate.json()["metadata"] == {"duplicate_identifiers": ["email"]}
        assert missing.json()["code"] == "missing_parameter"
        stored = emu.contact("ada@example.com")
        assert stored is not None
        assert stored.email == "ada@example.com"
        assert stored.attributes == {"FIRSTNAME": "Ada"}

    run(body)


def test_identifier_types() -> None:
    """GET/PUT/DELETE resolve the identifier by identifierType, or infer it."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await client.post("/contacts", json={"email": "a@example.com", "ext_id": "crm-7"})
        by_id = await client.get("/contacts/1", params={"identifierType": "contact_id"})
        by_email = await client.get("/contacts/a%40example.com")
        by_ext = await client.get("/contacts/crm-7", params={"identifierType": "ext_id"})
        unknown = await client.get("/contacts/b@example.com")
        put = await client.put(
            "/contacts/a@example.com",
            params={"identifierType": "email_id"},
            json={"attributes": {"LASTNAME": "Lovelace"}},
        )
        deleted = await client.delete("/contacts/1")
        again = await client.delete("/contacts/1")

        assert [by_id.json()["id"], by_email.json()["id"], by_ext.json()["id"]] == [1, 1, 1]
        assert unknown.status_code == 404
        assert unknown.json() == {"code": "document_not_found", "message": "Contact does not exist"}
        assert put.status_code == 204
        assert deleted.status_code == 204
        assert again.status_code == 404

    run(body)


def test_wrong_types_and_unknown_attributes_are_dropped_silently() -> None:
    """Values of the wrong type (or for attributes that do not exist) vanish, as in Brevo."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        for category, name, spec in (
            ("normal", "AGE", {"type": "float"}),
            ("normal", "BIRTHDAY", {"type": "date"}),
            ("normal", "VIP", {"type": "boolean"}),
            ("category", "COUNTRY", {"enumeration": [{"value": 1, "label": "FR"}]}),
            ("normal", "TOPICS", {"type": "multiple-choice", "multiCategoryOptions": ["a", "b"]}),
        ):
            response = await client.post(f"/contacts/attributes/{category}/{name}", json=spec)
            assert response.status_code == 201
        response = await client.post(
            "/contacts",
            json={
                "email": "a@example.com",
                "attributes": {
                    "AGE": "forty",
                    "BIRTHDAY": "31/12/1990",
                    "VIP": "yes",
                    "COUNTRY": "FR",
                    "TOPICS": ["a", "zzz"],
                    "NOPE": 1,
                    "FIRSTNAME": "Ada",
                },
            },
        )

        assert response.status_code == 201
        stored = emu.contact("a@example.com")
        assert stored is not None
        assert stored.attributes == {"FIRSTNAME": "Ada"}
        assert sorted(d[1] for d in emu.dropped_values) == [
            "AGE",
            "BIRTHDAY",
            "COUNTRY",
            "NOPE",
            "TOPICS",
            "VIP",
        ]
        ok = await client.put(
            "/contacts/1",
            json={
                "attributes": {
                    "AGE": 40,
                    "BIRTHDAY": "1990-12-31",
                    "VIP": True,
                    "COUNTRY": 1,
                    "TOPICS": ["b", "a"],
                }
            },
        )
        assert ok.status_code == 204
        assert stored.attributes == {
            "FIRSTNAME": "Ada",
            "AGE": 40,
            "BIRTHDAY": "1990-12-31",
            "VIP": True,
            "COUNTRY": 1,
            "TOPICS": ["a", "b"],
        }

    run(body)


def test_attribute_rules() -> None:
    """Attribute names are unique, types must suit the category; GET lists them."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        first = await client.post("/contacts/attributes/normal/CITY", json={"type": "text"})
        again = await client.post("/contacts/attributes/normal/CITY", json={"type": "text"})
        wrong = await client.post("/contacts/attributes/normal/ID", json={"type": "id"})
        listed = (await client.get("/contacts/attributes")).json()["attributes"]

        assert first.status_code == 201
        assert again.json() == {
            "code": "invalid_parameter",
            "message": "Attribute name must be unique",
        }
        assert wrong.status_code == 400
        assert {"name": "CITY", "category": "normal", "type": "text"} in listed

    run(body)


def test_paging_and_modified_since() -> None:
    """GET /contacts pages with limit (at most 1000) and offset, and filters on modifiedSince."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        for i in range(5):
            await client.post("/contacts", json={"email": f"c{i}@example.com"})
            clock.advance(60)
        since = clock.now().isoformat()
        clock.advance(60)
        await client.put("/contacts/2", json={"attributes": {"FIRSTNAME": "Changed"}})
        clock.advance(1)  # a new second of the rate window
        page = (
            await client.get("/contacts", params={"limit": 2, "offset": 1, "sort": "asc"})
        ).json()
        newest = (await client.get("/contacts", params={"limit": 1})).json()
        changed = (await client.get("/contacts", params={"modifiedSince": since})).json()
        too_many = await client.get("/contacts", params={"limit": 1001})

        assert [c["email"] for c in page["contacts"]] == ["c1@example.com", "c2@example.com"]
        assert page["count"] == 5
        assert newest["contacts"][0]["email"] == "c4@example.com"  # newest first by default
        assert [c["id"] for c in changed["contacts"]] == [2]
        assert changed["contacts"][0]["modifiedAt"].endswith("+01:00")
        assert too_many.status_code == 400
        assert len(emu.spec_violations) == 1 or emu.validator is None  # limit=1001, on purpose
        emu.spec_violations.clear()

    run(body)


def test_import_is_asynchronous() -> None:
    """An import answers 202 with a processId and applies only once its process completes."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await client.post("/contacts/attributes/normal/VIP", json={"type": "boolean"})
        await client.post(
            "/contacts", json={"email": "old@example.com", "attributes": {"FIRSTNAME": "Old"}}
        )
        response = await client.post(
            "/contacts/import",
            json={
                "jsonBody": [
                    {"email": "new@example.com", "attributes": {"FIRSTNAME": "New", "VIP": True}},
                    {"email": "old@example.com", "attributes": {"FIRSTNAME": ""}},
                    {"email": "not-an-email", "attributes": {}},
                ],
                "listIds": [1],
                "updateExistingContacts": True,
                "emptyContactsAttributes": False,
            },
        )
        assert response.status_code == 202
        pid = response.json()["processId"]
        statuses = []
        for _ in range(3):
            statuses.append((await client.get(f"/processes/{pid}")).json()["status"])
            if statuses[-1] == "queued":
                assert emu.contact("new@example.com") is None
            clock.advance(3)
        report = (await client.get(f"/processes/{pid}")).json()

        assert statuses == ["queued", "in_process", "in_process"]
        assert report["status"] == "completed"
        assert report["info"]["import"]["invalid_emails"] == 1
        new, old = emu.contact("new@example.com"), emu.contact("old@example.com")
        assert new is not None
        assert old is not None
        assert new.attributes == {"FIRSTNAME": "New"}  # booleans are not imported
        assert old.attributes == {"FIRSTNAME": "Old"}  # empty value kept without the flag
        assert new.list_ids == old.list_ids == {1}
        missing = await client.get("/processes/9999")
        assert missing.json()["code"] == "document_not_found"

    run(body)


def test_list_membership_limits_and_errors() -> None:
    """Add/remove take 1-150 items; failures listed; 400 when none succeeds; case-sensitive."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await client.post("/contacts", json={"email": "a@example.com"})
        add = await client.post(
            "/contacts/lists/1/contacts/add", json={"emails": ["a@example.com", "b@example.com"]}
        )
        again = await client.post(
            "/contacts/lists/1/contacts/add", json={"emails": ["a@example.com"]}
        )
        upper = await client.post(
            "/contacts/lists/1/contacts/remove", json={"emails": ["A@example.com"]}
        )
        too_many = await client.post(
            "/contacts/lists/1/contacts/add",
            json={"emails": [f"x{i}@example.com" for i in range(151)]},
        )
        removed = await client.post(
            "/contacts/lists/1/contacts/remove", json={"emails": ["a@example.com"]}
        )

        assert add.status_code == 201
        assert add.json() == {
            "contacts": {"success": ["a@example.com"], "failure": ["b@example.com"]}
        }
        assert again.status_code == 400
        assert again.json() == {
            "code": "invalid_parameter",
            "message": "Contact already in list and/or does not exist",
        }
        assert upper.status_code == 400
        assert too_many.status_code == 400
        assert removed.json()["contacts"]["success"] == ["a@example.com"]
        assert len(emu.spec_violations) == 1 or emu.validator is None  # 151 emails, on purpose
        emu.spec_violations.clear()

    run(body)


def test_folders_and_lists() -> None:
    """Folders hold lists; lists need a name and an existing folder; deleting a folder
    deletes its lists."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        folder = (await client.post("/contacts/folders", json={"name": "segsync"})).json()["id"]
        created = await client.post("/contacts/lists", json={"name": "vip", "folderId": folder})
        bad = await client.post("/contacts/lists", json={"name": "x", "folderId": 999})
        in_folder = (await client.get(f"/contacts/folders/{folder}/lists")).json()
        await client.delete(f"/contacts/folders/{folder}")
        gone = await client.get(f"/contacts/lists/{created.json()['id']}")

        assert created.status_code == 201
        assert bad.status_code == 404
        assert [item["name"] for item in in_folder["lists"]] == ["vip"]
        assert gone.status_code == 404

    run(body)


def test_segments_are_read_only() -> None:
    """Segments can be listed and their members read, never written."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await client.post(
            "/contacts", json={"email": "fr@example.com", "attributes": {"FIRSTNAME": "Zoé"}}
        )
        await client.post("/contacts", json={"email": "be@example.com"})
        segment = emu.add_segment("named", lambda c: "FIRSTNAME" in c["attributes"])
        listed = (await client.get("/contacts/segments")).json()
        members = (await client.get("/contacts", params={"segmentId": segment})).json()
        both = await client.get("/contacts", params={"segmentId": segment, "listIds": 1})
        write = await client.post("/contacts/segments", json={"name": "x"})

        assert listed["segments"][0]["segmentName"] == "named"
        assert [c["email"] for c in members["contacts"]] == ["fr@example.com"]
        assert both.status_code == 400
        assert write.status_code == 405
        assert (
            emu.spec_violations
            == ["POST /v3/contacts/segments: method not described for this path"]
            or emu.validator is None
        )
        emu.spec_violations.clear()  # the refused write above was sent on purpose

    run(body)


def test_rate_limits_by_family() -> None:
    """Contacts endpoints allow 10 a second, others 100 an hour; headers say what is left."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        statuses = [(await client.get("/contacts")).status_code for _ in range(11)]
        limited = await client.get("/contacts")
        clock.advance(1.0)
        after = await client.get("/contacts")
        hourly = [(await client.get("/processes")).status_code for _ in range(101)]
        last = await client.get("/processes")

        assert statuses == [200] * 10 + [429]
        assert limited.json() == {
            "code": "too_many_requests",
            "message": "The expected rate limit is exceeded.",
        }
        assert limited.headers.get_list("x-sib-ratelimit-remaining") == ["0"]
        assert int(limited.headers["x-sib-ratelimit-reset"]) >= 1
        assert "retry-after" not in limited.headers
        assert after.status_code == 200
        assert after.headers["x-sib-ratelimit-limit"] == "10"
        assert hourly.count(200) == 100
        assert last.status_code == 429
        assert 3500 <= int(last.headers["x-sib-ratelimit-reset"]) <= 3600

    run(body)


def test_higher_tier_allows_more() -> None:
    """The advanced tier allows 20 contacts requests a second."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        statuses = [(await client.get("/contacts")).status_code for _ in range(21)]

        assert statuses == [200] * 20 + [429]

    run(body, tier="advanced")


def test_blocklist_rules() -> None:
    """Clearing emailBlacklisted is recorded (and refusable); a new email clears it too."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await client.post("/contacts", json={"email": "a@example.com"})
        await client.post("/contacts", json={"email": "b@example.com"})
        emu.blocklist("a@example.com")
        emu.blocklist("b@example.com")
        refused = await client.put("/contacts/1", json={"emailBlacklisted": False})
        renamed = await client.put("/contacts/2", json={"attributes": {"EMAIL": "c@example.com"}})

        assert refused.status_code == 400
        a, c = emu.contact("a@example.com"), emu.contact("c@example.com")
        assert a is not None
        assert c is not None
        assert a.email_blacklisted
        assert renamed.status_code == 204
        assert not c.email_blacklisted
        assert emu.unblocklist_writes == ["a@example.com", "c@example.com"]

    run(body, refuse_unblocklist=True)


def test_double_opt_in() -> None:
    """DOI keeps the contact out of the lists until the person confirms."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        response = await client.post(
            "/contacts/doubleOptinConfirmation",
            json={
                "email": "a@example.com",
                "includeListIds": [1],
                "templateId": 3,
                "redirectionUrl": "https://example.com/thanks",
            },
        )
        before = emu.contact("a@example.com")
        emu.confirm_double_opt_in("a@example.com")
        after = emu.contact("a@example.com")

        assert response.status_code == 201
        assert before is None
        assert after is not None
        assert after.list_ids == {1}
        assert after.attributes["DOUBLE_OPT-IN"] == 1

    run(body)


def test_batch_is_all_or_nothing() -> None:
    """The deprecated /contacts/batch applies nothing when one contact is unknown."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await client.post("/contacts", json={"email": "a@example.com"})
        response = await client.post(
            "/contacts/batch",
            json={
                "contacts": [
                    {"email": "a@example.com", "attributes": {"FIRSTNAME": "A"}},
                    {"email": "ghost@example.com", "attributes": {"FIRSTNAME": "G"}},
                ]
            },
        )

        assert response.status_code == 404
        stored = emu.contact("a@example.com")
        assert stored is not None
        assert stored.attributes == {}

    run(body)


def test_served_at_root_and_under_v3() -> None:
    """The same API answers at `/contacts` and `/v3/contacts`."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        root = await client.get("http://127.0.0.1:8080/contacts")
        prefixed = await client.get("http://127.0.0.1:8080/v3/contacts")

        assert root.status_code == prefixed.status_code == 200

    run(body)


def test_401_without_any_key() -> None:
    """No credential at all has its own 401 message."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        response = await client.get("/contacts", headers={"api-key": ""})
        async with httpx.AsyncClient(
            transport=emu.transport(), base_url="https://api.brevo.com/v3"
        ) as keyless:
            bare = await keyless.get("/contacts")

        assert response.status_code == 401
        assert bare.json() == {
            "code": "unauthorized",
            "message": "authentication not found in headers",
        }

    run(body)


def test_sms_is_unique_per_account() -> None:
    """An SMS number another contact holds is refused, and nothing of the request applies."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await client.post(
            "/contacts", json={"email": "a@example.com", "attributes": {"SMS": "+33612345678"}}
        )
        second = await client.post(
            "/contacts",
            json={
                "email": "b@example.com",
                "attributes": {"SMS": "+33612345678", "FIRSTNAME": "B"},
            },
        )

        assert second.status_code == 400
        assert second.json()["code"] == "duplicate_parameter"
        assert second.json()["metadata"] == {"duplicate_identifiers": ["sms"]}
        assert emu.contact("b@example.com") is None

    run(body)


def test_per_list_unsubscription() -> None:
    """A per-list unsubscribe moves the list from listIds to listUnsubscribed."""

    async def body(client: httpx.AsyncClient, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await client.post("/contacts", json={"email": "a@example.com", "listIds": [1]})
        emu.unsubscribe_from_list("a@example.com", 1)
        data = (await client.get("/contacts/a@example.com")).json()

        assert data["listIds"] == []
        assert data["listUnsubscribed"] == [1]
        assert data["emailBlacklisted"] is False

    run(body)
