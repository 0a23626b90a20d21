"""The HubSpot emulator's contact and property endpoints.

Properties and property groups (create, read, patch options; HubSpot-defined properties keep
their options, except `hs_language`), contacts one by one and in batches of at most
`batch_limit` (create, read, update, upsert by email or a unique property, archive; 207 with
per-input errors; a batch without trace ids fails whole), and CRM search (200 a page, capped
at `search_result_cap`, `search_max_groups` groups of `search_max_filters_per_group` filters,
one sort; a search whose every filter group bounds `createdate` or `lastmodifieddate`
evaluates only the contacts the sorted indexes place in range).
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from segsync_hubspot.emulator.records import (
    ContactRecord,
    HubSpotError,
    iso_time,
    searchable_at,
)
from segsync_hubspot.emulator.wire import HubSpotWire
from segsync_hubspot.filters import search_filter_accepts, to_epoch_ms
from segsync_hubspot.limits import BATCH_INPUTS, SEARCH_PAGE

__all__ = ["ContactRoutes"]

_DEFAULT_SEARCH_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
_DEFAULT_GET_PROPERTIES = _DEFAULT_SEARCH_PROPERTIES
_QUERY_PROPERTIES = (
    "firstname", "lastname", "email", "phone", "hs_additional_emails", "fax", "mobilephone",
    "company",
)
"""What a search's free-text `query` covers on contacts (HubSpot's default searchable
properties, additional emails included)."""


def _query_matches(query: str, properties: Mapping[str, str | None]) -> bool:
    """Whether a search `query` finds a contact: a value of one of `_QUERY_PROPERTIES`
    (each additional email on its own) equal to it or starting with it, or a word of it
    (split at spaces, `@` and `.`) starting with it, case-insensitively."""
    for name in _QUERY_PROPERTIES:
        for value in str(properties.get(name) or "").lower().split(";"):
            words = re.split(r"[\s@.]+", value)
            if value.startswith(query) or any(w.startswith(query) for w in words if w):
                return True
    return False

_FIELD_TYPES: dict[str, frozenset[str]] = {
    "string": frozenset(
        {"text", "textarea", "file", "html", "phonenumber", "calculation_equation"}
    ),
    "number": frozenset({"number", "calculation_equation"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"date"}),
    "enumeration": frozenset(
        {"select", "radio", "checkbox", "booleancheckbox", "calculation_equation"}
    ),
    "bool": frozenset({"booleancheckbox", "calculation_equation"}),
    "phone_number": frozenset({"phonenumber"}),
}

_RANGE_OPERATORS = frozenset({"EQ", "GT", "GTE", "LT", "LTE", "BETWEEN"})
_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


class ContactRoutes(HubSpotWire):
    """Handlers of the contacts, properties and search endpoints (`route_*`)."""

    async def route_get_properties(self, request: Request) -> Any:
        self._object_type(request)
        return {"results": [p for p in self.properties.values() if not p["archived"]]}

    async def route_get_property(self, request: Request) -> Any:
        self._object_type(request)
        name = request.path_params["name"]
        prop = self.properties.get(name)
        if prop is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Property {name} does not exist")
        return prop

    async def route_create_property(self, request: Request) -> Any:
        self._object_type(request)
        body = await self._object_body(request)
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Missing required fields: {missing}")
        name = str(body["name"])
        if not _PROPERTY_NAME.match(name):
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Property name {name!r} must be lowercase, start with a letter, contain only "
                "letters, digits and underscores and be shorter than 100 characters",
            )
        if name in self.properties:
            raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"Property {name} already exists")
        ptype, field_type = body["type"], body["fieldType"]
        if field_type not in _FIELD_TYPES.get(ptype, frozenset()):
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"fieldType {field_type} is not valid for type {ptype}"
            )
        if body["groupName"] not in self.groups:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"Property group {body['groupName']} does not exist"
            )
        self._check_options(body.get("options") or [])
        record = self._property_record(body)
        self.properties[name] = record
        return JSONResponse(record, status_code=201)

    async def route_patch_property(self, request: Request) -> Any:
        self._object_type(request)
        name = request.path_params["name"]
        prop = self.properties.get(name)
        if prop is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Property {name} does not exist")
        body = await self._object_body(request)
        if prop["hubspotDefined"] and "options" in body and name != "hs_language":
            raise HubSpotError(400, "VALIDATION_ERROR", f"Property {name} options are read-only")
        if "options" in body:
            self._check_options(body["options"] or [])
            prop["options"] = self._property_record({**prop, "options": body["options"]})["options"]
        for key in ("label", "description", "groupName", "hidden", "displayOrder", "formField"):
            if key in body:
                prop[key] = body[key]
        prop["updatedAt"] = iso_time(self.clock.now())
        return prop

    async def route_get_groups(self, request: Request) -> Any:
        self._object_type(request)
        return {"results": list(self.groups.values())}

    async def route_create_group(self, request: Request) -> Any:
        self._object_type(request)
        body = await self._object_body(request)
        name = str(body.get("name") or "")
        if not name or not body.get("label"):
            raise HubSpotError(400, "VALIDATION_ERROR", "Property groups need a name and a label")
        if name in self.groups:
            raise HubSpotError(
                409, "OBJECT_ALREADY_EXISTS", f"Property group {name} already exists"
            )
        group = {
            "name": name,
            "label": body["label"],
            "displayOrder": body.get("displayOrder", -1),
            "archived": False,
        }
        self.groups[name] = group
        return JSONResponse(group, status_code=201)

    @staticmethod
    def _archived(request: Request) -> bool:
        """The `archived` query parameter (a boolean, default false: only live records;
        true: only archived ones); any other value is a 400."""
        raw = request.query_params.get("archived", "false").strip().lower()
        if raw not in ("true", "false"):
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"Invalid value for archived: {raw!r} is not a boolean"
            )
        return raw == "true"

    async def route_list_contacts(self, request: Request) -> Any:
        limit = int(request.query_params.get("limit", "10"))
        if limit > BATCH_INPUTS or limit < 1:
            raise HubSpotError(400, "VALIDATION_ERROR", "limit must be between 1 and 100")
        after = int(request.query_params.get("after", "0") or "0")
        archived = self._archived(request)
        ids = sorted(
            (int(i) for i, r in self.contacts.items() if r.archived == archived and int(i) >= after)
        )
        page = ids[:limit]
        props = self._query_list(request, "properties")
        body: dict[str, Any] = {
            "results": [
                self._render(self.contacts[str(i)], props, default=_DEFAULT_GET_PROPERTIES)
                for i in page
            ]
        }
        if len(ids) > limit:
            nxt = str(ids[limit])
            body["paging"] = {"next": {"after": nxt, "link": f"{request.url.path}?after={nxt}"}}
        return body

    async def route_get_contact(self, request: Request) -> Any:
        ident = request.path_params["contact_id"]
        record = self._lookup(
            ident, request.query_params.get("idProperty"), archived=self._archived(request)
        )
        if record is None:
            raise HubSpotError(
                404,
                "OBJECT_NOT_FOUND",
                "Object not found.  objectId are usually numeric.",
                context={"id": [ident]},
            )
        return self._render(
            record, self._query_list(request, "properties"), default=_DEFAULT_GET_PROPERTIES
        )

    async def route_create_contact(self, request: Request) -> Any:
        body = await self._object_body(request)
        record, errors = self._create(body.get("properties") or {})
        if errors:
            raise self._validation(errors)
        assert record is not None
        return JSONResponse(
            self._render(record, list(record.properties), default=()), status_code=201
        )

    async def route_patch_contact(self, request: Request) -> Any:
        ident = request.path_params["contact_id"]
        record = self._lookup(ident, request.query_params.get("idProperty"))
        if record is None:
            raise HubSpotError(
                404,
                "OBJECT_NOT_FOUND",
                "Object not found.  objectId are usually numeric.",
                context={"id": [ident]},
            )
        body = await self._object_body(request)
        errors = self._apply(record, body.get("properties") or {})
        if errors:
            raise self._validation(errors)
        return self._render(record, list(record.properties), default=())

    async def route_archive_contact(self, request: Request) -> Any:
        record = self.contacts.get(request.path_params["contact_id"])
        if record is not None and not record.archived:
            self._archive_record(record)
        return Response(status_code=204)

    async def route_batch_archive(self, request: Request) -> Any:
        body = await self._object_body(request)
        for item in self._inputs(body):
            record = self.contacts.get(str(item.get("id")))
            if record is not None and not record.archived:
                self._archive_record(record)
        return Response(status_code=204)

    async def route_batch_read(self, request: Request) -> Any:
        """Records by id (or `idProperty`); `?archived=true` reads only archived ones. An id
        not found is named in a 207's `errors` (`OBJECT_NOT_FOUND`, `context.ids`)."""
        started = self.clock.now()
        archived = self._archived(request)
        body = await self._object_body(request)
        inputs = self._inputs(body)
        id_property = body.get("idProperty")
        props = body.get("properties") or []
        results, missing = [], []
        for item in inputs:
            ident = str(item.get("id"))
            record = self._lookup(ident, id_property, archived=archived)
            if record is None:
                missing.append(ident)
            else:
                results.append(self._render(record, props, default=_DEFAULT_GET_PROPERTIES))
        errors = []
        if missing:
            errors.append(
                self._standard_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some CONTACT objects, they may be deleted or not exist. "
                    f"Check that ids are valid. Ids: {', '.join(missing)}",
                    {"ids": missing},
                )
            )
        return self._batch_response(results, errors, started)

    async def route_batch_create(self, request: Request) -> Any:
        """Create; without an objectWriteTraceId on every input one bad input fails them all."""
        started = self.clock.now()
        body = await self._object_body(request)
        inputs = self._inputs(body)
        traced = all(isinstance(i, dict) and i.get("objectWriteTraceId") for i in inputs)
        journal = self._begin_batch()
        results, errors = [], []
        try:
            for item in inputs:
                trace = item.get("objectWriteTraceId")
                try:
                    record, problems = self._create(item.get("properties") or {})
                except HubSpotError as exc:
                    if not traced:
                        raise
                    errors.append(
                        self._standard_error(
                            exc.category, exc.message, {"objectWriteTraceId": [str(trace)]}
                        )
                    )
                    continue
                if problems:
                    if not traced:
                        raise self._validation(problems)
                    errors.append(
                        self._standard_error(
                            "VALIDATION_ERROR",
                            f"Property values were not valid: {json.dumps(problems)}",
                            {"objectWriteTraceId": [str(trace)]},
                        )
                    )
                    continue
                assert record is not None
                out = self._render(record, list(record.properties), default=())
                if trace:
                    out["objectWriteTraceId"] = trace
                results.append(out)
        except HubSpotError:
            self._undo_batch(journal)
            raise
        finally:
            self._end_batch()
        return self._batch_response(results, errors, started, ok_status=201)

    async def route_batch_update(self, request: Request) -> Any:
        started = self.clock.now()
        body = await self._object_body(request)
        results, errors = [], []
        for item in self._inputs(body):
            ident = str(item.get("id"))
            record = self._lookup(ident, item.get("idProperty"))
            if record is None:
                errors.append(
                    self._standard_error(
                        "OBJECT_NOT_FOUND", f"Object {ident} not found", {"ids": [ident]}
                    )
                )
                continue
            problems = self._apply(record, item.get("properties") or {})
            if problems:
                errors.append(
                    self._standard_error(
                        "VALIDATION_ERROR",
                        f"Property values were not valid: {json.dumps(problems)}",
                        {"ids": [ident]},
                    )
                )
                continue
            results.append(self._render(record, list(record.properties), default=()))
        return self._batch_response(results, errors, started)

    async def route_batch_upsert(self, request: Request) -> Any:
        """Upsert by `idProperty` (email or a unique property); 207 with per-input errors."""
        started = self.clock.now()
        body = await self._object_body(request)
        inputs = self._inputs(body)
        ids = [str(i.get("id", "")).strip().lower() for i in inputs if isinstance(i, dict)]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"Duplicate IDs found in batch input: {duplicates}"
            )
        failing = (
            self.faults.failing_indexes(len(inputs))
            if self.partial_failure_requested(request)
            else set()
        )
        results, errors = [], []
        journal = self._begin_batch()
        try:
            for index, item in enumerate(inputs):
                ident = str(item.get("id", ""))
                id_property = item.get("idProperty")
                trace = item.get("objectWriteTraceId")
                context = {"ids": [ident]}
                if trace:
                    context["objectWriteTraceId"] = [str(trace)]
                if id_property not in ("email",) and not self.properties.get(
                    str(id_property), {}
                ).get("hasUniqueValue"):
                    errors.append(
                        self._standard_error(
                            "VALIDATION_ERROR",
                            "Unable to perform update/upsert by non-unique 0-1 property "
                            f"{id_property}",
                            context,
                        )
                    )
                    continue
                if index in failing:
                    errors.append(
                        self._standard_error(
                            "VALIDATION_ERROR",
                            "Property values were not valid: [injected failure]",
                            context,
                        )
                    )
                    continue
                properties = dict(item.get("properties") or {})
                record = self._lookup(ident, id_property)
                created = record is None
                try:
                    if record is None:
                        properties.setdefault(str(id_property), ident)
                        record, problems = self._create(properties)
                    else:
                        problems = self._apply(record, properties)
                except HubSpotError as exc:
                    errors.append(self._standard_error(exc.category, exc.message, context))
                    continue
                if problems:
                    errors.append(
                        self._standard_error(
                            "VALIDATION_ERROR",
                            f"Property values were not valid: {json.dumps(problems)}",
                            context,
                        )
                    )
                    continue
                assert record is not None
                out = self._render(record, list(record.properties), default=())
                out["new"] = created
                if trace:
                    out["objectWriteTraceId"] = trace
                results.append(out)
        finally:
            self._end_batch()
        if errors and self.email_upsert_all_or_nothing:
            # "Partial upserts are not supported when using email as the idProperty"
            self._undo_batch(journal)
            first = errors[0]
            raise HubSpotError(
                400,
                str(first["category"]),
                str(first["message"]),
                context=first["context"],
                errors=[
                    {"message": e["message"], "context": e["context"]} for e in errors
                ],
            )
        return self._batch_response(results, errors, started)

    async def route_search(self, request: Request) -> Any:
        body = await self._object_body(request)
        size = len((await request.body()).decode("utf-8", "replace"))
        if size > self.search_body_chars:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"The request body is {size} characters long; "
                f"at most {self.search_body_chars} are allowed",
            )
        limit = int(body.get("limit") or 10)
        if limit > SEARCH_PAGE:
            raise HubSpotError(400, "VALIDATION_ERROR", f"limit {limit} exceeds the maximum of 200")
        after = int(body.get("after") or 0)
        if after + limit > self.search_result_cap:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Search results are limited to {self.search_result_cap} records; "
                f"after {after} with limit {limit} goes beyond",
            )
        groups = body.get("filterGroups") or []
        total_filters = sum(len(g.get("filters") or []) for g in groups)
        if (
            len(groups) > self.search_max_groups
            or any(len(g.get("filters") or []) > self.search_max_filters_per_group for g in groups)
            or total_filters > self.search_max_filters
        ):
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Too many filters: at most {self.search_max_groups} filterGroups of "
                f"{self.search_max_filters_per_group} filters, {self.search_max_filters} in all",
            )
        for group in groups:
            for flt in group.get("filters") or []:
                name = flt.get("propertyName")
                if name not in self.properties:
                    raise HubSpotError(
                        400,
                        "VALIDATION_ERROR",
                        f"There was a problem with the request: property {name} does not exist",
                    )
                if flt.get("operator") in ("IN", "NOT_IN") and not isinstance(
                    flt.get("values"), list
                ):
                    raise HubSpotError(
                        400, "VALIDATION_ERROR", "IN and NOT_IN filters need 'values' (an array)"
                    )
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            raise HubSpotError(400, "VALIDATION_ERROR", "Only one sort is allowed")
        now = self.clock.now()
        candidates = self._search_candidates(groups)
        if self._lagging:  # search holds earlier versions of these: the sorted indexes do not
            self._lagging = {
                i for i in self._lagging if i in self.contacts
                and not self._indexed(self.contacts[i], now)
            }
            chosen = {r.id for r in candidates}
            candidates += [self.contacts[i] for i in sorted(self._lagging) if i not in chosen]
        self.last_search_examined = len(candidates)
        visible = [
            v for v in (self._search_view(r, now) for r in candidates if not r.archived) if v
        ]
        matches = [
            r
            for r in visible
            if not groups
            or any(
                all(
                    search_filter_accepts(
                        f, r.properties, self.properties[f["propertyName"]]["type"]
                    )
                    for f in g.get("filters") or []
                )
                for g in groups
            )
        ]
        query = str(body.get("query") or "").strip().lower()
        if query:  # free text over the default searchable properties
            matches = [r for r in matches if _query_matches(query, r.properties)]
        matches.sort(key=lambda r: int(r.id))
        if sorts:
            sort = sorts[0]
            if isinstance(sort, str):
                name, descending = sort.lstrip("-"), sort.startswith("-")
            else:
                name, descending = sort.get("propertyName"), sort.get("direction") == "DESCENDING"
            ptype = self.properties.get(str(name), {}).get("type")

            def key(r: ContactRecord) -> tuple[int, Any]:
                raw = r.properties.get(str(name))
                if raw is None:
                    return (1, 0)
                if ptype in ("date", "datetime"):
                    return (0, to_epoch_ms(raw) or 0)
                if ptype == "number":
                    return (0, float(raw))
                return (0, raw.lower())

            matches.sort(key=key, reverse=descending)
        page = matches[after : after + limit]
        result: dict[str, Any] = {
            "total": len(matches),
            "results": [
                self._render(r, body.get("properties"), default=_DEFAULT_SEARCH_PROPERTIES)
                for r in page
            ],
        }
        if after + limit < len(matches):
            result["paging"] = {"next": {"after": str(after + limit)}}
        await self.read_page_served()  # edits made "while the client pages"
        return result

    def unsearchable(self) -> list[str]:
        """Test hook: the emails of the live contacts whose last write search does not show
        yet (absent from search, or found with their previous values)."""
        now = self.clock.now()
        return sorted(
            str(r.properties.get("email"))
            for r in self.contacts.values()
            if not r.archived and not self._indexed(r, now)
        )

    def _indexed(self, record: ContactRecord, now: dt.datetime) -> bool:
        """Whether search sees `record`'s last write yet (`searchable_at`)."""
        return self.search_delay <= 0 or searchable_at(record, self.search_delay) <= now

    def _search_view(self, record: ContactRecord, now: dt.datetime) -> ContactRecord | None:
        """The record as search holds it at `now`: as it is once its last write is indexed;
        before, the version the index had (a record edited again before its previous write
        was indexed shows the version before both); None for a record not indexed yet."""
        if self._indexed(record, now):
            return record
        if record.indexed is None:
            return None
        written, properties = record.indexed
        return dataclasses.replace(record, properties=properties, updated_at=written)

    def _group_candidates(self, group: Mapping[str, Any]) -> list[tuple[int, int]] | None:
        """The (epoch ms, id) index entries of the contacts `group` can accept: the narrowest
        range its filters put on one indexed property; None when no filter bounds one.

        An unparseable bound gives no entries: such a filter accepts nothing, as
        `search_filter_accepts` decides.
        """
        bounds: dict[str, tuple[int | None, int | None]] = {}
        for flt in group.get("filters") or []:
            name = flt.get("propertyName")
            operator = flt.get("operator")
            if (
                name not in self._sorted
                or operator not in _RANGE_OPERATORS
                or self.properties[name]["type"] not in ("date", "datetime")
            ):
                continue
            value = to_epoch_ms(str(flt.get("value", "")))
            top = value
            if operator == "BETWEEN":
                top = to_epoch_ms(str(flt["highValue"])) if flt.get("highValue") else None
            if value is None or top is None:
                return []
            bottom = {"GT": value + 1, "LT": None, "LTE": None}.get(operator, value)
            top = {"LT": value - 1, "GT": None, "GTE": None}.get(operator, top)
            low, high = bounds.get(name, (None, None))
            if bottom is not None:
                low = bottom if low is None else max(low, bottom)
            if top is not None:
                high = top if high is None else min(high, top)
            bounds[name] = (low, high)
        narrowest: list[tuple[int, int]] | None = None
        for name, (low, high) in bounds.items():
            entries = self._sorted[name]
            first = 0 if low is None else bisect.bisect_left(entries, (low, -1))
            last = len(entries) if high is None else bisect.bisect_right(entries, (high, 1 << 62))
            if narrowest is None or last - first < len(narrowest):
                narrowest = entries[first:last]
        return narrowest

    def _search_candidates(self, groups: Sequence[Mapping[str, Any]]) -> list[ContactRecord]:
        """The contacts a search must evaluate: when every filter group bounds an indexed
        property, only those the sorted indexes place within the groups' ranges (a superset
        of the matches); otherwise all of them."""
        slices = [self._group_candidates(g) for g in groups]
        if not groups or any(s is None for s in slices):
            return list(self.contacts.values())
        if sum(len(s or ()) for s in slices) * 2 >= len(self.contacts):
            return list(self.contacts.values())  # as many: a scan is cheaper than lookups
        if len(slices) == 1:
            return [self.contacts[str(entry[1])] for entry in slices[0] or ()]
        ids = {entry[1] for entries in slices for entry in entries or ()}
        return [self.contacts[str(i)] for i in ids]
