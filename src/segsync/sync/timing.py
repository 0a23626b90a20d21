"""Phase timing: where an engine run spends its time, for `bench/run.py --profile`.

The engine marks its phases with `lap(name)` (the run goes on in phase `name` until the
next lap, or `PhaseTimer.stop`) and `phase(name)` (a block); nothing is measured unless a
`PhaseTimer` is made current with `profiling(timer)` (a context variable, so a run without
one pays one lookup per mark). Phases nest: a phase's figures exclude the phases inside it,
so the figures add up to the time measured.

Phases: `check` (account gate, owned objects), `pull` (reading and staging every platform),
`engagement` (the engagement refresh), `staging` (loading snapshots for the merge and
staging its views), `reconcile`, `segments` (compiling, evaluating materialised memberships,
publications), `plan` (what the plan relies on), `recheck`, `apply` (the writes) and
`commit` (state store writes of what platforms confirmed).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

__all__ = ["PHASES", "PhaseTimer", "active", "lap", "phase", "profiling", "timed_commits"]

PHASES = ("check", "pull", "engagement", "staging", "reconcile", "segments", "plan",
          "recheck", "apply", "commit")
"""The phases in the order a run goes through them."""

_CURRENT: ContextVar[PhaseTimer | None] = ContextVar("segsync_phase_timer", default=None)

T = TypeVar("T")


class PhaseTimer:
    """Wall and CPU seconds per phase (exclusive of the phases nested inside it)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[list[float]] = []  # per open phase: [nested wall, nested cpu]
        self._lap: tuple[str, float, float, list[float]] | None = None

    def add(self, name: str, seconds: float, cpu: float = 0.0) -> None:
        """Add `seconds` of wall time and `cpu` seconds of CPU time to phase `name`."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu
        self.calls[name] = self.calls.get(name, 0) + 1

    @contextlib.contextmanager
    def measure(self, name: str) -> Iterator[None]:
        """Time the block as phase `name` (minus the phases measured inside it)."""
        nested = [0.0, 0.0]
        self._stack.append(nested)
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            self._stack.pop()
            self.add(name, wall - nested[0], cpu - nested[1])
            if self._stack:
                self._stack[-1][0] += wall
                self._stack[-1][1] += cpu

    def lap(self, name: str | None) -> None:
        """End the current lap (if any) and start phase `name` (None: none)."""
        if self._lap is not None:
            lapped, wall, cpu, nested = self._lap
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if self._stack and self._stack[-1] is nested:
                self._stack.pop()
            self._lap = None
            self.add(lapped, wall - nested[0], cpu - nested[1])
            if self._stack:
                self._stack[-1][0] += wall
                self._stack[-1][1] += cpu
        if name is not None:
            nested = [0.0, 0.0]
            self._stack.append(nested)
            self._lap = (name, time.perf_counter(), time.process_time(), nested)

    def stop(self) -> None:
        """End the current lap (call once a measured run returned)."""
        self.lap(None)

    def split(self, name: str, seconds: float, cpu: float) -> None:
        """Move `seconds` of wall time and `cpu` seconds of CPU time measured by the
        innermost open phase to phase `name` (work interleaved contact by contact)."""
        self.add(name, seconds, cpu)
        if self._stack:
            self._stack[-1][0] += seconds
            self._stack[-1][1] += cpu

    def total(self) -> float:
        """All the wall seconds measured."""
        return sum(self.seconds.values())

    def as_dict(self) -> dict[str, dict[str, float]]:
        """Per phase (in run order, then any other): seconds, cpu_seconds, share of the total."""
        total = self.total() or 1.0
        names = [p for p in PHASES if p in self.seconds]
        names += sorted(p for p in self.seconds if p not in PHASES)
        return {
            name: {
                "seconds": round(self.seconds[name], 3),
                "cpu_seconds": round(self.cpu[name], 3),
                "share": round(self.seconds[name] / total, 3),
            }
            for name in names
        }


def active() -> PhaseTimer | None:
    """The current timer (None: nothing is measured)."""
    return _CURRENT.get()


def lap(name: str) -> None:
    """The run goes on in phase `name` (a no-op without a current timer)."""
    timer = _CURRENT.get()
    if timer is not None:
        timer.lap(name)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Mark a block as phase `name` of the current timer (a no-op without one)."""
    timer = _CURRENT.get()
    if timer is None:
        yield
        return
    with timer.measure(name):
        yield


@contextlib.contextmanager
def profiling(timer: PhaseTimer) -> Iterator[PhaseTimer]:
    """Make `timer` current for the block (the engine's phases are measured into it)."""
    token = _CURRENT.set(timer)
    try:
        yield timer
    finally:
        timer.stop()
        _CURRENT.reset(token)


_COMMITS = frozenset({"commit_writes", "commit_members", "finish", "add_ledger"})


class _TimedCommits:
    """A state whose commit methods are measured as the `commit` phase."""

    def __init__(self, state: Any, timer: PhaseTimer) -> None:
        self._state = state
        self._timer = timer

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._state, name)
        if name not in _COMMITS or not callable(value):
            return value
        timer = self._timer

        def timed(*args: Any, **kwargs: Any) -> Any:
            with timer.measure("commit"):
                return value(*args, **kwargs)

        return timed


def timed_commits(state: T) -> T:
    """`state` itself, or (with a current timer) a view of it whose commits are timed."""
    timer = _CURRENT.get()
    if timer is None:
        return state
    return _TimedCommits(state, timer)  # type: ignore[return-value]
