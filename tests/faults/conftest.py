"""The fault suite's helpers live in `fault_world.py` and `loopback_world.py`, beside this
file; what the tests survived is printed at the end of the run."""

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the faults each test survived (FaultPlan.injected) and the processes killed."""
    from fault_world import SURVIVED

    if SURVIVED:
        terminalreporter.section("faults survived")
        for line in SURVIVED:
            terminalreporter.write_line(line)
