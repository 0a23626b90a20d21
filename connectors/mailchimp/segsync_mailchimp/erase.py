"""Mailchimp's permanent delete (GDPR erasure) of one member of the audience.

`POST /lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent` answers 204; a
member the audience does not hold (never there, or deleted already) answers 404, which
counts as already absent. Mailchimp then refuses to re-import the address through the API
("permanently deleted and cannot be re-imported"): only the person signing up again brings
them back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segsync.connector import ErasureResult
from segsync_mailchimp.api import path_segment, subscriber_hash

if TYPE_CHECKING:
    from segsync_mailchimp.connector import MailchimpConnector

__all__ = ["erase"]


async def erase(
    self: MailchimpConnector, email: str, platform_id: str | None
) -> ErasureResult:
    """Delete the member `email` permanently (by its subscriber hash); 404: already absent."""
    hashes = [subscriber_hash(email)]
    if platform_id and platform_id not in hashes:  # the record segsync linked, renamed since
        hashes.append(platform_id)
    absent = True
    for member in hashes:
        answer = await self.client.request(
            "POST",
            f"{self._list_path}/members/{path_segment(member)}/actions/delete-permanent",
            endpoint="POST /lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent",
            idempotent=True,
            ok=(404,),
        )
        absent = absent and answer.status_code == 404
    return ErasureResult(email=email, platform=self.name, confirmed=True, already_absent=absent)
