"""`segsync doctor` and `segsync check --online` report a schema field the account cannot
hold (the user's own HubSpot enumeration property `tier`, the schema's `tier: text`), which
a sync leaves out of HubSpot's writes; on a lived-in account."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import httpx
from segsync_brevo.emulator import BrevoEmulator
from segsync_hubspot import HubSpotEmulator
from segsync_mailchimp import MailchimpEmulator
from typer.testing import CliRunner

from segsync.cli import EXIT_INVALID, app
from segsync.cli.doctor import diagnose
from segsync.clock import SystemClock
from segsync.config import load_config
from segsync.emulator.base import Emulator

BREVO_KEY = "xkeysib-" + "4" * 64 + "-prepareAcct004"


def _emulators() -> dict[str, Emulator]:
    clock = SystemClock()
    hs = HubSpotEmulator.from_fixture("lived-in", clock=clock)

    async def create_property() -> None:  # the portal's own property, made by its user
        async with httpx.AsyncClient(
            transport=hs.transport(), base_url="http://127.0.0.1:9",
            headers={"Authorization": f"Bearer {hs.api_key}"},
        ) as client:
            (await client.post("/crm/v3/properties/contacts", json={
                "name": "tier", "label": "Tier", "type": "enumeration", "fieldType": "select",
                "groupName": "contactinformation",
                "options": [{"label": "Gold", "value": "gold", "displayOrder": 0}],
            })).raise_for_status()

    asyncio.run(create_property())
    return {
        "mailchimp": MailchimpEmulator.from_fixture("lived-in", clock=clock),
        "hubspot": hs,
        "brevo": BrevoEmulator.from_fixture("lived-in", clock=clock, api_key=BREVO_KEY),
    }


def _config(path: Path, emulators: dict[str, Emulator], urls: dict[str, str]) -> Path:
    blocks = {
        "mailchimp": {"api_key": emulators["mailchimp"].api_key,
                      "list_id": emulators["mailchimp"].default_list_id},  # type: ignore[attr-defined]
        "hubspot": {"token": emulators["hubspot"].api_key, "subscription_id": 101},
        "brevo": {"api_key": BREVO_KEY},
    }
    lines = [f"state: sqlite:///{path / 'state.db'}", "schema:", "  first_name: text",
             "  tier: text", "platforms:"]
    lines += [f"  {n}: {json.dumps({**b, 'base_url': urls[n]})}" for n, b in blocks.items()]
    config = path / "segsync.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


def test_doctor_reports_a_property_of_another_type(tmp_path: Path) -> None:
    emulators = _emulators()
    local = "http://127.0.0.1:9"
    config = _config(tmp_path, emulators,
                     {n: local + e.base_path for n, e in emulators.items()})
    reports = diagnose(load_config(config),
                       transports={n: e.transport() for n, e in emulators.items()})
    hubspot = next(r for r in reports if r.platform == "hubspot")
    said = [m for _, m in hubspot.problems if "tier" in m]
    assert len(said) == 1
    assert "enumeration" in said[0]
    assert "fix" in said[0]
    assert not hubspot.ready


def test_check_online_reports_a_property_of_another_type(tmp_path: Path) -> None:
    emulators = _emulators()
    with contextlib.ExitStack() as stack:
        urls = {n: stack.enter_context(e.serving()) for n, e in emulators.items()}
        config = _config(tmp_path, emulators, urls)
        result = CliRunner().invoke(app, ["check", "--online", "--json", "-c", str(config)])
    assert result.exit_code == EXIT_INVALID, result.stdout
    data = json.loads(result.stdout)
    assert not data["ok"]
    problems = [p for p in data["problems"] if "tier" in p]
    assert len(problems) == 1
    assert "platforms.hubspot" in problems[0]
    assert "enumeration" in problems[0]
