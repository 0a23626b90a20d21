"""tests/identity: the emulated world of swaps (`swap_world`), the in-memory platform of
tests/sync (`memory_platform`), and `store` over the SQLite and PostgreSQL backends."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
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
