"""Fixtures: `store` / `store_factory` parametrised over the SQLite and PostgreSQL backends;
`world`, the CLI on two lived-in emulated accounts (cli_world.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "state"))

from cli_world import restored_logging, world
from store_backends import (
    postgres_schemas,
    pytest_generate_tests,
    store,
    store_factory,
    store_url,
)

__all__ = [
    "postgres_schemas", "pytest_generate_tests", "restored_logging", "store", "store_factory",
    "store_url", "world",
]
