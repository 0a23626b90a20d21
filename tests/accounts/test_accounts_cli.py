"""`segsync check --online` and `segsync rebind`, against emulators served on loopback and a
real configuration file (in-process through typer's CliRunner)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from segsync_hubspot import HubSpotEmulator
from segsync_mailchimp import MailchimpEmulator
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accounts_world import ALICE, BOB, STRANGER, customer_brevo, other_brevo

from segsync.cli import EXIT_ACCOUNT, EXIT_INVALID, EXIT_OK, EXIT_UNAVAILABLE, app
from segsync.clock import SystemClock


class Served:
    """The customer's three accounts and another Brevo account, served on loopback (each
    URL with its base path), and a segsync.yaml that `write` points at them."""

    def __init__(self, tmp: Path, stack: contextlib.ExitStack) -> None:
        clock = SystemClock()
        self.mc = MailchimpEmulator(clock=clock, reject_fake_emails=False)
        self.hs = HubSpotEmulator(clock=clock)
        self.bv = customer_brevo(clock)  # type: ignore[arg-type]
        self.other = other_brevo(clock)  # type: ignore[arg-type]
        for email, name in ((ALICE, "Alice"), (BOB, "Bob")):
            self.mc.seed_member(email, "subscribed", merge_fields={"FNAME": name})
            self.hs.seed_contact({"email": email, "firstname": name})
        self.urls = {
            name: stack.enter_context(emulator.serving())
            for name, emulator in (("mailchimp", self.mc), ("hubspot", self.hs),
                                   ("brevo", self.bv), ("other", self.other))
        }
        self.config = tmp / "segsync.yaml"
        self.state = tmp / "state.db"
        self.runner = CliRunner()

    def write(self, *, brevo: dict[str, Any] | None = None,
              hubspot: dict[str, Any] | None = None, brevo_at: str = "brevo") -> Path:
        target = self.other if brevo_at == "other" else self.bv
        blocks = {
            "mailchimp": {"api_key": self.mc.api_key, "list_id": self.mc.default_list_id,
                          "base_url": self.urls["mailchimp"]},
            "hubspot": {"token": self.hs.api_key, "base_url": self.urls["hubspot"],
                        "subscription_id": 101, **(hubspot or {})},
            "brevo": {"api_key": target.api_key,
                      "base_url": self.urls[brevo_at], **(brevo or {})},
        }
        lines = [f"state: sqlite:///{self.state}", "schema:", "  first_name: text",
                 "platforms:"]
        lines += [f"  {name}: {json.dumps(block)}" for name, block in blocks.items()]
        self.config.write_text("\n".join(lines) + "\n")
        return self.config

    def invoke(self, *args: str) -> Any:
        return self.runner.invoke(app, [*args, "-c", str(self.config)])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with contextlib.ExitStack() as stack:
        yield Served(tmp_path, stack)


def test_check_online_shows_each_account_and_its_facts(served: Served) -> None:
    served.write()

    result = served.invoke("check", "--online")

    assert result.exit_code == EXIT_OK, result.output
    assert "brevo: account Customer Ltd (login ops@customer.test) (id org:org-customer-0001)" \
        in result.output
    assert "hubspot: account portal 12345678" in result.output
    assert f"mailchimp: account segsync emulator, audience {served.mc.default_list_id}" \
        in result.output
    assert "subscription type: Marketing Information (id 101)" in result.output
    assert served.bv.api_key not in result.output

    data = json.loads(served.invoke("check", "--online", "--json").output)
    assert data["ok"] is True
    by_platform = {entry["platform"]: entry for entry in data["online"]}
    assert by_platform["brevo"]["identity"]["id"] == "org:org-customer-0001"
    assert by_platform["hubspot"]["identity"]["id"] == "12345678"


def test_check_online_reports_a_bad_consent_list_and_a_bad_subscription_type(
    served: Served,
) -> None:
    served.write(brevo={"consent": {"lists": [4242]}}, hubspot={"subscription_id": 999})

    result = served.invoke("check", "--online")

    assert result.exit_code == EXIT_INVALID, result.output
    assert "platforms.brevo" in result.output
    assert "brevo.consent.lists" in result.output
    assert "4242" in result.output
    assert "platforms.hubspot" in result.output
    assert "hubspot.subscription_id" in result.output
    assert "mailchimp: account" in result.output  # the good platform is still shown

    data = json.loads(served.invoke("check", "--online", "--json").output)
    assert data["ok"] is False
    places = " ".join(data["problems"])
    assert "platforms.brevo: " in places
    assert "platforms.hubspot: " in places


def test_check_online_tells_a_refused_key_from_a_bad_setting(served: Served) -> None:
    served.write(hubspot={"token": "pat-na1-99999999-9999-9999-9999-999999999999"})

    result = served.invoke("check", "--online")

    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    assert "hubspot unavailable" in result.output
    assert "99999999-9999" not in result.output


def test_check_without_online_calls_no_platform(served: Served) -> None:
    served.write()

    assert served.invoke("check").exit_code == EXIT_OK
    assert len(served.bv.log) == len(served.hs.log) == len(served.mc.log) == 0


def test_rebind_refuses_an_unknown_platform_and_a_missing_yes(served: Served) -> None:
    config = served.write()

    unknown = served.invoke("rebind", "brevoo")
    assert unknown.exit_code == EXIT_INVALID
    assert f"{config}: platforms.brevoo: not configured" in unknown.output

    no_yes = served.invoke("rebind", "brevo")  # CliRunner's stdin is not a terminal
    assert no_yes.exit_code == EXIT_INVALID
    assert "--yes" in no_yes.output


@pytest.mark.slow
def test_moving_brevo_to_another_account_then_rebinding(served: Served) -> None:
    served.write()
    assert served.invoke("sync").exit_code == EXIT_OK

    served.write(brevo_at="other")
    refused = served.invoke("sync")

    assert refused.exit_code != EXIT_OK
    assert "account_mismatch" in refused.output or "segsync rebind brevo" in refused.output
    assert "org:org-customer-0001" in refused.output
    assert "org:org-other-0002" in refused.output
    assert served.hs.contact_by_email(ALICE)["firstname"] == "Alice"
    assert served.hs.contact_by_email(STRANGER) is None

    rebound = served.invoke("rebind", "brevo", "--yes", "--json")

    assert rebound.exit_code == EXIT_OK, rebound.output
    data = json.loads(rebound.output)
    assert data["previous"]["id"] == "org:org-customer-0001"
    assert data["current"]["id"] == "org:org-other-0002"
    assert data["forgotten"]["records"] == 2
    assert data["rebound"] is True

    synced = served.invoke("sync")

    assert synced.exit_code == EXIT_OK, synced.output
    assert served.other.contact(ALICE).attributes["FIRSTNAME"] == "Alice"
    assert served.hs.contact_by_email(ALICE)["firstname"] == "Alice"
    again = served.invoke("rebind", "brevo", "--yes")
    assert again.exit_code == EXIT_OK
    assert "already bound" in again.output


@pytest.mark.slow
def test_erase_refuses_brevo_pointed_at_another_account_as_sync_does(served: Served) -> None:
    served.write()
    assert served.invoke("sync").exit_code == EXIT_OK
    assert served.other.contact(STRANGER).id == served.bv.contact(ALICE).id
    served.write(brevo_at="other")
    refused_sync = served.invoke("sync")
    assert refused_sync.exit_code == EXIT_ACCOUNT

    erased = served.invoke("erase", ALICE, "--yes")

    assert erased.exit_code == EXIT_ACCOUNT, erased.output
    assert "brevo: deleted" not in erased.output
    assert "org:org-customer-0001" in erased.output
    assert "org:org-other-0002" in erased.output
    assert "segsync rebind brevo" in erased.output
    assert [e.path for e in served.other.log.entries if e.method != "GET"] == []
    assert served.other.contact(STRANGER) is not None
    assert served.hs.contact_by_email(ALICE) is None
    assert served.mc.get_member(ALICE) is None
    data = json.loads(served.invoke("erase", ALICE, "--yes", "--json").stdout)
    assert list(data["account_mismatch"]) == ["brevo"]
    assert data["confirmed"] is False
    # pointed back at the bound account, the same command completes the erasure
    served.write()

    completed = served.invoke("erase", ALICE, "--yes")

    assert completed.exit_code == EXIT_OK, completed.output
    assert served.bv.contact(ALICE) is None
    assert served.bv.contact(BOB) is not None
    assert served.invoke("sync").exit_code == EXIT_OK
    assert served.hs.contact_by_email(ALICE) is None  # the tombstone holds


@pytest.mark.slow
def test_rebind_of_an_unbound_platform_says_nothing_is_bound_yet(served: Served) -> None:
    served.write()

    result = served.invoke("rebind", "brevo", "--yes")

    assert result.exit_code == EXIT_OK, result.output
    assert "brevo: the state is not bound to an account yet" in result.output
    assert "binds it to the account the configuration reaches" in result.output
    assert "bound to account not bound" not in result.output
    assert "org:org-customer-0001" in result.output
    assert served.invoke("sync").exit_code == EXIT_OK  # bound to the account it reaches


@pytest.mark.slow
def test_a_refused_key_names_the_setting_to_fix_never_its_value(served: Served) -> None:
    served.write()
    assert served.invoke("sync").exit_code == EXIT_OK
    revoked = "xkeysib-" + "9" * 64 + "-revoked000001"
    served.write(brevo={"api_key": revoked})

    result = served.invoke("sync")

    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    assert "refused the credentials" in result.output
    assert "check `platforms.brevo.api_key`" in result.output
    assert revoked not in result.output
    assert "9" * 64 not in result.output
