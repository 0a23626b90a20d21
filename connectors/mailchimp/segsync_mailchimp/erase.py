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
    """Delete the member `email` permanently (by its subscriber hash), and the member
    segsync linked (`platform_id`: its `contact_id`, which `GET` of a member takes; it may
    hold another address since, so its hash is asked); 404: already absent."""
    members = [subscriber_hash(email)]
    if platform_id and platform_id not in members:  # the record segsync linked
        linked = await self.client.request(
            "GET",
            f"{self._list_path}/members/{path_segment(platform_id)}",
            endpoint="GET /lists/{id}/members/{hash}",
            params={"fields": "id"},
            ok=(404,),
        )
        found = str(linked.json().get("id") or "") if linked.status_code != 404 else ""
        if found and found not in members:
            members.append(found)
    absent = True
    for member in members:
        answer = await self.client.request(
            "POST",
            f"{self._list_path}/members/{path_segment(member)}/actions/delete-permanent",
            endpoint="POST /lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent",
            idempotent=True,
            ok=(404,),
        )
        absent = absent and answer.status_code == 404
    return ErasureResult(email=email, platform=self.name, confirmed=True, already_absent=absent)
