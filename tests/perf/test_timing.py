"""Phase timing (`segsync.sync.timing`): nested phases and laps add up to the time measured,
nothing is measured without a current timer, and a profiled run plans what an unprofiled
one plans."""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from segsync.sync.timing import PhaseTimer, active, lap, phase, profiling, timed_commits

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_nested_phases_are_exclusive_and_add_up() -> None:
    timer = PhaseTimer()
    started = time.perf_counter()
    with profiling(timer):
        lap("pull")
        _busy(0.02)
        with phase("staging"):
            _busy(0.02)
        lap("reconcile")
        _busy(0.01)
        timer.split("segments", 0.004, 0.004)
    elapsed = time.perf_counter() - started
    figures = timer.as_dict()
    assert list(figures) == ["pull", "staging", "reconcile", "segments"]
    assert figures["staging"]["seconds"] >= 0.019
    assert figures["pull"]["seconds"] >= 0.019
    assert figures["segments"]["seconds"] == 0.004
    assert figures["reconcile"]["seconds"] >= 0.005
    # each phase without those inside it: the phases add up to no more than the time spent
    assert timer.total() <= elapsed
    assert abs(sum(f["share"] for f in figures.values()) - 1.0) < 0.01
    assert active() is None  # the timer is current only inside `profiling`


def test_without_a_timer_nothing_is_measured_and_the_state_is_itself() -> None:
    state = object()
    lap("pull")
    with phase("staging"):
        pass
    assert active() is None
    assert timed_commits(state) is state


class _State:
    def __init__(self) -> None:
        self.finished = 0

    def finish(self) -> str:
        self.finished += 1
        return "done"

    def owed(self) -> list[str]:
        return []


def test_commits_are_timed_through_a_view_of_the_state() -> None:
    state, timer = _State(), PhaseTimer()
    with profiling(timer):
        view = timed_commits(state)
        assert view is not state
        assert view.finish() == "done"
        assert view.owed() == []
    assert state.finished == 1
    assert timer.calls == {"commit": 1}


def _engine_pass() -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("engine_pass")
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.slow
def test_a_profiled_pass_plans_applies_and_resyncs_as_an_unprofiled_one(tmp_path: Path) -> None:
    """The bench's engine pass (a first plan, its apply, an unchanged re-sync) gives the
    same counts with and without a timer, and the profile names each pass's phases."""
    engine_pass = _engine_pass()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = asyncio.run(engine_pass.engine_pass(100, tmp_path / "a", resync=True))
    profiled = asyncio.run(engine_pass.engine_pass(100, tmp_path / "b", resync=True,
                                                   profile=True))
    assert profiled["platforms"] == plain["platforms"]
    assert profiled["resync"]["platforms"] == plain["resync"]["platforms"]
    assert profiled["apply"]["records_written"] == plain["apply"]["records_written"] > 0
    assert plain["resync"]["writes"] == 0
    assert all(p["unchanged"] == 100 for p in plain["resync"]["platforms"].values())
    assert "profile" not in plain
    phases = profiled["profile"]
    assert {"check", "pull", "staging", "reconcile", "plan"} <= set(phases["plan"])
    assert {"recheck", "apply", "commit"} <= set(phases["apply"])
