"""How the HubSpot emulator reads requests and shapes answers, as HubSpot does.

`HubSpotWire` is the base of the route handlers: JSON bodies (400 for what does not parse or
is not an object), batch `inputs` (at most `batch_limit`), comma-separated query lists, the
object type of property paths, 207 batch answers with per-input errors in HubSpot's standard
error shape, lists as the lists API renders them, filter branches validated and normalised,
and the checks several handlers share (a list that exists, a MANUAL list, a subscription
type, an address, the EMAIL channel, the Enterprise-only batch status calls).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from segsync_hubspot.emulator.records import EMAIL_PATTERN, HubSpotError, ListRecord, iso_time
from segsync_hubspot.emulator.state import HubSpotState
from segsync_hubspot.filters import FilterError, normalise_branch, validate_branch

__all__ = ["HubSpotWire"]


class HubSpotWire(HubSpotState):
    """Request parsing and answer shapes shared by the route handlers."""

    @staticmethod
    async def _body(request: Request) -> Any:
        raw = await request.body()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise HubSpotError(
                400, "VALIDATION_ERROR", "Invalid input JSON on line 1: could not parse the body"
            ) from None

    async def _object_body(self, request: Request) -> dict[str, Any]:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
        return body

    def _inputs(self, body: Mapping[str, Any]) -> list[Any]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: inputs is required")
        if len(inputs) > self.batch_limit:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Batch input limit exceeded: {len(inputs)} inputs, "
                f"the limit is {self.batch_limit}",
                context={"limit": [str(self.batch_limit)]},
            )
        return inputs

    @staticmethod
    def _query_list(request: Request, key: str) -> list[str]:
        values: list[str] = []
        for item in request.query_params.getlist(key):
            values += [v for v in item.split(",") if v]
        return values

    @staticmethod
    def _object_type(request: Request) -> None:
        if request.path_params["object_type"] not in ("contacts", "0-1", "contact"):
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Unable to infer object type from: {request.path_params['object_type']}",
            )

    @staticmethod
    def _check_options(options: Sequence[Any]) -> None:
        seen: set[str] = set()
        for option in options:
            value = option.get("value") if isinstance(option, dict) else None
            if not isinstance(value, str) or not value or not option.get("label"):
                raise HubSpotError(400, "VALIDATION_ERROR", "Each option needs a label and a value")
            if ";" in value:
                raise HubSpotError(
                    400, "VALIDATION_ERROR", f"Option value {value!r} may not contain ';'"
                )
            if value in seen:
                raise HubSpotError(400, "VALIDATION_ERROR", f"Duplicate option value {value!r}")
            seen.add(value)

    def _validation(self, errors: list[dict[str, Any]]) -> HubSpotError:
        return HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"Property values were not valid: {json.dumps(errors)}",
            errors=[
                {
                    "message": e["message"],
                    "code": e["error"],
                    "context": {"propertyName": [e["name"]]},
                }
                for e in errors
            ],
        )

    def _batch_response(
        self,
        results: list[dict[str, Any]],
        errors: list[dict[str, Any]],
        started: dt.datetime,
        *,
        ok_status: int = 200,
    ) -> Response:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso_time(started),
            "completedAt": iso_time(self.clock.now()),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return JSONResponse(body, status_code=207)
        return JSONResponse(body, status_code=ok_status)

    def _standard_error(
        self,
        category: str,
        message: str,
        context: dict[str, list[str]],
        errors: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        return {
            "status": "error",
            "category": category,
            "message": message,
            "context": context,
            "errors": list(errors),
            "links": {},
        }

    def _list_or_404(self, list_id: str) -> ListRecord:
        found = self.lists.get(list_id)
        if found is None or found.deleted:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"List {list_id} does not exist.")
        return found

    def _manual(self, list_id: str) -> ListRecord:
        lst = self._list_or_404(list_id)
        if lst.processing_type not in ("MANUAL", "SNAPSHOT"):
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"List {list_id} has processingType {lst.processing_type}; memberships can only "
                "be changed for MANUAL or SNAPSHOT lists",
            )
        return lst

    def _render_list(self, lst: ListRecord, *, include_filters: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "listId": lst.id,
            "listVersion": lst.version,
            "name": lst.name,
            "objectTypeId": "0-1",
            "processingType": lst.processing_type,
            "processingStatus": "COMPLETE",
            "createdAt": iso_time(lst.created_at),
            "updatedAt": iso_time(lst.updated_at),
            "filtersUpdatedAt": iso_time(lst.filters_updated_at),
            "createdById": "1",
            "updatedById": "1",
            "size": len(self._members(lst)),
        }
        if include_filters and lst.filter_branch is not None:
            out["filterBranch"] = lst.filter_branch
        return out

    def _validate_branch(self, branch: Any) -> dict[str, Any]:
        try:
            validate_branch(
                branch,
                lambda name: (self.properties.get(name) or {}).get("type"),
                lambda list_id: list_id in self.lists and not self.lists[list_id].deleted,
                lambda sub: sub.isdigit() and int(sub) in self.subscriptions,
            )
        except FilterError as exc:
            raise HubSpotError(
                400, "VALIDATION_ERROR", str(exc), subCategory="ILS.INVALID_FILTER_BRANCH"
            ) from None
        return normalise_branch(branch)

    def _sub(self, raw: Any) -> int:
        try:
            sub_id = int(raw)
        except (TypeError, ValueError):
            sub_id = -1
        if sub_id not in self.subscriptions:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Subscription {raw} does not exist")
        return sub_id

    @staticmethod
    def _address(raw: str) -> str:
        email = raw.strip().lower()
        if not EMAIL_PATTERN.match(email):
            raise HubSpotError(400, "VALIDATION_ERROR", f"{raw} is not a valid email address")
        return email

    def _channel(self, request: Request) -> None:
        if request.query_params.get("channel", "EMAIL") != "EMAIL":
            raise HubSpotError(400, "VALIDATION_ERROR", "channel must be EMAIL")

    def _enterprise_only(self, scope: str) -> None:
        """Batch status calls need Marketing Hub Enterprise: 403 MISSING_SCOPES otherwise."""
        if self.enterprise_consent:
            return
        raise HubSpotError(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call.",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": [scope]},
                }
            ],
        )
