"""Makes `first_runs_world` (three lived-in accounts) importable, and gives `store_url` over
the SQLite and PostgreSQL backends (tests/state/store_backends)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "first_runs"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "state"))

from store_backends import (
    postgres_schemas,
    pytest_generate_tests,
    store,
    store_factory,
    store_url,
)

__all__ = ["postgres_schemas", "pytest_generate_tests", "store", "store_factory", "store_url"]
