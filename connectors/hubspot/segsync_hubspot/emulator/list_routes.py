"""The HubSpot emulator's list endpoints.

Lists of contacts (MANUAL, DYNAMIC from a validated filter branch, SNAPSHOT), unique by name
(case-insensitive; `ILS.DUPLICATE_LIST_NAMES`), found by id, by name or by search (500 at
most a page); filters and names updated; memberships read 250 a page and changed on MANUAL
and SNAPSHOT lists only; the lists one record is in.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from segsync_hubspot.emulator.records import HubSpotError, ListRecord, iso_time
from segsync_hubspot.emulator.wire import HubSpotWire
from segsync_hubspot.limits import MEMBERSHIP_PAGE

__all__ = ["ListRoutes"]


class ListRoutes(HubSpotWire):
    """Handlers of the lists endpoints (`route_*`)."""

    async def route_create_list(self, request: Request) -> Any:
        body = await self._object_body(request)
        name = str(body.get("name") or "").strip()
        processing = body.get("processingType")
        if (
            not name
            or body.get("objectTypeId") not in ("0-1",)
            or processing not in ("MANUAL", "DYNAMIC", "SNAPSHOT")
        ):
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                "name, objectTypeId (0-1 for contacts) and processingType (MANUAL, DYNAMIC or "
                "SNAPSHOT) are required",
            )
        if any(lst.name.lower() == name.lower() and not lst.deleted for lst in self.lists.values()):
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"A list named '{name}' already exists.",
                subCategory="ILS.DUPLICATE_LIST_NAMES",
            )
        branch = body.get("filterBranch")
        if processing == "MANUAL" and branch is not None:
            raise HubSpotError(400, "VALIDATION_ERROR", "MANUAL lists cannot have a filterBranch")
        if processing in ("DYNAMIC", "SNAPSHOT") and branch is None:
            raise HubSpotError(400, "VALIDATION_ERROR", f"{processing} lists need a filterBranch")
        normalised = self._validate_branch(branch) if branch is not None else None
        now = self.clock.now()
        lst = ListRecord(str(self._next_list_id), name, str(processing), normalised, now, now, now)
        self._next_list_id += 1
        self.lists[lst.id] = lst
        if processing == "SNAPSHOT":
            assert normalised is not None
            lst.processing_type = "DYNAMIC"
            lst.members = self._members(lst)
            lst.processing_type = "SNAPSHOT"
        return {"list": self._render_list(lst, include_filters=True)}

    async def route_get_lists(self, request: Request) -> Any:
        include = request.query_params.get("includeFilters", "").lower() == "true"
        ids = self._query_list(request, "listIds")
        found = [self.lists[i] for i in ids if i in self.lists and not self.lists[i].deleted]
        return {"lists": [self._render_list(x, include_filters=include) for x in found]}

    def _search_result(self, lst: ListRecord) -> dict[str, Any]:
        """A list as list search returns it: default properties under additionalProperties."""
        out = self._render_list(lst, include_filters=False)
        size = out.pop("size")
        last_added = max(lst.members.values(), default=None)
        properties = {
            "hs_list_size": str(size),
            "hs_last_record_added_at": iso_time(last_added) if last_added else "",
            "hs_folder_name": "",
            "hs_list_reference_count": "0",
        }
        out["additionalProperties"] = properties  # the defaults; others are not emulated
        return out

    async def route_search_lists(self, request: Request) -> Any:
        body = await self._object_body(request)
        count = int(body.get("count") or 20)
        if count > 500:
            raise HubSpotError(400, "VALIDATION_ERROR", "count must be at most 500")
        offset = int(body.get("offset") or 0)
        query = str(body.get("query") or "").lower()
        kinds = set(body.get("processingTypes") or []) or {"MANUAL", "DYNAMIC", "SNAPSHOT"}
        ids = {str(i) for i in body.get("listIds") or []}
        found = [
            x
            for x in self.lists.values()
            if not x.deleted
            and query in x.name.lower()
            and x.processing_type in kinds
            and (not ids or x.id in ids)
        ]
        page = found[offset : offset + count]
        return {
            "lists": [self._search_result(x) for x in page],
            "offset": offset + len(page),
            "hasMore": offset + count < len(found),
            "total": len(found),
        }

    async def route_get_list(self, request: Request) -> Any:
        lst = self._list_or_404(request.path_params["list_id"])
        include = request.query_params.get("includeFilters", "").lower() == "true"
        return {"list": self._render_list(lst, include_filters=include)}

    async def route_get_list_by_name(self, request: Request) -> Any:
        name = request.path_params["name"].lower()
        for lst in self.lists.values():
            if not lst.deleted and lst.name.lower() == name:
                include = request.query_params.get("includeFilters", "").lower() == "true"
                return {"list": self._render_list(lst, include_filters=include)}
        raise HubSpotError(
            404, "OBJECT_NOT_FOUND", f"List with name {request.path_params['name']} not found."
        )

    async def route_delete_list(self, request: Request) -> Any:
        lst = self._list_or_404(request.path_params["list_id"])
        lst.deleted = True
        return Response(status_code=204)

    async def route_update_list_filters(self, request: Request) -> Any:
        lst = self._list_or_404(request.path_params["list_id"])
        if lst.processing_type != "DYNAMIC":
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"List {lst.id} is a {lst.processing_type} list: only DYNAMIC lists have filters",
            )
        body = await self._object_body(request)
        lst.filter_branch = self._validate_branch(body.get("filterBranch"))
        now = self.clock.now()
        lst.version += 1
        lst.updated_at = lst.filters_updated_at = now
        return {"updatedList": self._render_list(lst, include_filters=True)}

    async def route_update_list_name(self, request: Request) -> Any:
        lst = self._list_or_404(request.path_params["list_id"])
        name = request.query_params.get("listName", "").strip()
        if not name:
            raise HubSpotError(400, "VALIDATION_ERROR", "listName is required")
        lst.name = name
        lst.updated_at = self.clock.now()
        return {"updatedList": self._render_list(lst, include_filters=False)}

    async def route_get_memberships(self, request: Request) -> Any:
        lst = self._list_or_404(request.path_params["list_id"])
        limit = int(request.query_params.get("limit", "100"))
        if limit > MEMBERSHIP_PAGE or limit < 1:
            raise HubSpotError(400, "VALIDATION_ERROR", "limit must be between 1 and 250")
        after = request.query_params.get("after")
        members = sorted(self._members(lst).items(), key=lambda kv: int(kv[0]))
        start = int(after) if after else 0
        page = members[start : start + limit]
        body: dict[str, Any] = {
            "results": [{"recordId": m, "membershipTimestamp": iso_time(t)} for m, t in page],
            "total": len(members),
        }
        if start + limit < len(members):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return body

    async def route_record_memberships(self, request: Request) -> Any:
        """`GET .../lists/records/{objectTypeId}/{recordId}/memberships`: the lists a record
        is in (DYNAMIC lists evaluated now), with `listVersion` and when it was added."""
        if request.path_params["otid"] != "0-1":
            raise HubSpotError(
                400, "VALIDATION_ERROR", "Only contacts (objectTypeId 0-1) are emulated"
            )
        record_id = request.path_params["record_id"]
        record = self.contacts.get(record_id)
        if record is None or record.archived:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Record {record_id} was not found.")
        results = []
        for lst in sorted(self.lists.values(), key=lambda x: int(x.id)):
            if lst.deleted:
                continue
            added = self._members(lst).get(record_id)
            if added is None:
                continue
            results.append(
                {
                    "listId": lst.id,
                    "listVersion": lst.version,
                    "firstAddedTimestamp": iso_time(added),
                    "lastAddedTimestamp": iso_time(added),
                    "isPublicList": False,
                }
            )
        return {"results": results, "total": len(results)}

    async def route_add_members(self, request: Request) -> Any:
        lst = self._manual(request.path_params["list_id"])
        body = await self._body(request)
        if not isinstance(body, list):
            raise HubSpotError(400, "VALIDATION_ERROR", "The body must be an array of record ids")
        return self._change_members(lst, body, [])

    async def route_remove_members(self, request: Request) -> Any:
        lst = self._manual(request.path_params["list_id"])
        body = await self._body(request)
        if not isinstance(body, list):
            raise HubSpotError(400, "VALIDATION_ERROR", "The body must be an array of record ids")
        return self._change_members(lst, [], body)

    async def route_add_and_remove_members(self, request: Request) -> Any:
        lst = self._manual(request.path_params["list_id"])
        body = await self._object_body(request)
        return self._change_members(
            lst, body.get("recordIdsToAdd") or [], body.get("recordIdsToRemove") or []
        )
