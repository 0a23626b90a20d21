"""`segsync demo` and `segments explain --email`: the segment `actif` selects people emailed
from any one platform or several, the same on every platform (issue #15)."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segsync.cli import app
from segsync.cli.core import explain_person
from segsync.config import load_config
from segsync.demo import DEMO_START, DemoOptions, run_demo, trusted
from segsync.state import open_store
from segsync.sync.build import config_name
from segsync.sync.snapshot import CanonicalView


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("demo")
    report = asyncio.run(run_demo(DemoOptions(contacts=200, seed=7, keep=workdir)))
    assert trusted(report)
    assert report.planted["emailed_from_one_platform"] > 0
    assert report.planted["emailed_from_several_platforms"] > 0
    actif = {s.platform: s for s in report.segments if s.segment == "actif"}
    assert set(actif) == set(report.platforms)
    assert not any(s.published in ("native", "split") for s in actif.values())
    assert all(s.members == s.expected_members for s in actif.values())
    return workdir


def test_actif_holds_people_emailed_from_each_platform_alone_and_from_several(
    demo: Path,
) -> None:
    config = load_config(demo / "segsync.yaml", env={})
    now = DEMO_START + dt.timedelta(days=2, hours=1, minutes=5)  # the demo's emulated time
    deciders: collections.Counter[tuple[str, ...]] = collections.Counter()
    with open_store(config.state_url) as store:
        for _cid, payload, _ in store.canonical_contacts(config_name(config.platforms)):
            email = CanonicalView.decode(payload).email
            person = explain_person(config, "actif", email, now=now, store=store)
            if person["member"]:
                rate = person["conditions"][0]
                assert rate["condition"] == "open_rate > 0.5"
                assert rate["holds"]
                deciders[tuple(rate["decided_by"])] += 1
    singles = {who[0] for who in deciders if len(who) == 1}
    assert singles == set(config.platforms)
    assert any(len(who) > 1 for who in deciders)


def test_explain_email_says_where_the_materialised_copy_holds_the_person(demo: Path) -> None:
    """A member by the rule is held in segsync's materialised copy on every platform whose
    consent rules allow it: on Brevo (lists hold consented people only) a member who is not
    subscribed is not held; a non-member is held nowhere."""
    config = load_config(demo / "segsync.yaml", env={})
    now = DEMO_START + dt.timedelta(days=2, hours=1, minutes=5)
    seen: collections.Counter[str] = collections.Counter()
    with open_store(config.state_url) as store:
        for _cid, payload, _ in store.canonical_contacts(config_name(config.platforms)):
            view = CanonicalView.decode(payload)
            person = explain_person(config, "actif", view.email, now=now, store=store)
            held = set(person["materialised_on"])
            if not person["member"]:
                assert held == set(), person
                continue
            if view.consent == "subscribed":
                assert held == set(config.platforms), person
                seen["subscribed"] += 1
            else:
                assert "brevo" not in held, person
                assert held == set(config.platforms) - {"brevo"}, person
                seen["not subscribed"] += 1
    assert seen["subscribed"], seen
    assert seen["not subscribed"], seen


def test_explain_email_shows_whose_facts_decided(demo: Path) -> None:
    config = load_config(demo / "segsync.yaml", env={})
    with open_store(config.state_url) as store:
        emails = [CanonicalView.decode(p).email
                  for _c, p, _d in store.canonical_contacts(config_name(config.platforms))]
    runner = CliRunner()
    found = []
    for email in emails[:40]:
        result = runner.invoke(app, ["segments", "explain", "actif", "--email", email,
                                     "--json", "-c", str(demo / "segsync.yaml")])
        assert result.exit_code == 0, result.output
        found.append(json.loads(result.output))
    assert all(p["known"] for p in found)
    assert {c["condition"] for p in found for c in p["conditions"]} == {
        "open_rate > 0.5", "last_interaction within 7 days"}
    assert any(c["decided_by"] for p in found for c in p["conditions"])

    text = runner.invoke(app, ["segments", "explain", "actif", "--email", emails[0],
                               "-c", str(demo / "segsync.yaml")])
    assert text.exit_code == 0
    assert "open_rate > 0.5" in text.output
    assert "from " in text.output

    unknown = runner.invoke(app, ["segments", "explain", "actif", "--email",
                                  "nobody@example.org", "-c", str(demo / "segsync.yaml")])
    assert "not in the state" in unknown.output
