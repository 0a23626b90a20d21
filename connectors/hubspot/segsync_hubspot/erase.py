"""HubSpot's GDPR delete: `POST {contacts}/gdpr-delete` `{objectId: email, idProperty: email}`.

It deletes the contact and its associated content permanently (not the 90-day archive of
`DELETE`) and answers 204. An address the portal does not hold is added to HubSpot's
blocklist: it cannot be used in the portal again (documented in docs/consent.md). HubSpot
does not say whether the address was held, so `already_absent` is never set here. A record
segsync linked under another address (renamed in HubSpot since) is deleted by its id too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segsync.connector import ErasureResult

if TYPE_CHECKING:
    from segsync_hubspot.connector import HubSpotConnector

__all__ = ["erase"]


async def erase(self: HubSpotConnector, email: str, platform_id: str | None) -> ErasureResult:
    """GDPR-delete the contact `email` (and the linked record `platform_id`)."""
    path = f"{self.paths['contacts']}/gdpr-delete"
    bodies: list[dict[str, str]] = [{"objectId": email, "idProperty": "email"}]
    if platform_id and platform_id.isdigit():
        bodies.append({"objectId": platform_id})
    for body in bodies:
        await self.client.request(
            "POST", path, json=body, endpoint="POST contacts/gdpr-delete", idempotent=True,
            ok=(404,),
        )
    return ErasureResult(email=email, platform=self.name, confirmed=True)
