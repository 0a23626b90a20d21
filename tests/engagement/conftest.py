"""Fixtures: the state stores of tests/state (both backends) and the in-memory platform."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sync"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "state"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the world of test_emulators

from store_backends import (
    postgres_schemas,
    pytest_generate_tests,
    store,
    store_factory,
    store_url,
)

__all__ = ["postgres_schemas", "pytest_generate_tests", "store", "store_factory", "store_url"]
