"""Two lived-in emulated accounts (Mailchimp, HubSpot), a segsync.yaml at them, and the CLI
run in-process on their transports (`invoke`).

Before segsync, each account holds the user's own people, tags and lists (the bundled
`lived-in` fixtures). HubSpot also holds people at addresses Mailchimp refuses as fake
(`@example.com`): every sync creating them there has per-record errors. `down` takes a
platform down (every request a connection error); `interrupt_next` makes the next run
receive SIGTERM as it starts applying. Its one segment, `nested`, falls back to
materialising on Mailchimp.
"""

from __future__ import annotations

import functools
import json
import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from segsync_hubspot import HubSpotEmulator
from segsync_mailchimp import MailchimpEmulator
from typer.testing import CliRunner

import segsync.cli.sync as cli_sync
from segsync.cli import app
from segsync.clock import VirtualClock
from segsync.sync import build
from segsync.sync.engine import Engine

REFUSED = [f"refused{i:02d}@example.com" for i in range(23)]
"""People HubSpot holds whom Mailchimp refuses ("looks fake or invalid")."""


class Switch(httpx.AsyncBaseTransport):
    """Passes requests to `inner`, or fails them all with a connection error when `down`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


class CliWorld:
    """The accounts, the configuration file, and the CLI on them."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch, *, keep_runs: int = 200) -> None:
        self.clock = VirtualClock()
        self.mc = MailchimpEmulator.from_fixture("lived-in", clock=self.clock)
        self.hs = HubSpotEmulator.from_fixture("lived-in", clock=self.clock)
        for index, email in enumerate(REFUSED):
            self.hs.seed_contact({"email": email, "firstname": f"Refused {index}"})
        self.switches = {"mailchimp": Switch(self.mc.transport()),
                         "hubspot": Switch(self.hs.transport())}
        self.interrupt_next = False
        local = "http://127.0.0.1:9"
        blocks = {
            "mailchimp": {"api_key": self.mc.api_key, "list_id": self.mc.default_list_id},
            "hubspot": {"token": self.hs.api_key, "subscription_id": 101},
        }
        lines = [f"state: sqlite:///{tmp / 'state.db'}", "schema:", "  first_name: text",
                 f"history: {{keep_runs: {keep_runs}}}", "platforms:"]
        emulators = {"mailchimp": self.mc, "hubspot": self.hs}
        lines += [f"  {n}: {json.dumps({**b, 'base_url': local + emulators[n].base_path})}"
                  for n, b in blocks.items()]
        # two levels of connectives: native on HubSpot, materialised on Mailchimp (a fallback)
        lines += ["segments:", "  nested:",
                  "    rule: '(first_name = \"Ana\" and first_name != \"Bo\") or "
                  "first_name = \"Cy\"'"]
        self.config = tmp / "segsync.yaml"
        self.config.write_text("\n".join(lines) + "\n")
        monkeypatch.setattr(cli_sync, "build_engine", self._engine)
        self.runner = CliRunner()

    def _engine(self, config: Any, **options: Any) -> Engine:
        self.clock.advance(600)
        engine = functools.partial(build.build_engine, transports=self.switches,
                                   clock=self.clock)(config, **options)
        if self.interrupt_next:
            self.interrupt_next = False
            engine.interrupt.set(signal.SIGTERM)
        return engine

    def invoke(self, *args: str) -> Any:
        """`segsync ARGS -c CONFIG`, in-process (stdout and stderr apart)."""
        return self.runner.invoke(app, [*args, "-c", str(self.config)])


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliWorld:
    return CliWorld(tmp_path, monkeypatch)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """The root logger as it was, after a command configured logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
