"""Fixtures: `store` / `store_factory` over the SQLite and PostgreSQL backends, and the
in-memory platform of tests/sync."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sync"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "state"))

from store_backends import (
    postgres_schemas,
    pytest_generate_tests,
    store,
    store_factory,
    store_url,
)

__all__ = ["postgres_schemas", "pytest_generate_tests", "store", "store_factory", "store_url"]
