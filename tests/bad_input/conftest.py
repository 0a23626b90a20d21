"""The catalogue's helpers: `answers.py` here, and the fault suite's `fault_world.py`."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "faults"))
sys.path.insert(0, str(HERE))
