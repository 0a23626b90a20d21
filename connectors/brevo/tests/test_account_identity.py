"""`BrevoConnector.account_identity`: one `GET /account`, the organization id where Brevo
answers one, else the login; the emulator's account is swappable."""

from __future__ import annotations

import asyncio

from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator


def identity(emulator: BrevoEmulator) -> tuple[str, str, int]:
    connector = BrevoConnector({"api_key": emulator.api_key}, transport=emulator.transport())
    found = asyncio.run(connector.account_identity())
    return found.id, found.label, connector.stats.calls


def test_the_identity_is_the_organization_and_costs_one_call() -> None:
    emulator = BrevoEmulator(owner_email="ops@customer.test")
    emulator.company_name = "Customer Ltd"

    account, label, calls = identity(emulator)

    assert account == f"org:{emulator.organization_id}"
    assert label == "Customer Ltd (login ops@customer.test)"
    assert calls == 1
    assert emulator.log.count("GET", "/account") + emulator.log.count("GET", "/v3/account") == 1
    assert emulator.api_key not in label


def test_another_account_is_another_identity() -> None:
    first, second = BrevoEmulator(), BrevoEmulator()
    second.organization_id = "another-organization"

    assert identity(first)[0] != identity(second)[0]


def test_without_an_organization_id_the_login_names_the_account() -> None:
    emulator = BrevoEmulator(owner_email="Ops@Customer.test")
    emulator.organization_id = None

    assert identity(emulator)[0] == "login:ops@customer.test"
