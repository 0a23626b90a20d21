"""A stateful HubSpot emulator: contacts, search, properties, lists and subscriptions.

Behaviour follows HubSpot's documented limits and shapes: 100 inputs a batch, 100 records a
page with an `after` cursor, search at 200 a page capped at 10,000 results (400 beyond) and 5
requests a second, 5 filter groups x 6 filters (18 in all), checkbox values `;`-joined and
validated against options (`INVALID_OPTION`), DYNAMIC lists evaluated from their filter branch
(with `includeObjectsWithNoValueSet`), membership writes on MANUAL/SNAPSHOT lists only,
memberships read 250 a page, subscription statuses per email address, read-only
`hs_email_optout*` properties, the rolling 10-second, daily and search limits with HubSpot's
429 bodies and rate-limit headers; email upserts all-or-nothing, search bodies of at most
3,000 characters, an index lag before a write is searchable (`search_delay_seconds`), the
scopes of each endpoint (`scopes`, 403 `MISSING_SCOPES`), and the lists a record is in.

The parts: `state` (the account's state and the `seed_*` / inspection helpers tests use),
`records` (contacts, their indexes, the value rules and the batch journal), `scopes` (the
scopes each endpoint needs), `wire` (request
parsing and answer shapes), the `route_*` handlers in `contact_routes`, `list_routes` and
`consent_routes`, and `routes` (`HubSpotEmulator`: the routing table, auth and rate-limit
answers). The connector never imports this package; the conformance kit, `segsync emulate`,
the demo and the benchmark do.
"""

from segsync_hubspot.emulator.records import HubSpotError
from segsync_hubspot.emulator.routes import HubSpotEmulator

__all__ = ["HubSpotEmulator", "HubSpotError"]
