"""The scopes each emulated HubSpot endpoint needs (the descriptions' `security` sections).

`required_scopes(method, path)` is the list of alternatives for one request: the token must
hold every scope of at least one alternative, else HubSpot answers 403 `MISSING_SCOPES` with
the scopes in `errors[].context.requiredGranularScopes`. An endpoint not in the table needs
no scope (the account details). `PRIVATE_APP_SCOPES` are the scopes the setup guide asks a
private app or service key to be granted: the emulator's default token holds them.
"""

from __future__ import annotations

import re

__all__ = ["PRIVATE_APP_SCOPES", "SCOPE_TABLE", "required_scopes"]

Alternatives = tuple[frozenset[str], ...]


def _any(*scopes: str) -> Alternatives:
    """Any one of `scopes` suffices."""
    return tuple(frozenset({s}) for s in scopes)


def _all(*scopes: str) -> frozenset[str]:
    return frozenset(scopes)


_CONTACTS = r"/crm/(?:v3/objects|objects/[^/]+)/contacts"
_PROPERTIES = r"/crm/(?:v3/properties|properties/[^/]+)/[^/]+"
_LISTS = r"/crm/(?:v3/lists|lists/[^/]+)"
_CONSENT = r"/communication-preferences/[^/]+"

_SCHEMA_READ = _any(
    "crm.schemas.contacts.read",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.schemas.contacts.write",
)
"""Property definitions are readable with any contacts scope (crm-properties `security`)."""

_LIST_WRITE: Alternatives = (_all("crm.lists.read", "crm.lists.write"),)
"""List writes need read as well as write (crm-lists `security`; n8n-io/n8n#31190)."""

SCOPE_TABLE: tuple[tuple[str, re.Pattern[str], Alternatives], ...] = tuple(
    (method, re.compile(f"^{pattern}$"), alternatives)
    for method, pattern, alternatives in (
        ("POST", rf"{_CONTACTS}/(?:search|batch/read)", _any("crm.objects.contacts.read")),
        ("GET", rf"{_CONTACTS}(?:/[^/]+)?", _any("crm.objects.contacts.read")),
        ("POST", rf"{_CONTACTS}(?:/.*)?", _any("crm.objects.contacts.write")),
        ("PATCH", rf"{_CONTACTS}/[^/]+", _any("crm.objects.contacts.write")),
        ("DELETE", rf"{_CONTACTS}/[^/]+", _any("crm.objects.contacts.write")),
        ("GET", rf"{_PROPERTIES}(?:/.*)?", _SCHEMA_READ),
        ("POST", rf"{_PROPERTIES}(?:/.*)?", _any("crm.schemas.contacts.write")),
        ("PATCH", rf"{_PROPERTIES}(?:/.*)?", _any("crm.schemas.contacts.write")),
        ("DELETE", rf"{_PROPERTIES}(?:/.*)?", _any("crm.schemas.contacts.write")),
        ("GET", rf"{_LISTS}(?:/.*)?", _any("crm.lists.read")),
        ("POST", rf"{_LISTS}/(?:search|idmapping|records/memberships/batch/read)",
         _any("crm.lists.read")),
        ("POST", _LISTS, _any("crm.lists.write")),
        ("PUT", rf"{_LISTS}/.*", _LIST_WRITE),
        ("DELETE", rf"{_LISTS}/.*", _LIST_WRITE),
        (
            "POST",
            rf"{_CONSENT}/statuses/batch/(?:read|unsubscribe-all/read)",
            _any("communication_preferences.statuses.batch.read"),
        ),
        (
            "POST",
            rf"{_CONSENT}/statuses/batch/.*",
            _any("communication_preferences.statuses.batch.write"),
        ),
        (
            "GET",
            rf"{_CONSENT}/.*",
            _any("communication_preferences.read", "communication_preferences.read_write"),
        ),
        (
            "POST",
            rf"{_CONSENT}/.*",
            _any("communication_preferences.write", "communication_preferences.read_write"),
        ),
    )
)
"""(method, path pattern, alternatives), first match wins."""

PRIVATE_APP_SCOPES: frozenset[str] = frozenset(
    {
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
        "crm.schemas.contacts.read",
        "crm.schemas.contacts.write",
        "crm.lists.read",
        "crm.lists.write",
        "communication_preferences.read",
        "communication_preferences.write",
        "communication_preferences.read_write",
        "communication_preferences.statuses.batch.read",
        "communication_preferences.statuses.batch.write",
    }
)
"""Every scope segsync's connector can use (the batch consent ones need Marketing Hub
Enterprise, which the emulator models separately with `enterprise_consent`)."""


def required_scopes(method: str, path: str) -> Alternatives:
    """The scope alternatives a request needs (empty: none)."""
    for m, pattern, alternatives in SCOPE_TABLE:
        if m == method and pattern.match(path):
            return alternatives
    return ()
