"""`segsync consent history` and `consent export`: the ledger shown and exported from the
state alone, without any platform secret in the environment."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sync"))

from memory_platform import MemoryConnector, MemoryPlatform

from segsync.cli import app
from segsync.clock import VirtualClock
from segsync.state import open_store
from segsync.sync import Engine, SyncPolicy

PLATFORMS = ("mc", "hs", "bv")
CONFIG = """\
state: sqlite:///{state}
platforms:
  mc: {{api_key: "${{MC_KEY_NOT_SET}}"}}
  hs: {{token: "${{HS_TOKEN_NOT_SET}}", legal_basis: LEGITIMATE_INTEREST_CLIENT}}
  bv: {{api_key: "${{BV_KEY_NOT_SET}}"}}
  old: {{enabled: false}}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A state where a lived-in Mailchimp-like account was synced twice (an opt-in copied,
    then an opt-out), and a configuration whose secrets are not set."""
    clock = VirtualClock()
    platforms = {n: MemoryPlatform(n, clock) for n in PLATFORMS}
    platforms["hs"].default_basis = "LEGITIMATE_INTEREST_CLIENT"
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    engine = Engine({n: MemoryConnector(p) for n, p in platforms.items()}, store,
                    config="bv+hs+mc", policy=SyncPolicy(platforms=PLATFORMS), clock=clock)
    ada = platforms["mc"].add("Ada@Example.com", {"city": "Lyon"}, ["vip"], "subscribed")
    platforms["mc"].add("bob@example.com", consent="non_subscribed")
    asyncio.run(engine.sync())
    clock.advance(86400 * 3)
    platforms["mc"].set_consent(ada.id, "unsubscribed")
    asyncio.run(engine.sync())
    store.close()
    path = tmp_path / "segsync.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state.db"), encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"MC_KEY_NOT_SET": None})
    return result.exit_code, result.output


def test_history_shows_every_change_with_its_proof(config: Path) -> None:
    code, out = run("consent", "history", "ada@example.com", "-c", str(config))

    assert code == 0, out
    lines = out.splitlines()
    assert any("hs" in line and "written by segsync from mc" in line
               and "evidence consent=subscribed" in line
               and "basis LEGITIMATE_INTEREST_CLIENT (config default)" in line
               for line in lines), out
    assert any("seen on mc" in line and "subscribed -> unsubscribed" in line
               for line in lines), out
    assert "bob@" not in out


def test_history_as_json(config: Path) -> None:
    code, out = run("consent", "history", " ADA@example.com ", "-c", str(config), "--json")

    assert code == 0, out
    data = json.loads(out)
    assert data["email"] == "ada@example.com"
    made = [c for c in data["changes"] if c["source"] == "sync"]
    assert {(c["platform"], c["sent"], c["source_platform"]) for c in made} >= {
        ("hs", "subscribed", "mc"), ("bv", "subscribed", "mc"),
        ("hs", "unsubscribed", "mc"), ("bv", "unsubscribed", "mc"),
    }
    assert all(c["run_id"] and c["at"] for c in data["changes"])


def test_export_csv_and_jsonl_since_a_date(config: Path) -> None:
    code, out = run("consent", "export", "-c", str(config))
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["email"] for r in rows} == {"ada@example.com", "bob@example.com"}
    assert rows[0].keys() >= {"sent", "source_platform", "evidence", "basis_from_default"}

    code, out = run("consent", "export", "-c", str(config), "--format", "jsonl",
                    "--since", "2026-01-02")
    assert code == 0, out
    later = [json.loads(line) for line in out.splitlines()]
    assert later
    assert len(later) < len(rows)
    assert all(r["at"] >= "2026-01-02" and r["email"] == "ada@example.com" for r in later)
    assert {r["new"] for r in later} == {"unsubscribed"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("consent", "history", "not-an-email"), "EMAIL 'not-an-email'"),
        (("consent", "export", "--since", "last week"), "--since 'last week': not a date"),
        (("consent", "export", "--format", "xml"), "--format 'xml'"),
    ],
)
def test_bad_input_is_a_located_error(config: Path, args: tuple[str, ...], expected: str) -> None:
    code, out = run(*args, "-c", str(config))

    assert code == 2
    assert expected in out


def test_a_missing_state_says_so(tmp_path: Path) -> None:
    path = tmp_path / "segsync.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "nowhere.db"), encoding="utf-8")

    code, out = run("consent", "history", "a@b.co", "-c", str(path))

    assert code == 2
    assert "no state file" in out
    assert not (tmp_path / "nowhere.db").exists()


def test_an_address_held_by_two_people_in_turn_is_two_histories(tmp_path: Path) -> None:
    """Ada leaves ada@ (renamed on mc), then Zoe signs up with ada@: the history of ada@
    shows Ada's and Zoe's changes apart, under their person ids, never as one person's."""
    clock = VirtualClock()
    platforms = {n: MemoryPlatform(n, clock) for n in PLATFORMS}
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    engine = Engine({n: MemoryConnector(p) for n, p in platforms.items()}, store,
                    config="bv+hs+mc", policy=SyncPolicy(platforms=PLATFORMS), clock=clock)
    ada = platforms["mc"].add("ada@example.com", consent="subscribed")
    asyncio.run(engine.sync())
    clock.advance(3600)
    platforms["mc"].rename(ada.id, "ada.lovelace@example.com")
    asyncio.run(engine.sync())
    clock.advance(3600)
    platforms["mc"].add("ada@example.com", consent="subscribed")
    asyncio.run(engine.sync())
    store.close()
    path = tmp_path / "segsync.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state.db"), encoding="utf-8")

    code, out = run("consent", "history", "ada@example.com", "-c", str(path))
    assert code == 0, out
    assert "was held by 2 people" in out, out
    headings = [line for line in out.splitlines() if line.startswith("person ")]
    assert len(headings) == 2, out
    assert headings[0] != headings[1], out

    code, out = run("consent", "history", "ada@example.com", "-c", str(path), "--json")
    people = json.loads(out)["people"]
    assert len(people) == 2
    assert all({c["cid"] for c in p["changes"]} == {p["cid"]} for p in people)


def test_evidence_found_at_the_first_sync_has_its_ledger_rows(tmp_path: Path) -> None:
    """Ada is subscribed on mc and unsubscribed on bv before segsync ever ran: the first sync's
    ledger holds what it saw on each platform (with the evidence) and the canonical decision,
    besides the writes."""
    clock = VirtualClock()
    platforms = {n: MemoryPlatform(n, clock) for n in PLATFORMS}
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    engine = Engine({n: MemoryConnector(p) for n, p in platforms.items()}, store,
                    config="bv+hs+mc", policy=SyncPolicy(platforms=PLATFORMS), clock=clock)
    platforms["mc"].add("ada@example.com", consent="subscribed")
    clock.advance(60)
    platforms["bv"].add("ada@example.com", consent="unsubscribed")
    asyncio.run(engine.sync())
    rows = store.ledger("bv+hs+mc", email="ada@example.com")
    store.close()

    seen = {(r.platform, r.previous, r.new) for r in rows if r.source != "sync"}
    assert ("mc", None, "subscribed") in seen
    assert ("bv", None, "unsubscribed") in seen
    assert ("canonical", None, "unsubscribed") in seen
    assert all(r.evidence for r in rows if r.platform in ("mc", "bv") and r.source != "sync")
