"""`segsync.demo`: the demo world, its synthetic audience and the checks of its report."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from pathlib import Path

import pytest

from segsync.clock import VirtualClock
from segsync.config import load_config
from segsync.connector import RemoteContact
from segsync.demo import (
    DemoOptions,
    DemoReport,
    _emulators,
    consent_violations,
    demo_platforms,
    record_differences,
    render_report,
    run_demo,
    synthetic_audience,
    trusted,
    write_demo_config,
)
from segsync.model import Consent, ConsentStatus, normalize_email
from segsync.sync.snapshot import CanonicalView

CI_SIZE = 200


@functools.cache
def ci_report() -> DemoReport:
    """The demo at the size CI runs it (run once for the module)."""
    return asyncio.run(run_demo(DemoOptions(contacts=CI_SIZE, seed=7)))


def test_demo_platforms_are_the_emulators_with_a_demo_port() -> None:
    """The demo syncs every installed connector whose emulator declares a demo_port, in
    port order; one without (the template's) stays out."""
    assert demo_platforms() == ("mailchimp", "hubspot", "brevo")


def test_every_platform_holds_every_person_after_sync() -> None:
    """Each platform ends with one record per person, aligned with the canonical view."""
    report = ci_report()

    assert report.contacts == dict.fromkeys(demo_platforms(), CI_SIZE)
    assert report.aligned == dict.fromkeys(demo_platforms(), True)
    assert all(not o.mismatches for o in report.platforms.values())


def test_no_consent_violation_and_opt_outs_propagated() -> None:
    """No one who opted out is subscribed anywhere, and the opt-outs were written."""
    report = ci_report()

    assert report.consent_violations == 0
    planted = report.planted["unsubscribes"] + report.planted["bounces"]
    assert planted > 0
    assert report.opt_outs_propagated >= planted


def test_second_sync_writes_nothing() -> None:
    """The second sync finds the platforms aligned and writes nothing."""
    report = ci_report()

    assert report.second_sync_writes == 0
    assert "No changes" in report.second_plan_text


def test_the_seed_plants_what_a_real_audience_has() -> None:
    """Overlaps, conflicting edits, opt-outs, case variants and tag differences all occur."""
    report = ci_report()

    assert all(count > 0 for count in report.planted.values()), report.planted
    assert report.conflicts_settled > 0
    assert "newest change wins" in report.conflict_policy
    newest, by_priority = report.conflict_examples
    assert newest.endswith("(the newest record wins)")
    assert by_priority.endswith("(country by priority hubspot > mailchimp > brevo)")


def test_api_calls_and_time_are_reported() -> None:
    """API calls per platform and emulated time are counted; the first sync costs calls."""
    report = ci_report()

    assert set(report.api_calls) == set(demo_platforms())
    assert all(o.api_calls_first_sync > 0 for o in report.platforms.values())
    assert all(
        report.api_calls[name] == o.api_calls_first_sync + o.api_calls_second_sync
        for name, o in report.platforms.items()
    )
    assert report.emulated_seconds > 0
    assert report.wall_seconds > 0


def test_segments_take_native_split_and_materialised_paths() -> None:
    """The demo's segments exercise every publication path, each with its reason."""
    report = ci_report()
    published = {(s.segment, s.platform): s for s in report.segments}

    assert published["vip_france", "mailchimp"].published == "native"
    assert published["vip_france", "hubspot"].published == "native"
    assert published["vip_france", "brevo"].published == "materialised"
    assert published["newsletter_europe", "mailchimp"].published == "split"
    assert published["high_value", "mailchimp"].published == "materialised"
    assert published["high_value", "hubspot"].published == "native"
    assert published["recent_buyers", "hubspot"].published == "native"
    assert all(
        s.reasons for s in report.segments if s.published in ("split", "materialised")
    )


def test_every_segment_holds_the_members_the_evaluator_selects() -> None:
    """On every platform, each published segment holds exactly the evaluator's members."""
    report = ci_report()
    listed = [s for s in report.segments if s.members is not None]

    assert len(listed) == len(report.segments)
    assert [(s.segment, s.platform, s.members, s.expected_members) for s in listed
            if s.members != s.expected_members] == []
    assert all(s.expected_members > 0 for s in listed)
    assert report.segments_match


def test_text_report_states_the_checks() -> None:
    """The text report gives the counts and one line per check, failed or passed."""
    report = ci_report()
    text = render_report(report)

    assert "ok   every platform aligned" in text
    assert "ok   no consent violated" in text
    assert "ok   the second sync wrote nothing" in text
    assert f"{CI_SIZE} contacts, aligned: yes" in text
    assert "ok   every segment holds the right members" in text
    assert trusted(report)


def test_synthetic_audience_is_deterministic_per_seed() -> None:
    """The same seed gives the same audience; another seed another one."""
    a = synthetic_audience(300, 1, demo_platforms())
    b = synthetic_audience(300, 1, demo_platforms())
    c = synthetic_audience(300, 2, demo_platforms())

    assert a.creates == b.creates
    assert a.planted == b.planted
    assert a.creates != c.creates


def test_case_variants_differ_only_by_case() -> None:
    """A person seeded with capitals on one platform has the same key everywhere."""
    audience = synthetic_audience(500, 3, demo_platforms())
    variants = [p for p in audience.people if len(set(p.emails.values())) > 1]

    assert len(variants) == audience.planted["case_variants"] > 0
    assert all(
        {normalize_email(e) for e in p.emails.values()} == {p.key} for p in variants
    )


def test_seeded_opt_outs_are_known_to_the_check() -> None:
    """Every unsubscribe or bounce planted is in the set the consent check uses."""
    audience = synthetic_audience(500, 4, demo_platforms())
    opt_out_edits = {
        normalize_email(change.email)
        for round_ in audience.edits
        for changes in round_.values()
        for change in changes
        if change.consent in (ConsentStatus.UNSUBSCRIBED, ConsentStatus.BOUNCED)
    }

    assert opt_out_edits == audience.opted_out
    assert len(audience.opted_out) == (
        audience.planted["unsubscribes"] + audience.planted["bounces"]
    )


def _remote(email: str, status: ConsentStatus, **fields: object) -> RemoteContact:
    return RemoteContact(
        platform_id="1", email=email, fields=dict(fields), consent=Consent(status=status)
    )


def test_consent_violations_finds_a_subscribed_opt_out() -> None:
    """A record subscribed for a person who opted out is a violation; others are not."""
    held = {
        "a@x.test": _remote("a@x.test", ConsentStatus.SUBSCRIBED),
        "b@x.test": _remote("b@x.test", ConsentStatus.UNSUBSCRIBED),
        "c@x.test": _remote("c@x.test", ConsentStatus.SUBSCRIBED),
        "d@x.test": _remote("d@x.test", ConsentStatus.PENDING),
    }

    assert consent_violations(held, {"a@x.test", "b@x.test", "d@x.test"}) == ["a@x.test"]


def test_record_differences_reports_fields_tags_and_consent() -> None:
    """A record is aligned only when fields, synced tags and opt-out state all agree."""
    view = CanonicalView(email="a@x.test", fields={"country": "FR", "lifetime_value": 12.5},
                         tags=("vip", "segsync:owned"), consent=ConsentStatus.UNSUBSCRIBED)
    same = RemoteContact(platform_id="1", email="A@x.test",
                         fields={"country": "FR", "lifetime_value": 12.5000001},
                         tags=frozenset({"vip"}),
                         consent=Consent(status=ConsentStatus.BOUNCED))
    other = _remote("a@x.test", ConsentStatus.SUBSCRIBED, country="DE", lifetime_value=12.5)

    def synced(tag: str) -> bool:
        return not tag.startswith("segsync:")

    assert record_differences(view, same, ["country", "lifetime_value"], synced) == []
    found = record_differences(view, other, ["country", "lifetime_value"], synced)
    assert [d.split(":")[0] for d in found] == ["country", "tags", "consent"]


def test_demo_config_is_a_valid_segsync_yaml(tmp_path: Path) -> None:
    """The written segsync.yaml loads, points every platform at loopback, and names the state."""
    emulators = _emulators(demo_platforms(), VirtualClock(), seed=0)
    path = write_demo_config(tmp_path / "segsync.yaml", emulators, tmp_path / "state.db")

    config = load_config(path, env={})

    assert sorted(config.platforms) == sorted(demo_platforms())
    assert all(
        (p.base_url or "").startswith("http://127.0.0.1:") for p in config.platforms.values()
    )
    assert config.state_url == f"sqlite:///{tmp_path / 'state.db'}"
    assert set(config.segments) == {"vip_france", "newsletter_europe", "high_value",
                                    "recent_buyers", "actif"}


@pytest.mark.slow
def test_keep_leaves_the_config_and_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With --keep, the directory holds segsync.yaml and the state store afterwards; the
    demo makes its state directory private itself (no warning about its own directory)."""
    report = asyncio.run(run_demo(DemoOptions(contacts=20, seed=5, keep=tmp_path / "demo")))

    assert "open to other users" not in caplog.text

    assert report.workdir == str((tmp_path / "demo").resolve())
    assert (tmp_path / "demo" / "segsync.yaml").is_file()
    assert (tmp_path / "demo" / ".segsync" / "state.db").is_file()
    assert report.second_sync_writes == 0


def test_demo_start_is_fixed() -> None:
    """The emulated clock starts at a fixed time, so `within` segments are reproducible."""
    report = ci_report()

    assert report.first_sync["started_at"].startswith(
        (dt.datetime(2026, 11, 4, tzinfo=dt.UTC)).date().isoformat()
    )


def test_docs_index_links_every_page() -> None:
    """docs/index.md links every Markdown page under docs/, and the README links the index."""
    repo = Path(__file__).resolve().parents[1]
    docs = repo / "docs"
    index = (docs / "index.md").read_text(encoding="utf-8")
    pages = {p.relative_to(docs).as_posix() for p in docs.rglob("*.md")} - {"index.md"}

    assert sorted(p for p in pages if f"]({p})" not in index) == []
    assert "](docs/index.md)" in (repo / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_keep_twice_starts_afresh(tmp_path: Path) -> None:
    """A second demo in the same --keep directory does not inherit the first one's state."""
    keep = tmp_path / "demo"
    asyncio.run(run_demo(DemoOptions(contacts=15, seed=1, keep=keep)))

    report = asyncio.run(run_demo(DemoOptions(contacts=15, seed=2, keep=keep)))

    assert report.contacts == dict.fromkeys(demo_platforms(), 15)
    assert report.aligned == dict.fromkeys(demo_platforms(), True)
    assert report.second_sync_writes == 0
