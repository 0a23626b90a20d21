"""Three lived-in emulated accounts synced by one state, and the accounts a config can be
pointed at instead (another Brevo account, another Mailchimp audience, another HubSpot
portal holding a copy of the same records).

The customer's accounts hold, before segsync: ALICE and BOB on every platform, the user's
own Mailchimp and HubSpot data (`seed_lived_in`), a Brevo list of theirs. The other Brevo
account (`other_brevo`) holds STRANGER under the very Brevo id ALICE has in the customer's
account, BOB under another id, and CAROL, who exists nowhere else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator

from segsync.clock import VirtualClock
from segsync.connector import Connector
from segsync.state import StateStore, open_store
from segsync.sync import Engine, SyncPolicy
from segsync.sync.plan import Plan
from segsync.sync.report import RunReport
from segsync.testing.data import DEFAULT_SCHEMA

PLATFORMS = ("mailchimp", "hubspot", "brevo")
ALICE = "alice@customer.test"
BOB = "bob@customer.test"
STRANGER = "stranger@other.test"
CAROL = "carol@other.test"
CUSTOMER_KEY = "xkeysib-" + "1" * 64 + "-customerA00001"
OTHER_KEY = "xkeysib-" + "2" * 64 + "-otherAcct00002"
LOCAL = "http://127.0.0.1:9"


def customer_brevo(clock: VirtualClock) -> BrevoEmulator:
    """The customer's Brevo account: ALICE (the first id) and BOB, in a list of theirs."""
    emulator = BrevoEmulator(clock=clock, api_key=CUSTOMER_KEY, owner_email="ops@customer.test")
    emulator.organization_id = "org-customer-0001"
    emulator.company_name = "Customer Ltd"
    own = emulator.seed_list("Customers (the user's own)")
    emulator.seed_contact(ALICE, lists=(own,), attributes={"FIRSTNAME": "Alice"})
    emulator.seed_contact(BOB, lists=(own,), attributes={"FIRSTNAME": "Bob"})
    return emulator


def other_brevo(clock: VirtualClock, *, organization: str | None = "org-other-0002") -> Any:
    """Another Brevo account: STRANGER under ALICE's id there, BOB under another, CAROL."""
    emulator = BrevoEmulator(clock=clock, api_key=OTHER_KEY, owner_email="boss@other.test")
    emulator.organization_id = organization
    emulator.company_name = "Other Agency"
    emulator.seed_contact(STRANGER, attributes={"FIRSTNAME": "Stranger"})
    emulator.seed_contact(CAROL, attributes={"FIRSTNAME": "Carol"})
    emulator.seed_contact(BOB, attributes={"FIRSTNAME": "Robert (other account)"})
    return emulator


class World:
    """The customer's three accounts, lived in, and segsync syncing them."""

    def __init__(self, store: StateStore | None = None) -> None:
        self.clock = VirtualClock(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC))
        self.loop = asyncio.new_event_loop()
        self.mc = MailchimpEmulator(clock=self.clock, reject_fake_emails=False)
        self.hs = HubSpotEmulator(clock=self.clock)
        self.bv = customer_brevo(self.clock)
        self.mc.seed_lived_in()
        self.hs.seed_lived_in()
        for email, name in ((ALICE, "Alice"), (BOB, "Bob")):
            self.mc.seed_member(email, "subscribed", merge_fields={"FNAME": name})
            self.hs.seed_contact({"email": email, "firstname": name})
        self.clock.advance(3600)
        self.store = store or open_store("sqlite:///:memory:", clock=self.clock)
        self.connectors: dict[str, Connector] = {
            "mailchimp": self.mailchimp(self.mc.default_list_id),
            "hubspot": HubSpotConnector(
                {"token": self.hs.default_api_key, "base_url": LOCAL, "subscription_id": 101},
                transport=self.hs.transport(), schema=DEFAULT_SCHEMA, clock=self.clock,
            ),
            "brevo": self.brevo(self.bv),
        }

    # -- pointing the config elsewhere ---------------------------------------------------

    def mailchimp(self, list_id: str) -> Connector:
        connector: Connector = MailchimpConnector(
            {"api_key": self.mc.default_api_key, "list_id": list_id,
             "base_url": LOCAL + self.mc.base_path},
            transport=self.mc.transport(), schema=DEFAULT_SCHEMA, clock=self.clock,
        )
        return connector

    def brevo(self, emulator: BrevoEmulator) -> Connector:
        connector: Connector = BrevoConnector(
            {"api_key": emulator.api_key}, transport=emulator.transport(),
            schema=DEFAULT_SCHEMA, clock=self.clock,
        )
        return connector

    def replace(self, platform: str, connector: Connector) -> None:
        """Point `platform` elsewhere (a new config block: a new connector), same state."""
        self.loop.run_until_complete(self.connectors[platform].aclose())
        self.connectors[platform] = connector

    # -- runs ---------------------------------------------------------------------------

    def engine(self) -> Engine:
        """An engine as a new CLI run builds it (the state persists)."""
        return Engine(
            self.connectors, self.store, config="accounts",
            policy=SyncPolicy(platforms=PLATFORMS), schema=DEFAULT_SCHEMA, clock=self.clock,
        )

    def plan(self) -> Plan:
        self.clock.advance(600)
        return self.loop.run_until_complete(self.engine().plan())

    def sync(self) -> RunReport:
        self.clock.advance(600)
        return self.loop.run_until_complete(self.engine().sync())

    def close(self) -> None:
        for connector in self.connectors.values():
            self.loop.run_until_complete(connector.aclose())
        self.loop.close()
        self.store.close()
