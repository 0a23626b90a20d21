"""Account fixtures: each emulator starts from a lived-in account described in a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from segsync_brevo.emulator import BrevoEmulator
from segsync_hubspot.emulator import HubSpotEmulator
from segsync_mailchimp.emulator import MailchimpEmulator
from typer.testing import CliRunner

from segsync.cli import app
from segsync.clock import VirtualClock
from segsync.emulator.base import Emulator
from segsync.emulator.fixture import FixtureError, Seedable

EMULATORS: dict[str, type[Any]] = {
    "mailchimp": MailchimpEmulator,
    "hubspot": HubSpotEmulator,
    "brevo": BrevoEmulator,
}


def bundled(platform: str) -> dict[str, Any]:
    cls = EMULATORS[platform]
    data: dict[str, Any] = yaml.safe_load(cls.bundled_fixture().read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("platform", sorted(EMULATORS))
def test_bundled_lived_in_fixture_is_package_data_and_loads(platform: str) -> None:
    """Each connector ships `fixtures/lived-in.yaml` inside its package; it validates."""
    cls = EMULATORS[platform]
    assert issubclass(cls, Seedable)
    resource = cls.bundled_fixture("lived-in")
    assert resource.is_file()
    assert f"segsync_{platform}" in str(resource)
    emulator = cls.from_fixture("lived-in", clock=VirtualClock())
    assert isinstance(emulator, Emulator)


def test_mailchimp_lived_in_fixture_holds_every_seeded_status_and_history() -> None:
    """The fixture expresses `seed_lived_in` (same people, same statuses) and adds archived
    members, user merge fields, empty tags and a saved segment, with their times."""
    clock = VirtualClock()
    seeded = MailchimpEmulator(clock=clock)
    people = seeded.seed_lived_in()
    emulator = MailchimpEmulator.from_fixture("lived-in", clock=clock)
    lst = emulator.lists[emulator.default_list_id]
    for email, status in people.items():
        member = emulator.get_member(email)
        assert member is not None, email
        assert member.status == status, email
        assert emulator.get_member_tags(email) >= seeded.get_member_tags(email), email
        assert member.compliance_blocked == (status in ("unsubscribed", "cleaned")), email
    fay = emulator.get_member("fay.archived@lived.dev")
    assert fay is not None
    assert fay.status == "archived"
    ada = emulator.get_member("ada.subscribed@lived.dev")
    assert ada is not None
    assert (clock.now() - ada.created).days == 900
    assert (clock.now() - ada.last_changed).days == 30
    assert ada.merge_fields["PLAN"] == "pro"
    assert ada.ip_opt == "198.51.100.20"
    assert {"COMPANY", "PLAN"} <= set(lst.merge_fields)
    assert lst.merge_fields["PLAN"].options["choices"] == ["free", "pro", "enterprise"]
    static = {s.name: s for s in lst.segments.values() if s.type == "static"}
    assert "Do not email" in static
    assert not static["Do not email"].members
    saved = [s for s in lst.segments.values() if s.type == "saved"]
    assert [emulator.get_segment_matches(lst.id, s.id) for s in saved] == [
        {"ada.subscribed@lived.dev"}
    ]


def test_hubspot_lived_in_fixture_holds_every_seeded_status() -> None:
    """Same people and statuses as `seed_lived_in`, plus user properties, a list and an
    archived contact; `hs_email_optout` and per-type statuses as HubSpot shows them."""
    clock = VirtualClock()
    seeded = HubSpotEmulator(clock=clock)
    people = seeded.seed_lived_in()
    emulator = HubSpotEmulator.from_fixture("lived-in", clock=clock)
    for email in people:
        for sub_id in (99, 101, 104):
            assert emulator.subscription_status(email, sub_id) == seeded.subscription_status(
                email, sub_id
            ), (email, sub_id)
        props = emulator.contact_by_email(email)
        assert props is not None
        for name in ("hs_email_optout", "hs_email_bad_address"):
            assert props.get(name) == (seeded.contact_by_email(email) or {}).get(name), email
    cara = emulator.contact_by_email("cara.customer@lived.dev")
    assert cara is not None
    assert cara["plan"] == "free"
    assert cara["account_manager"] == "Rita"
    assert cara["lastmodifieddate"] == "2025-12-27T00:00:00.000Z"  # 5 days before 2026-01-01
    assert emulator.contact_by_email("otto.archived@lived.dev") is None  # archived
    assert any(r.archived for r in emulator.contacts.values())
    assert "plan" in emulator.properties
    assert 104 in emulator.subscriptions
    (trade_show,) = [lst for lst in emulator.lists.values() if lst.name == "Trade show 2024"]
    assert len(trade_show.members) == 2


def test_brevo_lived_in_fixture_holds_lists_blocklist_and_list_unsubscribes() -> None:
    clock = VirtualClock()
    emulator = BrevoEmulator.from_fixture("lived-in", clock=clock)
    lists = {meta["name"]: lid for lid, meta in emulator.lists.items()}
    ola = emulator.contact("ola.listunsub@lived.dev")
    noe = emulator.contact("noe.blocked@lived.dev")
    max_ = emulator.contact("max.customer@lived.dev")
    assert ola is not None
    assert noe is not None
    assert max_ is not None
    assert ola.list_unsubscribed == {lists["Newsletter"]}
    assert ola.list_ids == {lists["Customers"]}
    assert noe.email_blacklisted
    assert max_.attributes == {"FIRSTNAME": "Max", "COMPANY": "Maxwell", "PLAN": 2, "SCORE": 7.5}
    assert (clock.now() - noe.modified_at).days == 90
    assert emulator.folders[emulator.lists[lists["Newsletter"]]["folderId"]] == "Marketing"


@pytest.mark.parametrize(
    ("platform", "data", "places"),
    [
        (
            "mailchimp",
            {"audiences": [{"members": [{"email": "a@lived.dev", "status": "subscribd"}]}]},
            ["audiences[0].members[0].status"],
        ),
        (
            "mailchimp",
            {"audiences": [{"members": [{"email": "a@lived.dev", "status": "subscribed",
                                         "merge_fields": {"NOPE": "x"}}]}]},
            ["audiences[0].members[0].merge_fields: no merge field NOPE"],
        ),
        ("mailchimp", {"audiences": [], "extra": 1}, ["audiences", "extra"]),
        (
            "hubspot",
            {"contacts": [{"email": "a@lived.dev", "subscriptions": {"777": "SUBSCRIBED"}}]},
            ["contacts[0].subscriptions.777: no such subscription type"],
        ),
        (
            "hubspot",
            {"contacts": [{"email": "a@lived.dev", "created": "tomorrow"}]},
            ["contacts[0].created"],
        ),
        (
            "brevo",
            {"contacts": [{"email": "a@lived.dev", "lists": ["Nope"],
                           "attributes": {"FIRSTNAME": 3}}]},
            ["contacts[0].lists: no list 'Nope'", "contacts[0].attributes.FIRSTNAME"],
        ),
        (
            "brevo",
            {"contacts": [{"email": "a@lived.dev", "created": "2999-01-01T00:00:00+00:00"}]},
            ["contacts[0].created: 2999-01-01T00:00:00+00:00 is after the emulator's now"],
        ),
    ],
)
def test_a_bad_fixture_is_refused_with_every_place(
    platform: str, data: dict[str, Any], places: list[str]
) -> None:
    emulator = EMULATORS[platform](clock=VirtualClock())
    with pytest.raises(FixtureError) as caught:
        emulator.load_fixture(data, source="bad.yaml")
    assert caught.value.source == "bad.yaml"
    text = str(caught.value)
    assert text.startswith("fixture bad.yaml is invalid")
    for place in places:
        assert place in text


def test_a_json_fixture_file_loads_like_yaml(tmp_path: Path) -> None:
    path = tmp_path / "account.json"
    path.write_text(json.dumps(bundled("brevo")), encoding="utf-8")
    emulator = BrevoEmulator.from_fixture(path, clock=VirtualClock())
    assert emulator.contact("quin.nolists@lived.dev") is not None


def test_an_unparsable_fixture_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "account.yaml"
    path.write_text("contacts:\n  - email: a@b.dev\n   bad: [\n", encoding="utf-8")
    with pytest.raises(FixtureError, match=r"line \d+"):
        BrevoEmulator.from_fixture(path, clock=VirtualClock())


class _Served(Exception):
    pass


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> list[Emulator]:
    """`Emulator.serve` records the emulator and prints the banner instead of listening."""
    served: list[Emulator] = []

    def serve(self: Emulator, *, host: str, port: int, on_ready: Any) -> None:
        served.append(self)
        on_ready(f"http://{host}:{port}{self.base_path}")

    monkeypatch.setattr(Emulator, "serve", serve)
    return served


def test_emulate_seed_lived_in_serves_the_bundled_account(no_serving: list[Emulator]) -> None:
    result = CliRunner().invoke(app, ["emulate", "mailchimp", "--seed", "lived-in"])
    assert result.exit_code == 0, result.output
    assert "seeded:   lived-in" in result.output
    (emulator,) = no_serving
    assert isinstance(emulator, MailchimpEmulator)
    member = emulator.get_member("dee.unsubscribed@lived.dev")
    assert member is not None
    assert member.status == "unsubscribed"


def test_emulate_seed_file_and_integer_seed(tmp_path: Path, no_serving: list[Emulator]) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        yaml.safe_dump({"contacts": [{"email": "mine@lived.dev", "hard_bounced": True}]}),
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["emulate", "hubspot", "--seed", str(path)])
    assert result.exit_code == 0, result.output
    assert isinstance(no_serving[0], HubSpotEmulator)
    assert (no_serving[0].contact_by_email("mine@lived.dev") or {})["hs_email_bad_address"]
    result = CliRunner().invoke(app, ["emulate", "hubspot", "--seed", "7"])
    assert result.exit_code == 0, result.output
    fresh = no_serving[1]
    assert isinstance(fresh, HubSpotEmulator)
    assert fresh.contacts == {}


def test_emulate_bad_seed_exits_2_with_the_place(
    tmp_path: Path, no_serving: list[Emulator]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"contacts": [{"email": "x@lived.dev", "lists": ["Gone"]}]}))
    result = CliRunner().invoke(app, ["emulate", "brevo", "--seed", str(path)])
    assert result.exit_code == 2
    assert "contacts[0].lists: no list 'Gone'" in result.output
    assert no_serving == []
    result = CliRunner().invoke(app, ["emulate", "brevo", "--seed", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2
    assert "cannot read" in result.output
