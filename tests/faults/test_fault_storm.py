"""Syncs through the engine under injected faults reach exactly the fault-free state.

Each test plays one `Scenario` twice on fresh in-process emulators: once with faults (429,
5xx, timeouts, connections dropped before and after the platform acted, partial batch
failures) at `SEGSYNC_FAULT_RATE` (default 10%), once without, with the same seed. After
the faults stop and one more run, every platform must hold exactly what the fault-free world
holds, with no duplicate contact, no lost edit and no consent violation. `SEGSYNC_FAULT_SIZE`
sets the number of contacts (default 60).
"""

from __future__ import annotations

import asyncio
import functools

import pytest
from fault_world import ALL_KINDS, FAULT_RATE, SURVIVED, Outcome, Scenario, run_scenario

from segsync.model import CONSENT_OPT_OUTS, ConsentStatus

OPT_OUTS = {s.value for s in CONSENT_OPT_OUTS}


@functools.cache
def play(scenario: Scenario) -> Outcome:
    """The outcome of a scenario (cached: fault-free references are shared by tests)."""
    return asyncio.run(run_scenario(scenario))


def assert_converged(faulty: Outcome, reference: Outcome, label: str) -> None:
    """The faulty world ended exactly as the fault-free one, with the suite's invariants."""
    print(faulty.survived())
    SURVIVED.append(f"{label}: {faulty.survived()}")
    final = faulty.reports[-1]
    assert final.status == "ok", [e.model_dump() for e in final.errors[:5]]
    for platform, dump in faulty.dumps.items():
        assert dump.duplicates == (), f"{platform}: duplicate contacts {dump.duplicates}"
        expected = reference.dumps[platform].by_email()
        actual = dump.by_email()
        assert sorted(actual) == sorted(expected), f"{platform}: different people"
        differing = {e: (actual[e], expected[e]) for e in expected if actual[e] != expected[e]}
        assert differing == {}, f"{platform}: contacts differ from the fault-free run"
    for platform, names in faulty.objects.items():  # no tag, list or segment made twice
        assert sorted(set(names)) == names, f"{platform}: {names}"
        assert set(reference.objects[platform]) <= set(names), platform
    assert_no_lost_edit(faulty)
    assert_consent_floor(faulty)


def assert_no_lost_edit(outcome: Outcome) -> None:
    """Every edit made on one platform is on every platform at the end."""
    for edit in outcome.edits:
        for platform, dump in outcome.dumps.items():
            _email, fields, tags, consent = dump.by_email()[edit.email]
            where = f"edit {edit.change!r} from {edit.platform} seen on {platform}"
            for name, value in edit.change.fields.items():
                assert (name, str(value)) in fields, where
            assert edit.change.tags_add <= set(tags), where
            assert not (edit.change.tags_remove & set(tags)), where
            if edit.change.consent is not None:
                assert consent == edit.change.consent.value, where


def assert_consent_floor(outcome: Outcome) -> None:
    """An opt-out anywhere is an opt-out everywhere; nobody is subscribed who was not."""
    opted_out = {
        email
        for dump in outcome.dumps.values()
        for email, _f, _t, consent in dump.records
        if consent in OPT_OUTS
    }
    for platform, dump in outcome.dumps.items():
        for email, _f, _t, consent in dump.records:
            if email in opted_out:
                assert consent in OPT_OUTS, f"{email} opted out, but {consent} on {platform}"
            if consent == ConsentStatus.SUBSCRIBED.value:
                assert outcome.seeded_consent[email] == "subscribed", (
                    f"{email} made subscribed on {platform} without having opted in"
                )


def test_fault_free_scenario_is_a_meaningful_reference() -> None:
    """The reference world syncs cleanly, propagates every edit and honours consent."""
    reference = play(Scenario().fault_free())

    assert all(r.status == "ok" for r in reference.reports)
    assert len(reference.edits) >= 9
    assert sum(r.writes for r in reference.reports) > 0
    assert reference.reports[-1].writes == 0  # the run after the last faulty one had no faults
    assert_no_lost_edit(reference)
    assert_consent_floor(reference)
    counts = {p: len(d.records) for p, d in reference.dumps.items()}
    assert len(set(counts.values())) == 1, counts  # everyone everywhere


@pytest.mark.parametrize("seed", [7, 11])
@pytest.mark.slow
def test_fault_storm_converges_to_the_fault_free_state(seed: int) -> None:
    """All fault kinds at the configured rate: the last run converges exactly."""
    scenario = Scenario(seed=seed)
    faulty = play(scenario)
    reference = play(scenario.fault_free())

    assert sum(sum(c.values()) for c in faulty.injected.values()) > 0
    assert_converged(faulty, reference, f"storm seed {seed}")


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.slow
def test_each_fault_kind_alone_converges(kind: str) -> None:
    """One fault kind at a high rate (at least 2.5x the configured one): still converges."""
    scenario = Scenario(seed=7, kinds=(kind,), rate=max(0.25, FAULT_RATE * 2.5))
    faulty = play(scenario)
    reference = play(scenario.fault_free())

    assert sum(c[kind] for c in faulty.injected.values()) > 0, f"no {kind} was injected"
    assert_converged(faulty, reference, f"{kind} alone")
