"""The fault suite's helpers live in `fault_world.py`, beside this file."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
