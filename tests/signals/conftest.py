"""The signal tests reuse the fault suite's loopback world (`tests/faults`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "faults"))
