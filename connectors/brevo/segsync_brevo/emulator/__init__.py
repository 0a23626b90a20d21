"""A stateful emulator of the Brevo API v3, for everything segsync's connector uses.

Imported only when asked for (the conformance kit, `segsync emulate`, the demo, the
benchmark); the connector never imports it.

Served at the root and under `/v3` (so `https://api.brevo.com/v3` maps onto it). It keeps
contacts (unique lower-case email and ext_id, integer ids, `createdAt`/`modifiedAt` in the
account's offset with milliseconds), attributes (categories and types; values of the wrong
type dropped silently and recorded in `dropped_values`), folders and lists, read-only
segments (fixtures with a predicate), asynchronous imports and their processes, double opt-in
requests, and the rate limits: `/contacts*` per second and per hour by tier, every other
endpoint per hour, with `x-sib-ratelimit-*` headers and a 429 `{code, message}` body.

Fact-sheet quirks reproduced: import ignores boolean attributes; list add/remove matches
emails case-sensitively and answers 400 when no item succeeds; changing a blocklisted
contact's email clears the blocklist; clearing `emailBlacklisted` is recorded in
`unblocklist_writes` (and refused when `refuse_unblocklist`); `/contacts/batch` is
all-or-nothing and marked deprecated. When a `SpecValidator` is given, every request is
checked against the API description and departures are kept in `spec_violations` (and
answered 400 when `strict_spec`).

Modules: `state` (the account's state and the test hooks that stage and inspect it),
`routes` (the HTTP handlers, all named `route_<...>`), `app` (`BrevoEmulator`: auth, errors,
rate limits, spec checks, the route table).
"""

from segsync_brevo.emulator.app import BrevoEmulator
from segsync_brevo.emulator.state import ContactRecord
from segsync_brevo.limits import TIERS, TierLimits

__all__ = ["TIERS", "BrevoEmulator", "ContactRecord", "TierLimits"]
