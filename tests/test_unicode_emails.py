"""Unicode in addresses (issue 14, item 4): the NFC and NFD spellings of one address are one
person; invisible and bidirectional-control characters make an address invalid, reported
per record with the character named, never copied to another platform."""

from __future__ import annotations

import asyncio
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "sync"))

from memory_platform import MemoryConnector, MemoryPlatform

from segsync.clock import VirtualClock
from segsync.model import InvalidEmail, normalize_email
from segsync.state import open_store
from segsync.sync import Engine, SyncPolicy

PLATFORMS = ("mc", "hs", "bv")
JOSE = "José.Müller@Exämple.test"
NFC = unicodedata.normalize("NFC", JOSE)
NFD = unicodedata.normalize("NFD", JOSE)
INVISIBLE = {
    "zero-width space": "ann\u200b@x.test",
    "zero-width joiner": "ann@x\u200d.test",
    "right-to-left override": "\u202etset.x@nna",
    "left-to-right isolate": "ann\u2066@x.test",
    "byte order mark": "\ufeffann@x.test",
}


class World:
    """Three in-memory platforms on one virtual clock, people's records already in them."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.platforms = {n: MemoryPlatform(n, self.clock) for n in PLATFORMS}
        self.store = open_store("sqlite:///:memory:", clock=self.clock)

    def sync(self) -> Any:
        engine = Engine(
            {n: MemoryConnector(p) for n, p in self.platforms.items()},
            self.store,
            config="test",
            policy=SyncPolicy(platforms=PLATFORMS),
            clock=self.clock,
        )
        return asyncio.run(engine.sync())


def test_nfc_and_nfd_spellings_are_one_key() -> None:
    assert NFC != NFD
    assert normalize_email(NFC) == normalize_email(NFD)
    assert normalize_email(NFD) == unicodedata.normalize("NFC", normalize_email(NFD))


def test_nfc_and_nfd_spellings_on_two_platforms_are_one_person() -> None:
    """One platform holds the composed spelling, another the decomposed one (as typed on
    another keyboard): one contact, no duplicate created anywhere, and the next run is quiet."""
    world = World()
    world.platforms["mc"].add(NFC, {"city": "Lyon"})
    world.platforms["hs"].add(NFD, {"phone": "+33 1"})
    world.platforms["hs"].add("other@x.test")

    first = world.sync()
    second = world.sync()

    assert first.errors == []
    for name, platform in world.platforms.items():
        people = [r for r in platform.live() if r.email != "other@x.test"]
        assert len(people) == 1, (name, [ascii(r.email) for r in people])
    bv = world.platforms["bv"].live()
    assert sorted(normalize_email(r.email) for r in bv) == sorted(
        {normalize_email(NFC), "other@x.test"}
    )
    assert second.writes == 0


@pytest.mark.parametrize("kind", sorted(INVISIBLE))
def test_invisible_characters_make_an_address_invalid(kind: str) -> None:
    email = INVISIBLE[kind]
    with pytest.raises(InvalidEmail) as caught:
        normalize_email(email)
    code = next(c for c in email if unicodedata.category(c) == "Cf")
    assert f"U+{ord(code):04X}" in str(caught.value)
    assert code not in str(caught.value)  # the address is shown escaped


def test_an_address_with_an_invisible_character_is_a_record_error_never_copied() -> None:
    """A record whose address holds a zero-width or bidi-override character is reported per
    record, escaped, and not created on the other platforms; the others sync."""
    world = World()
    for email in INVISIBLE.values():
        world.platforms["mc"].add(email, {"city": "Nice"})
    world.platforms["mc"].add("ann@x.test", {"city": "Nice"})

    report = world.sync()

    assert sorted((e.platform, e.email, e.code) for e in report.errors) == sorted(
        ("mc", email, "invalid_email") for email in INVISIBLE.values()
    )
    for error in report.errors:
        assert "U+" in error.message
        assert not any(unicodedata.category(c) == "Cf" for c in error.message)
    for name in ("hs", "bv"):
        assert [r.email for r in world.platforms[name].live()] == ["ann@x.test"]
