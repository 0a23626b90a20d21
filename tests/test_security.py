"""Security (issue 14, item 11): names and emails never change a request's target, a
`base_url` away from the vendor needs `allow_custom_host`, the state store is private."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from segsync_brevo import BrevoConnector
from segsync_brevo.config import BrevoConfig
from segsync_brevo.emulator import BrevoEmulator
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_hubspot.config import HubSpotConfig
from segsync_mailchimp import MailchimpConfig

from segsync.clock import VirtualClock
from segsync.connector import ConnectorConfig, ContactChange
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema
from segsync.state.sqlite import SQLiteStateStore

SCHEMA = Schema(fields={"first_name": FieldSpec(type=FieldType.TEXT)})
ALICE = "alice@example.test"
DOT_DOT = f"x/../{ALICE}"
"""An address whose unescaped path folds (`/x/../alice`) onto another person's record."""
HOSTILE = "a/b?c#d%e..f@example.test"


def _segments(path: str) -> list[str]:
    """The path's segments, each unescaped as the emulator's routes see it."""
    return [urllib.parse.unquote(s) for s in path.split("/")]


# -- path segments ---------------------------------------------------------------------


def test_hubspot_consent_write_for_a_dot_dot_address_never_reaches_another_person() -> None:
    """One call per address (`POST .../statuses/{email}`): the address stays one segment, so
    the opt-out lands on its own record, never on Alice's (pre-existing, subscribed)."""
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock)
    emulator.seed_contact({"email": ALICE, "firstname": "Alice"})
    emulator.set_subscription(ALICE, subscribed=True)
    connector = HubSpotConnector(
        {"token": HubSpotEmulator.default_api_key, "consent_batch_writes": False},
        schema=SCHEMA,
        transport=emulator.transport(),
        clock=clock,
    )

    async def main() -> list[Any]:
        async with connector:
            return await connector.write(
                [
                    ContactChange(email=email, consent=ConsentStatus.UNSUBSCRIBED, create=True)
                    for email in (DOT_DOT, HOSTILE)
                ]
            )

    results = asyncio.run(main())

    assert all(r.ok for r in results), results
    assert emulator.subscription_status(ALICE) == "SUBSCRIBED"
    status_paths = [e.path for e in emulator.log.entries if "/statuses/" in e.path]
    assert [_segments(p)[-1] for p in status_paths] == [DOT_DOT, HOSTILE]
    assert all(p.count("/") == status_paths[0].count("/") for p in status_paths)


def test_hubspot_tag_list_lookup_with_reserved_characters_keeps_to_its_name() -> None:
    """`tags_as: lists`: a tag `vip#launch` looks up the list `segsync: tag vip#launch`, not
    the list a person made called `segsync: tag vip` (cut at the `#`), whose members stay."""
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock)
    emulator.seed_contact({"email": ALICE, "firstname": "Alice"})
    bob = emulator.seed_contact({"email": "bob@example.test"})
    token = HubSpotEmulator.default_api_key

    async def main() -> list[Any]:
        async with httpx.AsyncClient(
            base_url="https://api.hubapi.com",
            transport=emulator.transport(),
            headers={"authorization": f"Bearer {token}"},
        ) as person:
            made = await person.post(
                "/crm/lists/2026-03",
                json={
                    "name": "segsync: tag vip",
                    "objectTypeId": "0-1",
                    "processingType": "MANUAL",
                },
            )
            made.raise_for_status()
            list_id = made.json()["list"]["listId"]
            added = await person.put(f"/crm/lists/2026-03/{list_id}/memberships/add", json=[bob])
            added.raise_for_status()
        connector = HubSpotConnector(
            {"token": token, "tags_as": "lists"},
            schema=SCHEMA,
            transport=emulator.transport(),
            clock=clock,
        )
        async with connector:
            results = await connector.write(
                [ContactChange(email=ALICE, tags_add=frozenset({"vip#launch", "a/../b?c%"}))]
            )
        users = emulator.list_members(str(list_id))
        return [results, users]

    results, users = asyncio.run(main())

    assert all(r.ok for r in results), results
    assert users == {bob}
    by_name = [e.path for e in emulator.log.entries if "/name/" in e.path]
    assert {_segments(p)[-1] for p in by_name} >= {
        "segsync: tag vip#launch",
        "segsync: tag a/../b?c%",
    }


def test_brevo_write_for_a_dot_dot_address_never_reaches_another_person() -> None:
    """`GET`/`PUT /contacts/{email}`: Brevo's `quote` left `/`, so `x/../alice@…` became
    `/contacts/alice@…`; escaped, the address names itself and Alice keeps her name."""
    clock = VirtualClock()
    emulator = BrevoEmulator(clock=clock)
    emulator.seed_contact(ALICE, attributes={"FIRSTNAME": "Alice"})
    connector = BrevoConnector(
        {"api_key": emulator.api_key}, schema=SCHEMA, transport=emulator.transport(), clock=clock
    )

    async def main() -> list[Any]:
        async with connector:
            return await connector.write(
                [ContactChange(email=DOT_DOT, fields={"first_name": "Mallory"})]
            )

    asyncio.run(main())

    alice = emulator.contact(ALICE)
    assert alice is not None
    assert alice.attributes.get("FIRSTNAME") == "Alice"
    assert not alice.email_blacklisted
    paths = [e.path for e in emulator.log.entries if e.path.startswith("/v3/contacts/x")]
    assert paths
    assert all(_segments(p)[-1] == DOT_DOT for p in paths)


# -- base_url --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "block"),
    [
        (HubSpotConfig, {"token": "pat-x"}),
        (BrevoConfig, {"api_key": "xkeysib-x"}),
        (MailchimpConfig, {"api_key": "0" * 32 + "-us21", "list_id": "l1"}),
    ],
)
def test_a_base_url_away_from_the_vendor_needs_allow_custom_host(
    model: type[ConnectorConfig], block: dict[str, Any]
) -> None:
    """The credentials go wherever base_url points: another host than the vendor's or
    loopback is refused, naming the field and the fix, unless `allow_custom_host: true`."""
    for host in ("https://proxy.corp.example/api", "https://api.hubapi.com.evil.example"):
        with pytest.raises(ValidationError) as caught:
            model.model_validate({**block, "base_url": host})
        errors = caught.value.errors()
        assert [e["loc"] for e in errors] == [("base_url",)]
        assert "allow_custom_host: true" in errors[0]["msg"]
        allowed = model.model_validate({**block, "base_url": host, "allow_custom_host": True})
        assert allowed.base_url == host

    for host in (*model.vendor_hosts, "127.0.0.1:8080", "localhost:9"):
        scheme = "http" if host.startswith(("127.", "localhost")) else "https"
        assert model.model_validate({**block, "base_url": f"{scheme}://{host}"}).base_url
    assert model.vendor_hosts, "the vendor's hosts are the connector's class data"


def test_the_mailchimp_datacenter_host_is_the_vendors() -> None:
    config = MailchimpConfig.model_validate(
        {
            "api_key": "0" * 32 + "-us21",
            "list_id": "l1",
            "base_url": "https://us21.api.mailchimp.com/3.0",
        }
    )
    assert config.api_root == "https://us21.api.mailchimp.com/3.0"


# -- the state store's files -----------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The common umask 022: files 0644 and directories 0755 unless segsync asks otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_a_new_state_store_is_private(tmp_path: Path, open_umask: None) -> None:
    db = tmp_path / ".segsync" / "state.db"
    store = SQLiteStateStore(db)
    try:
        files = [db, db.with_name("state.db-wal"), db.with_name("state.db-shm")]
        assert all(f.exists() for f in files)
        assert _mode(db.parent) == 0o700
        assert [_mode(f) for f in files] == [0o600] * 3
    finally:
        store.close()


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_an_existing_open_state_store_is_tightened_with_a_warning(
    tmp_path: Path, open_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A state made by an earlier version (0755 directory, 0644 files) is made private, and
    each file tightened is named in a warning."""
    directory = tmp_path / ".segsync"
    directory.mkdir(mode=0o755)
    db = directory / "state.db"
    SQLiteStateStore(db).close()
    side = [db.with_name("state.db-wal"), db.with_name("state.db-shm")]
    for path in side:
        path.touch()
    for path in (db, *side):
        os.chmod(path, 0o644)
    os.chmod(directory, 0o755)

    with caplog.at_level(logging.WARNING, logger="segsync.state"):
        store = SQLiteStateStore(db)
    try:
        assert _mode(directory) == 0o700
        assert [_mode(p) for p in (db, *side)] == [0o600] * 3
        warned = caplog.text
        assert all(str(p) in warned for p in (directory, db, *side))
    finally:
        store.close()


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_a_state_in_a_directory_of_the_users_leaves_the_directory_alone(
    tmp_path: Path, open_umask: None
) -> None:
    """`sqlite:///state.db` in a project directory: the files are private, the user's
    directory keeps its mode."""
    os.chmod(tmp_path, 0o755)
    store = SQLiteStateStore(tmp_path / "state.db")
    store.close()
    assert _mode(tmp_path) == 0o755
    assert _mode(tmp_path / "state.db") == 0o600
