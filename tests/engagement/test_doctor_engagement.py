"""`segsync doctor` on engagement, in process against lived-in emulators: the first sync's
cost includes the engagement refresh where it runs, says it is off where it does not (with
the key and the cost of turning it on), and a missing Brevo consent list is one problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from segsync_brevo.emulator import BrevoEmulator
from segsync_hubspot import HubSpotEmulator
from segsync_mailchimp import MailchimpEmulator

from segsync.cli import EXIT_INVALID
from segsync.cli.doctor import diagnose, exit_code
from segsync.clock import VirtualClock
from segsync.config import load_config
from segsync.emulator.base import Emulator

BREVO_KEY = "xkeysib-" + "3" * 64 + "-doctorAcct0003"


def _doctor(tmp_path: Path, brevo: dict[str, object], extra: str = "") -> dict[str, object]:
    clock = VirtualClock()
    emulators: dict[str, Emulator] = {
        "mailchimp": MailchimpEmulator.from_fixture("lived-in", clock=clock),
        "hubspot": HubSpotEmulator.from_fixture("lived-in", clock=clock),
        "brevo": BrevoEmulator.from_fixture("lived-in", clock=clock, api_key=BREVO_KEY),
    }
    local = "http://127.0.0.1:9"
    blocks = {
        "mailchimp": {"api_key": emulators["mailchimp"].api_key,
                      "list_id": emulators["mailchimp"].default_list_id},
        "hubspot": {"token": emulators["hubspot"].api_key, "subscription_id": 101},
        "brevo": {"api_key": BREVO_KEY, **brevo},
    }
    lines = [f"state: sqlite:///{tmp_path / 'state.db'}", "schema:", "  first_name: text",
             "platforms:"]
    lines += [f"  {n}: {json.dumps({**b, 'base_url': local + emulators[n].base_path})}"
              for n, b in blocks.items()]
    (tmp_path / "segsync.yaml").write_text("\n".join(lines) + "\n" + extra)
    config = load_config(tmp_path / "segsync.yaml")
    reports = diagnose(config, transports={n: e.transport() for n, e in emulators.items()})
    return {r.platform: r for r in reports}


@pytest.mark.slow
def test_doctor_gives_the_engagement_refresh_cost_and_whether_it_runs(tmp_path: Path) -> None:
    off = _doctor(tmp_path, {})
    brevo = off["brevo"]
    assert brevo.audience_size
    assert brevo.engagement is not None
    assert brevo.engagement.startswith("engagement: not read (engagement.platforms.brevo is off)")
    assert f"about {brevo.audience_size + 2} calls" in brevo.engagement  # one per contact
    assert off["mailchimp"].engagement is not None
    assert off["mailchimp"].engagement.startswith("engagement refresh (the first sync's too")

    on = _doctor(tmp_path, {}, "engagement: {platforms: {brevo: 24h}}\n")["brevo"]
    assert on.engagement is not None
    assert on.engagement.startswith("engagement refresh (the first sync's too, every 1 day")


@pytest.mark.slow
def test_a_missing_brevo_consent_list_is_one_problem(tmp_path: Path) -> None:
    found = _doctor(tmp_path, {"consent": {"lists": [77]}})
    assert exit_code(list(found.values())) == EXIT_INVALID
    problems = found["brevo"].problems
    assert len(problems) == 1, problems
    assert "list 77 does not exist" in problems[0][1]
