"""Facts of the Mailchimp Marketing API that the connector and its emulator both rely on.

A member's id is the subscriber hash of its address; times are ISO 8601 in UTC with an
explicit offset; batch subscribe takes 500 members a call, segment membership 500 adds and
500 removes a call, and list pages at most 1000 items; an API call may run 120 s on the
server; a datacenter is a name like `us21`. Every value put in a URL path goes through
`path_segment`. Importing this module loads nothing of the emulator.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from urllib.parse import quote

__all__ = [
    "CALL_TIMEOUT",
    "DATACENTER",
    "MAX_BATCH_MEMBERS",
    "MAX_PAGE",
    "MAX_SEGMENT_BULK",
    "SERVER_TIME_LIMIT",
    "TAG_SEARCH_LIMIT",
    "iso_time",
    "parse_time",
    "path_segment",
    "subscriber_hash",
]

MAX_BATCH_MEMBERS = 500
"""Members per batch subscribe call (`POST /lists/{id}`)."""

MAX_SEGMENT_BULK = 500
"""Adds, and removes, per segment membership call (`POST /lists/{id}/segments/{id}`)."""

MAX_PAGE = 1000
"""Items per page of a list endpoint (`count` is capped there)."""

TAG_SEARCH_LIMIT = 10
"""Tags one `GET /lists/{id}/tag-search` answers at most (it takes no count or offset)."""

SERVER_TIME_LIMIT = 120.0
"""Seconds Mailchimp lets an API call run (a 500-member batch subscribe can take them)."""

CALL_TIMEOUT = SERVER_TIME_LIMIT + 10.0
"""The client's timeout: above the server's limit, so a slow batch is not cut off and sent
again while Mailchimp is still applying it."""

DATACENTER = re.compile(r"[a-z]{2}[0-9]{1,3}")
"""A datacenter name as it ends an API key (`us21`): the host is `<dc>.api.mailchimp.com`."""


def path_segment(value: object) -> str:
    """`value` as one URL path segment: every reserved character escaped, `.`/`..` too.

    Names and ids read from the platform or the config (tag names, segment ids, emails)
    never change the request's target: `/`, `?`, `#` and `%` are escaped, and a segment
    made of dots is spelled `%2E` so no client or proxy folds it as `..`. An empty value
    raises ValueError (it would name the collection instead of an item).
    """
    text = quote(str(value), safe="")
    if not text:
        raise ValueError("an empty value cannot name a Mailchimp resource")
    if text.strip(".") == "":
        text = text.replace(".", "%2E")
    return text


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the hex MD5 of the lowercased address."""
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def iso_time(when: dt.datetime) -> str:
    """`when` as Mailchimp writes times: UTC, to the second, with a `+00:00` offset."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_time(text: str) -> dt.datetime:
    """A Mailchimp time (`Z` or an offset, `T` or a space) as an aware datetime; naive is UTC."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
