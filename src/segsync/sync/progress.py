"""Progress of a sync run: the events the engine emits, and two renderers of them.

The engine calls its `progress` observer (`ProgressObserver`, default `NO_PROGRESS`) with a
`ProgressEvent` at a few natural points: a pull starting, each page pulled per platform, a
platform's pull done, its apply starting (with the planned writes), each write batch and
membership batch confirmed, each publication, its apply done. Events are counts, never per
request: the renderers read API calls (`connector.stats.calls`) and rate-limit waits
(`connector.budget.waited_seconds`) from the connectors themselves when they show a line.

`RichProgress` draws one bar per platform per phase on a terminal; `PlainProgress` prints
plain lines, at most one per platform per `interval` seconds of the injected clock, plus a
final line per platform and phase. `progress_for` picks one for a console.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from segsync.clock import Clock, SystemClock

__all__ = [
    "NO_PROGRESS",
    "ApplyDone",
    "ApplyStarted",
    "MembersChanged",
    "PageRead",
    "PlainProgress",
    "ProgressEvent",
    "ProgressObserver",
    "Published",
    "PullDone",
    "PullStarted",
    "RichProgress",
    "WriteBatch",
    "progress_for",
]

Phase = Literal["pull", "apply"]


@dataclasses.dataclass(frozen=True)
class PullStarted:
    """The pull of these platforms begins."""

    platforms: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class PageRead:
    """A page of `contacts` records was read from `platform` and staged."""

    platform: str
    contacts: int


@dataclasses.dataclass(frozen=True)
class PullDone:
    """`platform`'s pull ended (`ok` False: it failed and sits this run out)."""

    platform: str
    ok: bool = True


@dataclasses.dataclass(frozen=True)
class ApplyStarted:
    """The apply on `platform` begins: `planned` contact writes, `memberships` changes."""

    platform: str
    planned: int
    memberships: int = 0


@dataclasses.dataclass(frozen=True)
class WriteBatch:
    """A write batch's verdicts were committed on `platform`."""

    platform: str
    created: int
    updated: int
    failed: int


@dataclasses.dataclass(frozen=True)
class MembersChanged:
    """A membership batch of a static segment was committed on `platform`."""

    platform: str
    added: int
    removed: int
    failed: int


@dataclasses.dataclass(frozen=True)
class Published:
    """A publication (create, publish or delete of an owned object) was done on `platform`."""

    platform: str
    kind: str
    name: str
    ok: bool


@dataclasses.dataclass(frozen=True)
class ApplyDone:
    """The apply on `platform` ended."""

    platform: str


ProgressEvent = (
    PullStarted | PageRead | PullDone | ApplyStarted | WriteBatch | MembersChanged | Published
    | ApplyDone
)


class ProgressObserver(Protocol):
    """Receives the engine's progress events (must be fast and must not raise)."""

    def __call__(self, event: ProgressEvent) -> None: ...


def _ignore(event: ProgressEvent) -> None:
    """The no-op observer."""


NO_PROGRESS: ProgressObserver = _ignore


class _Accounted(Protocol):
    """What a renderer reads from a connector: `stats.calls` and `budget.waited_seconds`."""

    @property
    def stats(self) -> Any: ...

    budget: Any


@dataclasses.dataclass
class _Tally:
    """One platform's counts in one phase, and the connector's calls/waits at its start."""

    calls_at_start: int = 0
    waited_at_start: float = 0.0
    contacts: int = 0
    planned: int = 0
    failed: int = 0
    members: int = 0
    members_planned: int = 0
    publications: int = 0
    done: bool = False
    final: tuple[int, float] | None = None  # calls and waits when the phase ended


class _Renderer:
    """The bookkeeping both renderers share: per (platform, phase) tallies."""

    def __init__(self, connectors: Mapping[str, _Accounted]) -> None:
        self.connectors = connectors
        self.tallies: dict[tuple[str, Phase], _Tally] = {}

    def calls_and_wait(self, platform: str, tally: _Tally) -> tuple[int, float]:
        """API calls and rate-limit wait seconds of `platform` in the phase (so far)."""
        if tally.final is not None:
            return tally.final
        connector = self.connectors.get(platform)
        if connector is None:
            return 0, 0.0
        try:
            calls = int(connector.stats.calls)
        except RuntimeError:  # the stats changed under a refresh from another thread
            calls = tally.calls_at_start
        waited = float(getattr(connector.budget, "waited_seconds", 0.0))
        return calls - tally.calls_at_start, waited - tally.waited_at_start

    def _start(self, platform: str, phase: Phase) -> _Tally:
        tally = _Tally()
        tally.calls_at_start, tally.waited_at_start = self.calls_and_wait(platform, tally)
        self.tallies[(platform, phase)] = tally
        return tally

    def _tally(self, platform: str, phase: Phase) -> _Tally:
        return self.tallies.get((platform, phase)) or self._start(platform, phase)

    def record(self, event: ProgressEvent) -> tuple[str, Phase] | None:
        """Update the tallies; the (platform, phase) the event is about (None: several)."""
        match event:
            case PullStarted(platforms=platforms):
                for platform in platforms:
                    self._start(platform, "pull")
                return None
            case PageRead(platform=platform, contacts=contacts):
                self._tally(platform, "pull").contacts += contacts
                return platform, "pull"
            case PullDone(platform=platform, ok=ok):
                tally = self._tally(platform, "pull")
                tally.done = True
                tally.failed += 0 if ok else 1
                tally.final = self.calls_and_wait(platform, tally)
                return platform, "pull"
            case ApplyStarted(platform=platform, planned=planned, memberships=memberships):
                tally = self._start(platform, "apply")
                tally.planned, tally.members_planned = planned, memberships
                return platform, "apply"
            case WriteBatch(platform=platform, created=created, updated=updated, failed=failed):
                tally = self._tally(platform, "apply")
                tally.contacts += created + updated
                tally.failed += failed
                return platform, "apply"
            case MembersChanged(platform=platform, added=added, removed=removed, failed=failed):
                tally = self._tally(platform, "apply")
                tally.members += added + removed + failed
                tally.failed += failed
                return platform, "apply"
            case Published(platform=platform):
                self._tally(platform, "apply").publications += 1
                return platform, "apply"
            case ApplyDone(platform=platform):
                tally = self._tally(platform, "apply")
                tally.done = True
                tally.final = self.calls_and_wait(platform, tally)
                return platform, "apply"
        return None  # pragma: no cover - every event is matched above


class PlainProgress(_Renderer):
    """Plain progress lines (for logs and pipes), throttled per platform and phase.

    A line is written for an event when `interval` seconds (on `clock.monotonic()`) passed
    since the platform's previous line in that phase; the end of a phase always writes its
    final line (a start prints nothing). For example `mailchimp: pulled 1000 contacts (4 calls)` and
    `hubspot: wrote 300/1200 contacts, 12 calls, waited 3.0 s for rate limits`.
    """

    def __init__(
        self,
        connectors: Mapping[str, _Accounted],
        write: Callable[[str], None],
        *,
        clock: Clock | None = None,
        interval: float = 1.0,
    ) -> None:
        super().__init__(connectors)
        self.write = write
        self.clock = clock or SystemClock()
        self.interval = interval
        self._last_line: dict[tuple[str, Phase], float] = {}

    def __call__(self, event: ProgressEvent) -> None:
        about = self.record(event)
        if about is None or isinstance(event, ApplyStarted):  # no counts yet: no line
            return
        tally = self.tallies[about]
        now = self.clock.monotonic()
        last = self._last_line.get(about)
        if tally.done or last is None or now - last >= self.interval:
            self._last_line[about] = now
            self.write(self.line(*about))

    def line(self, platform: str, phase: Phase) -> str:
        """The progress line of `platform` in `phase`."""
        tally = self.tallies[(platform, phase)]
        calls, waited = self.calls_and_wait(platform, tally)
        if phase == "pull":
            if tally.done and tally.failed:
                return f"{platform}: pull failed after {tally.contacts} contacts ({calls} calls)"
            text = f"{platform}: pulled {tally.contacts} contacts ({calls} calls"
            if waited > 0:
                text += f", waited {waited:.1f} s for rate limits"
            return text + (")" if not tally.done else ", done)")
        parts = [f"{platform}: wrote {tally.contacts}/{tally.planned} contacts"]
        if tally.members_planned:
            parts.append(f"{tally.members}/{tally.members_planned} memberships")
        if tally.publications:
            parts.append(f"{tally.publications} publications")
        if tally.failed:
            parts.append(f"{tally.failed} failed")
        parts.append(f"{calls} calls")
        if waited > 0:
            parts.append(f"waited {waited:.1f} s for rate limits")
        text = ", ".join(parts)
        return text + (" (done)" if tally.done else "")

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _CallsColumn(ProgressColumn):
    """API calls and rate-limit waits of the task's platform, read when the display refreshes."""

    def __init__(self, renderer: _Renderer) -> None:
        super().__init__()
        self.renderer = renderer

    def render(self, task: Task) -> Text:
        key = (task.fields.get("platform", ""), task.fields.get("phase", "pull"))
        tally = self.renderer.tallies.get(key)
        if tally is None:
            return Text("")
        calls, waited = self.renderer.calls_and_wait(key[0], tally)
        text = f"{calls} calls"
        if waited > 0:
            text += f", waited {waited:.1f} s"
        return Text(text, style="cyan" if waited <= 0 else "yellow")


class RichProgress(_Renderer):
    """A rich `Progress` with one task per platform per phase, for a terminal.

    Pull tasks count contacts read (no total: the platforms do not say in advance); apply
    tasks count contacts written of the planned total. A column shows each platform's API
    calls and rate-limit waits of the phase, read from its connector on each refresh.
    Use as a context manager (it starts and stops the live display).
    """

    def __init__(
        self, connectors: Mapping[str, _Accounted], console: Console, *, clock: Clock | None = None
    ) -> None:
        super().__init__(connectors)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            _CallsColumn(self),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            get_time=(clock or SystemClock()).monotonic,
        )
        self.tasks: dict[tuple[str, Phase], Any] = {}

    def __call__(self, event: ProgressEvent) -> None:
        about = self.record(event)
        keys: Sequence[tuple[str, Phase]] = (
            [(p, "pull") for p in event.platforms] if isinstance(event, PullStarted)
            else [about] if about is not None else []
        )
        for key in keys:
            self._show(key)

    def _show(self, key: tuple[str, Phase]) -> None:
        tally = self.tallies[key]
        platform, phase = key
        task = self.tasks.get(key)
        if task is None:
            label = f"{platform} {'pull' if phase == 'pull' else 'write'}"
            total = tally.planned if phase == "apply" else None
            task = self.progress.add_task(
                label, total=total, platform=platform, phase=phase, detail=""
            )
            self.tasks[key] = task
        detail = []
        if tally.members_planned:
            detail.append(f"members {tally.members}/{tally.members_planned}")
        if tally.publications:
            detail.append(f"{tally.publications} published")
        if tally.failed:
            detail.append(f"{tally.failed} failed")
        completed = tally.contacts
        total = tally.planned if phase == "apply" else (tally.contacts if tally.done else None)
        self.progress.update(task, completed=completed, total=total, detail=", ".join(detail))
        if tally.done:
            self.progress.refresh()

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()


def progress_for(
    connectors: Mapping[str, _Accounted],
    console: Console,
    *,
    clock: Clock | None = None,
    interval: float = 1.0,
) -> RichProgress | PlainProgress:
    """Bars on a terminal console, else plain lines printed on it (throttled on `clock`)."""
    if console.is_terminal:
        return RichProgress(connectors, console, clock=clock)

    def write(line: str) -> None:
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    return PlainProgress(connectors, write, clock=clock, interval=interval)
