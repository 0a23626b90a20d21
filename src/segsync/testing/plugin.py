"""The pytest plugin of the conformance kit (entry point `pytest11: segsync`).

It registers the `segsync_optout` marker, the `--segsync-seed` option (to rerun the
generated tests of every suite with other data) and `--segsync-account-fixture` and,
at collection, turns every test a
`ConnectorSuite` subclass lists in `skip` into `xfail(strict=True)` with the stated reason, so
the opt-out fails the run once the test starts passing.
"""

from __future__ import annotations

import pytest

OPTOUT_MARKER = "segsync_optout"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("segsync", "segsync conformance kit")
    group.addoption(
        "--segsync-seed",
        type=int,
        default=None,
        help="seed for the contacts and rules the conformance kit generates "
        "(default: each suite's `seed`)",
    )
    group.addoption(
        "--segsync-account-fixture",
        default=None,
        help="account fixture the kit's lived-in tests start from: a bundled name, a file, "
        "or 'empty' (default: each suite's `account_fixture`)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{OPTOUT_MARKER}(reason): a conformance test the connector opts out of, with the reason "
        "(run as a strict xfail)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    from segsync.testing.suite import ConnectorSuite

    for item in items:
        cls = getattr(item, "cls", None)
        if cls is None or not issubclass(cls, ConnectorSuite):
            continue
        name = getattr(item, "originalname", item.name)
        reason = cls.skip.get(name)
        if reason is None:
            continue
        item.add_marker(pytest.mark.segsync_optout(reason))
        item.add_marker(pytest.mark.xfail(reason=f"opted out: {reason}", strict=True))
