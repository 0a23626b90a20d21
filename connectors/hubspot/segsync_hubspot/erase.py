"""HubSpot's GDPR delete: `POST {contacts}/gdpr-delete` `{objectId: email, idProperty: email}`.

It deletes the contact and its associated content permanently (not the 90-day archive of
`DELETE`) and answers 204. An address the portal does not hold is added to HubSpot's
blocklist: it cannot be used in the portal again (documented in docs/consent.md). HubSpot
does not say whether the address was held, so `already_absent` is never set here. A record
segsync linked under another address (renamed in HubSpot since) is deleted by its id too.
HubSpot also finds a contact by an additional email: an address held only that way, by a
record not linked to this person, is another person's record and is not deleted (one batch
read by email first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segsync.connector import ErasureResult

if TYPE_CHECKING:
    from segsync_hubspot.connector import HubSpotConnector

__all__ = ["erase"]


async def erase(self: HubSpotConnector, email: str, platform_id: str | None) -> ErasureResult:
    """GDPR-delete the contact `email` (and the linked record `platform_id`). An address
    HubSpot holds only as another contact's additional email is not deleted by email (that
    would delete the other person's record): the result says so, unconfirmed."""
    path = f"{self.paths['contacts']}/gdpr-delete"
    linked = platform_id if platform_id and platform_id.isdigit() else None
    key = email.strip().lower()
    holder = next(
        (r for r in await self._records_by_email([email], ["email"])
         if str((r.get("properties") or {}).get("email") or "").lower() != key
         and str(r.get("id")) != linked),
        None,
    )
    bodies: list[dict[str, str]] = [] if holder else [{"objectId": email, "idProperty": "email"}]
    if linked:
        bodies.append({"objectId": linked})
    for body in bodies:
        await self.client.request(
            "POST", path, json=body, endpoint="POST contacts/gdpr-delete", idempotent=True,
            ok=(404,),
        )
    if holder is not None:
        return ErasureResult(
            email=email, platform=self.name, confirmed=False,
            error=f"the address is an additional email of HubSpot contact {holder['id']}, "
                  f"another person's record, which is not deleted; fix: remove the address "
                  f"from that contact in HubSpot, then erase again",
        )
    return ErasureResult(email=email, platform=self.name, confirmed=True)
