"""Fixtures: `store` / `store_factory` parametrised over the SQLite and PostgreSQL backends."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "state"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "accounts"))

from store_backends import (
    postgres_schemas,
    pytest_generate_tests,
    store,
    store_factory,
    store_url,
)

__all__ = ["postgres_schemas", "pytest_generate_tests", "store", "store_factory", "store_url"]
