"""Fixtures: `store` over the SQLite and PostgreSQL backends (tests/state/store_backends)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "state"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deletes"))

from store_backends import (
    postgres_schemas,
    pytest_generate_tests,
    store,
    store_factory,
    store_url,
)

__all__ = ["postgres_schemas", "pytest_generate_tests", "store", "store_factory", "store_url"]
