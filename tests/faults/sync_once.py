"""`python sync_once.py CONFIG`: one sync of CONFIG through the library, as a process.

The stand-in for `segsync sync -c CONFIG` while the CLI has no `sync` command: it loads the
configuration, builds the engine the way `segsync.demo` does (connectors over HTTP to the
configured base URLs, the configured state store) and runs one sync. Exit 0 when the run
is clean, 1 when it reported record errors.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from segsync.clock import SystemClock
from segsync.config import load_config
from segsync.demo import connectors_from_config, engine_from_config


async def main(path: Path) -> int:
    config = load_config(path)
    clock = SystemClock()
    connectors = connectors_from_config(config, transports={}, clock=clock)  # type: ignore[arg-type]
    engine = engine_from_config(config, connectors, clock)  # type: ignore[arg-type]
    try:
        report = await engine.sync()
    finally:
        for connector in connectors.values():
            await connector.aclose()
    print(report.model_dump_json())
    return 0 if report.status == "ok" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]))))
