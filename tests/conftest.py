"""Shared pytest configuration of segsync's own tests (keep minimal: several suites share it)."""

pytest_plugins = ["pytester"]
