"""The HubSpot emulator's GDPR delete: `POST {contacts}/gdpr-delete`.

Body `PublicGdprDeleteInput` `{objectId, idProperty?}`. The contact is deleted permanently
(its record, indexes, list memberships and subscription statuses; not the restorable
archive of `DELETE`) and the answer is 204. As HubSpot documents, an email the portal does
not hold is added to the blocklist (`gdpr_blocklist`) and still answers 204; an unknown
record id answers 404.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from segsync_hubspot.emulator.records import ContactRecord, HubSpotError
from segsync_hubspot.emulator.wire import HubSpotWire

__all__ = ["EraseRoutes"]


class EraseRoutes(HubSpotWire):
    """`route_gdpr_delete`, and the addresses HubSpot blocklisted by it."""

    @property
    def gdpr_blocklist(self) -> set[str]:
        """Addresses GDPR-deleted (held or not): blocklisted by the portal (test hook)."""
        found: set[str] | None = self.__dict__.get("_gdpr_blocklist")
        if found is None:
            found = self.__dict__["_gdpr_blocklist"] = set()
        return found

    async def route_gdpr_delete(self, request: Request) -> Any:
        body = await self._object_body(request)
        ident, id_property = body.get("objectId"), body.get("idProperty")
        if not isinstance(ident, str) or not ident.strip():
            raise HubSpotError(400, "VALIDATION_ERROR", "objectId is required")
        record = self._lookup(ident, id_property)
        if record is None and id_property in (None, "", "hs_object_id"):
            archived = self.contacts.get(ident)  # an archived record is deleted too
            record = archived if archived is not None and archived.archived else None
        if record is None:
            if id_property == "email":
                self.gdpr_blocklist.add(ident.strip().lower())
                return Response(status_code=204)
            raise HubSpotError(
                404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.",
                context={"id": [ident]},
            )
        self._delete_permanently(record)
        return Response(status_code=204)

    def _delete_permanently(self, record: ContactRecord) -> None:
        emails = [key for key, owner in self._by_email.items() if owner == record.id]
        for key in emails:
            self._by_email.pop(key, None)
            self.statuses.pop(key, None)
            self.opted_out_of_all.pop(key, None)
            self.gdpr_blocklist.add(key)
        self._unindex(record.id)
        del self.contacts[record.id]
        for lst in self.lists.values():
            lst.members.pop(record.id, None)
