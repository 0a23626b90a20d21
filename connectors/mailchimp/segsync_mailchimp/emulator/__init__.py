"""A stateful Mailchimp Marketing API emulator (the endpoints segsync and its tests use).

Imported only when asked for (the conformance kit, `segsync emulate`, the demo, the
benchmark); the connector never imports it.

Served under `/3.0` like the real API, in-process (`transport()`) or on loopback
(`segsync emulate mailchimp`). It models, after the fact sheet (reference/mailchimp.md):

- auth: HTTP Basic with any user and the key as password, or `Bearer`/`OAuth` tokens; a
  `<dc>.api.mailchimp.com` host that is not the key's datacenter gets 403 Wrong Datacenter;
- members keyed by md5(lower(email)) (paths also take the raw email), with statuses,
  a compliance flag separate from the status (self-unsubscribed / cleaned members cannot be
  set `subscribed`: 400 Member In Compliance State), archive on DELETE, permanent delete
  with a per-list tombstone (400 Forgotten Email Not Subscribed on any later add);
- list paging (`count` silently capped at 1000, `offset`, `total_items`), `fields` /
  `exclude_fields`, `status`, `since_last_changed` / `before_last_changed`, sorting;
- merge fields with types and validation ("Your merge fields were invalid."), unknown
  merge keys dropped; interest categories and interests;
- tags as static segments (member tags endpoint, `tags` honoured only on creation, bulk
  membership at 500 adds + 500 removes a call, tag search by prefix, one page an answer);
- `POST /lists` as specified; an `after_read_page` hook for edits made while a read pages;
- the stricter reading where Mailchimp's behaviour is unverified, each with a lenient
  switch (see `MailchimpEmulator`): batch items need a `status`, tag search pages, tag
  edits leave `last_changed` alone;
- saved segments with one flat `match` any/all list of conditions, evaluated on read for
  the condition types in `CONDITION_EVALUATORS` (others are stored and match nobody);
  `member_count` counts subscribed members only;
- batch subscribe `POST /lists/{id}` (500 members, `update_existing`, `sync_tags`,
  per-record errors with the documented `error_code`s and texts);
- problem+json errors, and 429 beyond 10 concurrent connections (no rate headers);
  `X-Trigger-Error: <glossary name>` answers with that error (Mailchimp's debugging aid).

Modules: `state` (the account's state, `seed_<thing>` / `get_<thing>` helpers), `conditions`
(saved-segment evaluation), `routes` and `audience_routes` (the HTTP handlers, all named
`route_<...>`), `app` (`MailchimpEmulator`: auth, errors, rate limits, the route table).
"""

from segsync_mailchimp.api import subscriber_hash
from segsync_mailchimp.emulator.app import MailchimpEmulator
from segsync_mailchimp.emulator.conditions import CONDITION_EVALUATORS

__all__ = ["CONDITION_EVALUATORS", "MailchimpEmulator", "subscriber_hash"]
