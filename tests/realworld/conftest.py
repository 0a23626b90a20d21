"""Makes `lived_in` (tests/consent) and `realworld` importable by the tests here."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "consent"))
sys.path.insert(0, str(HERE))
