"""`segsync doctor`: a read-only preflight against lived-in emulated accounts on loopback
(the CLI, `slow`) and in-process (`diagnose`, fast)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from segsync_brevo.emulator import BrevoEmulator
from segsync_hubspot import HubSpotEmulator
from segsync_hubspot.emulator.scopes import PRIVATE_APP_SCOPES
from segsync_mailchimp import MailchimpEmulator
from typer.testing import CliRunner

from segsync.cli import EXIT_ACCOUNT, EXIT_INVALID, EXIT_OK, EXIT_UNAVAILABLE, app
from segsync.cli.doctor import diagnose, exit_code
from segsync.clock import SystemClock, VirtualClock
from segsync.config import load_config
from segsync.emulator.base import Emulator
from segsync.state import open_store

BREVO_KEY = "xkeysib-" + "3" * 64 + "-doctorAcct0003"
#: POST routes that only read (searches, batch reads)
READ_POSTS = re.compile(r"/(search|batch/read)$")


class World:
    """The three platforms' lived-in accounts served on loopback, and a config at them."""

    def __init__(self, tmp: Path, stack: contextlib.ExitStack, **hubspot: Any) -> None:
        clock = SystemClock()
        self.mc = MailchimpEmulator.from_fixture("lived-in", clock=clock)
        self.hs = HubSpotEmulator.from_fixture("lived-in", clock=clock, **hubspot)
        self.bv = BrevoEmulator.from_fixture("lived-in", clock=clock, api_key=BREVO_KEY)
        self.emulators: dict[str, Emulator] = {
            "mailchimp": self.mc, "hubspot": self.hs, "brevo": self.bv,
        }
        self.urls = {n: stack.enter_context(e.serving()) for n, e in self.emulators.items()}
        self.config = tmp / "segsync.yaml"
        self.state = tmp / "state.db"

    def write(self, **overrides: dict[str, Any]) -> None:
        blocks: dict[str, dict[str, Any]] = {
            "mailchimp": {"api_key": self.mc.api_key, "list_id": self.mc.default_list_id},
            "hubspot": {"token": self.hs.api_key, "subscription_id": 101},
            "brevo": {"api_key": self.bv.api_key, "consent": {"lists": [2]}},
        }
        lines = [f"state: sqlite:///{self.state}", "schema:", "  first_name: text",
                 "  company: text", "  plan: {type: enum, options: [free, pro, enterprise]}",
                 "  loyalty: number", "platforms:"]
        for name, block in blocks.items():
            block = {**block, "base_url": self.urls[name], **overrides.get(name, {})}
            lines.append(f"  {name}: {json.dumps(block)}")
        lines += ["segments:", "  pros:", "    rule: plan = \"pro\""]
        self.config.write_text("\n".join(lines) + "\n")

    def doctor(self, *args: str) -> Any:
        for emulator in self.emulators.values():
            emulator.log.clear()
        return CliRunner().invoke(app, ["doctor", *args, "-c", str(self.config)])

    def json(self) -> tuple[int, dict[str, Any]]:
        result = self.doctor("--json")
        return result.exit_code, json.loads(result.stdout)

    def writes(self) -> list[tuple[str, str, str]]:
        """Every request any emulator saw that could have changed something."""
        return [
            (name, e.method, e.path)
            for name, emulator in self.emulators.items()
            for e in emulator.log.entries
            if e.method not in ("GET", "HEAD") and not (
                e.method == "POST" and READ_POSTS.search(e.path)
            )
        ]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:  # loopback servers: the tests using it are slow
    with contextlib.ExitStack() as stack:
        yield World(tmp_path, stack)


def platform(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in report["platforms"] if p["platform"] == name)


def test_diagnose_in_process_reads_only_and_finds_a_wrong_audience(tmp_path: Path) -> None:
    """Fast: `diagnose` through in-process transports; a missing audience is a blocking
    `invalid` problem, the other platforms stay ready, and no request writes."""
    clock = VirtualClock()
    emulators: dict[str, Emulator] = {
        "mailchimp": MailchimpEmulator.from_fixture("lived-in", clock=clock),
        "hubspot": HubSpotEmulator.from_fixture("lived-in", clock=clock),
        "brevo": BrevoEmulator.from_fixture("lived-in", clock=clock, api_key=BREVO_KEY),
    }
    local = "http://127.0.0.1:9"
    blocks = {
        "mailchimp": {"api_key": emulators["mailchimp"].api_key, "list_id": "zzzzzzzzzz"},
        "hubspot": {"token": emulators["hubspot"].api_key},
        "brevo": {"api_key": BREVO_KEY},
    }
    lines = [f"state: sqlite:///{tmp_path / 'state.db'}", "schema:", "  first_name: text",
             "platforms:"]
    lines += [
        f"  {n}: {json.dumps({**b, 'base_url': local + emulators[n].base_path})}"
        for n, b in blocks.items()
    ]
    (tmp_path / "segsync.yaml").write_text("\n".join(lines) + "\n")
    config = load_config(tmp_path / "segsync.yaml")

    reports = diagnose(config, transports={n: e.transport() for n, e in emulators.items()})

    assert exit_code(reports) == EXIT_INVALID
    by_name = {r.platform: r for r in reports}
    assert [k for k, _ in by_name["mailchimp"].problems] == ["invalid"]
    [(_, message)] = by_name["mailchimp"].problems
    assert "list_id: audience zzzzzzzzzz does not exist" in message
    assert f"fix: set list_id to one of its audiences: {emulators['mailchimp'].default_list_id}" \
        in message
    assert by_name["hubspot"].ready
    assert by_name["brevo"].ready
    for emulator in emulators.values():
        assert emulator.log.entries
        for entry in emulator.log.entries:
            assert entry.method == "GET" or READ_POSTS.search(entry.path), entry


@pytest.mark.slow
def test_doctor_reports_ready_accounts_and_writes_nothing(world: World) -> None:
    world.write()
    code, report = world.json()

    assert code == EXIT_OK, report
    assert report["ok"] is True
    assert world.writes() == []
    assert all(len(e.log.entries) > 0 for e in world.emulators.values())
    mc, hs, bv = (platform(report, n) for n in ("mailchimp", "hubspot", "brevo"))
    assert mc["identity"]
    assert hs["identity"].startswith("portal")
    assert bv["identity"]
    assert mc["bound_to"] is None  # no state yet: not bound, and no state file made
    assert not world.state.exists()
    # audience sizes from the lived-in fixtures, and the first sync's cost model
    assert mc["audience_size"] == 6  # 7 members, one archived
    assert hs["audience_size"] == 7  # 8 contacts, one archived
    assert bv["audience_size"] == 6
    for entry in (mc, hs, bv):
        assert entry["estimate"]["contacts"] == entry["audience_size"]
        assert entry["estimate"]["calls"] >= 2
    assert bv["estimate"]["notes"]
    # what the first apply would create: the schema's fields the account lacks
    for entry in (mc, hs, bv):
        assert any("loyalty" in line.lower() for line in entry["creates"]), entry["creates"]
        assert not any("plan " in line.lower() for line in entry["creates"])  # the user's own
        assert any(line.startswith("segment pros: ") for line in entry["creates"])
    facts = {f["label"]: f["value"] for f in hs["facts"]}
    assert "Marketing Information (id 101" in facts["subscription type"]
    assert "Product updates (id 104" in facts["subscription types"]
    assert facts["scopes for tag and segment lists"] == "granted"
    assert "Newsletter" in {f["label"]: f["value"] for f in bv["facts"]}["consent list 2"]
    assert "x-sib-ratelimit-remaining" in bv["headroom"]
    assert "x-hubspot-ratelimit-remaining" in hs["headroom"]


@pytest.mark.slow
def test_doctor_human_output_names_each_platform(world: World) -> None:
    world.write()
    result = world.doctor()
    assert result.exit_code == EXIT_OK, result.output
    for name in ("mailchimp", "hubspot", "brevo"):
        assert f"ready {name}: account" in result.output
    assert "first sync about" in result.output
    assert result.output.rstrip().splitlines()[-1].startswith("ready: 3 platform(s)")
    assert world.writes() == []


@pytest.mark.slow
def test_a_missing_scope_is_named_and_exits_4(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        world = World(
            tmp_path, stack, token_scopes=PRIVATE_APP_SCOPES - {"crm.lists.read"}
        )
        world.write()
        code, report = world.json()
        assert world.writes() == []
    assert code == EXIT_UNAVAILABLE
    problems = [p["message"] for p in platform(report, "hubspot")["problems"]]
    assert any("crm.lists.read" in p and p.startswith("platforms.hubspot:") for p in problems)
    assert platform(report, "mailchimp")["ready"] is True


@pytest.mark.slow
def test_a_wrong_audience_exits_2(world: World) -> None:
    world.write(mailchimp={"list_id": "zzzzzzzzzz"})
    code, report = world.json()
    assert code == EXIT_INVALID
    (problem,) = platform(report, "mailchimp")["problems"]
    assert problem["kind"] == "invalid"
    assert world.writes() == []


@pytest.mark.slow
def test_a_missing_subscription_type_exits_2(world: World) -> None:
    world.write(hubspot={"subscription_id": 999})
    code, report = world.json()
    assert code == EXIT_INVALID
    messages = " ".join(p["message"] for p in platform(report, "hubspot")["problems"])
    assert "999" in messages
    assert "subscription_id" in messages
    assert world.writes() == []


@pytest.mark.slow
def test_a_missing_brevo_consent_list_exits_2(world: World) -> None:
    world.write(brevo={"consent": {"lists": [77]}})
    code, report = world.json()
    assert code == EXIT_INVALID
    assert "77" in " ".join(p["message"] for p in platform(report, "brevo")["problems"])


@pytest.mark.slow
def test_a_state_bound_to_another_account_exits_5(world: World) -> None:
    world.write()
    store = open_store(f"sqlite:///{world.state}")
    try:
        state = store.scoped("brevo+hubspot+mailchimp")
        state.bind("hubspot", "99999", "portal 99999", at="2026-01-01T00:00:00Z")
    finally:
        store.close()
    code, report = world.json()
    assert code == EXIT_ACCOUNT
    hs = platform(report, "hubspot")
    assert "99999" in hs["bound_to"]
    assert any("segsync rebind hubspot" in p["message"] for p in hs["problems"])
    assert platform(report, "brevo")["ready"] is True
    assert world.writes() == []


@pytest.mark.slow
def test_an_unreachable_platform_exits_4(world: World) -> None:
    world.write(brevo={"api_key": "xkeysib-" + "9" * 64 + "-wrongKey000009"})
    code, report = world.json()
    assert code == EXIT_UNAVAILABLE
    assert platform(report, "brevo")["problems"][0]["kind"] == "unavailable"
    assert "9" * 64 not in json.dumps(report)


@pytest.mark.slow
def test_an_invalid_configuration_exits_2_before_any_call(world: World) -> None:
    world.write()
    world.config.write_text(world.config.read_text().replace("list_id", "list_idd"))
    result = world.doctor()
    assert result.exit_code == EXIT_INVALID
    assert "list_id" in result.output
    assert all(not e.log.entries for e in world.emulators.values())


@pytest.mark.slow
def test_human_output_names_each_blocking_problem_with_its_place(world: World) -> None:
    world.write(hubspot={"subscription_id": 999}, brevo={"consent": {"lists": [77]}})
    result = world.doctor()
    assert result.exit_code == EXIT_INVALID
    assert "not ready hubspot" in result.output
    assert "not ready brevo" in result.output
    assert "problem platforms.hubspot:" in result.output
    assert "problem platforms.brevo:" in result.output
    assert "ready mailchimp" in result.output
    assert re.match(
        r"not ready: \d+ blocking problem\(s\) on brevo, hubspot; fix each one named above",
        result.output.rstrip().splitlines()[-1],
    )
