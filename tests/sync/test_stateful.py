"""A hypothesis state machine over three in-memory platforms and a real state store.

Random edits, tag changes, unsubscribes, bounces, re-subscriptions, email changes, creations
and deletes on random platforms, interleaved with sync runs. After every run:

- platforms agree on every synced field and tag, for every contact live on them;
- a second run writes nothing;
- a change made on one platform only (no other platform touched the same field or tag of the
  same contact) reached every platform;
- an opt-out reached every platform, and no platform holds `subscribed` for a contact whose
  canonical consent is an opt-out;
- no run reported an error (no duplicate creation, no refused write).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule
from memory_platform import MemoryConnector, MemoryPlatform

from segsync.clock import VirtualClock
from segsync.model import normalize_email
from segsync.state import StateStore
from segsync.sync import Engine, SyncPolicy
from segsync.sync.snapshot import CanonicalView

PLATFORMS = ("mc", "hs", "bv")
EMAILS = ("ann@x.com", "bob@x.com", "carl@y.org", "dora@y.org", "eve@z.net", "fred@z.net")
TAGS = ("vip", "fr", "beta")
COUNTRIES = ("FR", "BE", "NL", None)
OPT_OUTS = {"unsubscribed", "bounced"}

STEPS = int(os.environ.get("SEGSYNC_STATEFUL_STEPS", "40"))
STEPS_RUN = [0]  # rule executions, all examples together
EXAMPLES = int(os.environ.get("SEGSYNC_STATEFUL_EXAMPLES", "12"))

platform_names = st.sampled_from(PLATFORMS)
emails = st.sampled_from(EMAILS)


def make_machine(store_factory: Callable[[], StateStore]) -> type[RuleBasedStateMachine]:
    examples = itertools.count()

    class SyncMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.clock = VirtualClock()
            self.platforms = {n: MemoryPlatform(n, self.clock, page_size=3) for n in PLATFORMS}
            connectors = {n: MemoryConnector(p) for n, p in self.platforms.items()}
            self.store = store_factory()
            self.config = f"machine-{next(examples)}"  # one namespace per example
            self.engine = Engine(
                connectors,
                self.store,
                config=self.config,
                policy=SyncPolicy(platforms=PLATFORMS, reconfirm=frozenset({"mc"})),
                clock=self.clock,
                chunk_size=4,
            )
            # expectations since the last run: (email, what) -> (platform, value) or None
            # when a second platform touched it (a conflict: either side may win)
            self.expected: dict[tuple[str, str], tuple[str, Any] | None] = {}
            self.opted_out: dict[str, set[str]] = {}
            # emails where two sides met since the last run (either may win), and emails a
            # contact was renamed to (a record created there too would be a duplicate)
            self.contested: set[str] = set()
            self.renamed_to: set[str] = set()
            self.renamed: set[str] = set()  # old and new emails of renames since the last run
            self.runs = 0

        def teardown(self) -> None:
            self.store.close()

        # -- helpers ----------------------------------------------------------------------

        def _expect(self, email: str, what: str, platform: str, value: Any) -> None:
            if normalize_email(email) in self.contested:
                return
            key = (normalize_email(email), what)
            previous = self.expected.get(key, (platform, value))
            self.expected[key] = (platform, value) if previous and previous[0] == platform else None

        def _forget(self, email: str) -> None:
            key = normalize_email(email)
            self.contested.add(key)
            for k in list(self.expected):
                if k[0] == key:
                    self.expected[k] = None
            self.opted_out.pop(key, None)

        def _record(self, platform: str, email: str) -> Any:
            return self.platforms[platform].find(email)

        def _live_anywhere(self, email: str) -> bool:
            return any(p.find(email) is not None for p in self.platforms.values())

        # -- what people do on the platforms ----------------------------------------------

        @rule(
            platform=platform_names,
            email=emails,
            upper=st.booleans(),
            country=st.sampled_from(COUNTRIES),
            tags=st.sets(st.sampled_from(TAGS), max_size=2),
            consent=st.sampled_from(["subscribed", "non_subscribed", "unsubscribed"]),
        )
        def add(self, platform: str, email: str, upper: bool, country: str | None,
                tags: set[str], consent: str) -> None:
            STEPS_RUN[0] += 1
            if self._record(platform, email) is not None or email in self.renamed_to:
                return
            if self._live_anywhere(email):
                self._forget(email)  # two sides meet: the conflict policy decides
            fields = {"country": country} if country else {}
            record = self.platforms[platform].add(
                email.upper() if upper else email, fields, sorted(tags), consent
            )
            if not self._live_anywhere_other(platform, email):
                for tag in tags:
                    self._expect(record.email, f"t:{tag}", platform, True)
            if consent in OPT_OUTS:
                self.opted_out.setdefault(normalize_email(email), set()).add(platform)

        def _live_anywhere_other(self, platform: str, email: str) -> bool:
            return any(
                p.find(email) is not None for n, p in self.platforms.items() if n != platform
            )

        @rule(platform=platform_names, email=emails, country=st.sampled_from(COUNTRIES))
        def edit(self, platform: str, email: str, country: str | None) -> None:
            STEPS_RUN[0] += 1
            record = self._record(platform, email)
            if record is None or record.fields.get("country") == country:
                return
            self.platforms[platform].edit(record.id, country=country)
            self._expect(record.email, "f:country", platform, country)

        @rule(platform=platform_names, email=emails, tag=st.sampled_from(TAGS), on=st.booleans())
        def tag(self, platform: str, email: str, tag: str, on: bool) -> None:
            STEPS_RUN[0] += 1
            record = self._record(platform, email)
            if record is None or (tag in record.tags) == on:
                return
            self.platforms[platform].tag(record.id, add=[tag] if on else [],
                                         remove=[] if on else [tag])
            self._expect(record.email, f"t:{tag}", platform, on)

        @rule(platform=platform_names, email=emails,
              status=st.sampled_from(["unsubscribed", "bounced", "subscribed"]))
        def consent(self, platform: str, email: str, status: str) -> None:
            STEPS_RUN[0] += 1
            record = self._record(platform, email)
            if record is None or record.consent == status:
                return
            self.platforms[platform].set_consent(record.id, status)
            outs = self.opted_out.setdefault(normalize_email(email), set())
            if status in OPT_OUTS:
                outs.add(platform)
            else:
                outs.discard(platform)

        @rule(platform=platform_names, email=emails, new=emails)
        def rename(self, platform: str, email: str, new: str) -> None:
            STEPS_RUN[0] += 1
            record = self._record(platform, email)
            if record is None or self._live_anywhere(new):
                return
            self._forget(email)
            self._forget(new)
            self.renamed_to.add(new)
            self.renamed.update({normalize_email(email), normalize_email(new)})
            self.platforms[platform].rename(record.id, new)

        @rule(platform=platform_names, email=emails)
        def delete(self, platform: str, email: str) -> None:
            STEPS_RUN[0] += 1
            record = self._record(platform, email)
            if record is None:
                return
            self._forget(email)
            self.platforms[platform].delete(record.id)

        # -- sync runs ----------------------------------------------------------------------

        @rule()
        def sync(self) -> None:
            STEPS_RUN[0] += 1
            report = asyncio.run(self.engine.sync())
            self.runs += 1
            assert report.errors == [], report.errors
            self.check_agreement()
            self.check_changes_kept()
            self.check_consent_floor()
            self.expected.clear()
            self.opted_out.clear()
            self.contested.clear()
            self.renamed_to.clear()
            self.renamed.clear()
            before = [len(p.writes) for p in self.platforms.values()]
            again = asyncio.run(self.engine.sync())
            assert again.writes == 0, again.model_dump()
            assert again.errors == []
            assert [len(p.writes) for p in self.platforms.values()] == before

        def check_agreement(self) -> None:
            by_email: dict[str, list[tuple[str, Any]]] = {}
            for name, platform in self.platforms.items():
                for record in platform.live():
                    by_email.setdefault(normalize_email(record.email), []).append((name, record))
            for email, records in by_email.items():
                names = [n for n, _ in records]
                assert len(names) == len(set(names)), f"{email}: duplicate on one platform"
                first = records[0][1]
                for name, record in records[1:]:
                    assert record.fields == first.fields, (email, name, records)
                    assert record.tags == first.tags, (email, name, records)

        def check_changes_kept(self) -> None:
            for (email, what), expectation in self.expected.items():
                if expectation is None:
                    continue
                _platform, value = expectation
                for name, platform in self.platforms.items():
                    record = platform.find(email)
                    if record is None:
                        continue
                    if what.startswith("f:"):
                        assert record.fields.get(what[2:]) == value, (email, what, name)
                    else:
                        assert (what[2:] in record.tags) == value, (email, what, name)

        def check_consent_floor(self) -> None:
            for email, where in self.opted_out.items():
                if not where or email in self.renamed:  # whose email it is changes this run
                    continue
                for name, platform in self.platforms.items():
                    record = platform.find(email)
                    if record is not None:
                        assert record.consent in OPT_OUTS, (email, name, record.consent)
            for _cid, stored, _dirty in self.store.canonical_contacts(self.config):
                view = CanonicalView.decode(stored)
                if view.consent in OPT_OUTS:
                    for name, platform in self.platforms.items():
                        record = platform.find(view.email)
                        if record is not None:
                            assert record.consent != "subscribed", (view, name)

    return SyncMachine


@pytest.mark.timeout(120)
@pytest.mark.slow
def test_sync_state_machine(store_factory: Callable[[], StateStore]) -> None:
    """Random platform activity interleaved with runs keeps every sync invariant."""
    machine = make_machine(store_factory)
    machine.TestCase.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    STEPS_RUN[0] = 0
    machine.TestCase().runTest()

    print(f"stateful: {STEPS_RUN[0]} steps")
    assert STEPS_RUN[0] >= min(200, EXAMPLES * STEPS // 2), STEPS_RUN[0]  # hundreds of steps
