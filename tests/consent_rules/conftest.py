"""Makes `lived_in` (tests/consent: the lived-in accounts and their foreign actors)
importable by the tests here."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "consent"))
