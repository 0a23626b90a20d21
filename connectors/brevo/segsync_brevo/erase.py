"""Brevo's contact delete (GDPR erasure): `DELETE /contacts/{identifier}`.

The address goes URL-escaped in the path with `identifierType=email_id`; 204 deletes, 404
("Contact not found") means already absent. A record segsync linked under another address
(renamed in Brevo since) is deleted by its id as well. Brevo refuses (405) to delete the
account owner's own address: that is reported, not confirmed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from segsync.connector import ErasureResult

if TYPE_CHECKING:
    from segsync_brevo.connector import BrevoConnector

__all__ = ["erase"]


async def erase(self: BrevoConnector, email: str, platform_id: str | None) -> ErasureResult:
    """Delete the contact `email` (and the linked record `platform_id`); 404: absent."""
    targets = [(quote(email, safe=""), "email_id")]
    if platform_id and platform_id.isdigit():
        targets.append((platform_id, "contact_id"))
    absent = True
    for identifier, kind in targets:
        answer = await self.client.request(
            "DELETE",
            f"/contacts/{identifier}",
            params={"identifierType": kind},
            endpoint=f"DELETE /contacts/{{identifier}} ({kind})",
            ok=(404,),
        )
        absent = absent and answer.status_code == 404
    return ErasureResult(email=email, platform=self.name, confirmed=True, already_absent=absent)
