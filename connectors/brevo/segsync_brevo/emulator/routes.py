"""The HTTP handlers of the Brevo emulator, one `route_<...>` method per endpoint and method.

Each handler reads its request, applies Brevo's rules to the account's state (`BrevoState`)
and returns the body Brevo returns (a dict is sent as JSON with status 200), or raises
`BrevoError` for Brevo's error answers. Fact-sheet quirks reproduced: import ignores boolean
attributes; list add/remove matches emails case-sensitively and answers 400 when no item
succeeds; changing a blocklisted contact's email clears the blocklist; `/contacts/batch` is
all-or-nothing and marked deprecated; segments are read-only; an import with a row it cannot
read (or after `fail_imports`) ends `failed` with an `error`; a contact's `statistics` has
the described shape; a folder's lists carry no `folderId`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from segsync.emulator.base import Emulator
from segsync_brevo.emulator.state import (
    ATTRIBUTE_CATEGORIES,
    MAX_IMPORT_BYTES,
    MAX_LIST_ITEMS,
    TYPES_BY_CATEGORY,
    AttributeRecord,
    BrevoError,
    BrevoState,
    ContactRecord,
    ProcessFailed,
)

__all__ = ["BrevoRoutes"]


class BrevoRoutes(BrevoState, Emulator):
    """The route handlers; see the module docstring."""

    read_page_hook: ClassVar[bool] = True  # GET /contacts calls `read_page_served`
    owner_email: str

    # -- request parameters ------------------------------------------------------------------

    async def _json(self, request: Request, *, required: bool = True) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            if required:
                raise BrevoError(400, "missing_parameter", "No inputs in the body")
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise BrevoError(400, "bad_request", "Input must be a valid JSON object") from None
        if not isinstance(body, dict):
            raise BrevoError(400, "bad_request", "Input must be a valid JSON object")
        return body

    @staticmethod
    def _int_param(request: Request, name: str, default: int, maximum: int | None = None) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BrevoError(400, "invalid_parameter", f"{name} must be an integer") from None
        if value < 0 or (maximum is not None and value > maximum):
            raise BrevoError(
                400,
                "out_of_range",
                f"{name} must be between 0 and {maximum}"
                if maximum is not None
                else f"{name} must not be negative",
            )
        return value

    @staticmethod
    def _date_param(request: Request, name: str) -> dt.datetime | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
        except ValueError:
            raise BrevoError(400, "invalid_parameter", f"{name} is not a valid date-time") from None
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

    @staticmethod
    def _paged(request: Request, items: list[Any], maximum: int) -> tuple[list[Any], int]:
        limit = BrevoRoutes._int_param(request, "limit", 10, maximum)
        offset = BrevoRoutes._int_param(request, "offset", 0)
        if request.query_params.get("sort", "desc") == "desc":
            items = list(reversed(items))
        return items[offset : offset + limit], len(items)

    # -- contacts ------------------------------------------------------------------------

    async def route_list_contacts(self, request: Request) -> dict[str, Any]:
        limit = self._int_param(request, "limit", 50, 1000)
        offset = self._int_param(request, "offset", 0)
        sort = request.query_params.get("sort", "desc")
        if sort not in ("asc", "desc"):
            raise BrevoError(400, "invalid_parameter", "sort must be asc or desc")
        modified_since = self._date_param(request, "modifiedSince")
        created_since = self._date_param(request, "createdSince")
        try:
            list_ids = [
                int(v)
                for raw in request.query_params.getlist("listIds")
                for v in raw.split(",")
                if v
            ]
        except ValueError:
            raise BrevoError(400, "invalid_parameter", "listIds must be integers") from None
        segment_id = request.query_params.get("segmentId")
        if list_ids and segment_id:
            raise BrevoError(400, "invalid_parameter", "Either listIds or segmentId can be passed")
        items = list(self.contacts.values())
        if modified_since is not None:
            items = [c for c in items if c.modified_at >= modified_since]
        if created_since is not None:
            items = [c for c in items if c.created_at >= created_since]
        if list_ids:
            items = [c for c in items if c.list_ids & set(list_ids)]
        if segment_id:
            segment = self.segments.get(int(segment_id)) if segment_id.isdigit() else None
            if segment is None:
                raise BrevoError(404, "document_not_found", "Segment ID does not exist")
            items = [c for c in items if segment.predicate(self.contact_json(c))]
        items.sort(key=lambda c: (c.created_at, c.id), reverse=(sort == "desc"))
        page = items[offset : offset + limit]
        answer = {"contacts": [self.contact_json(c) for c in page], "count": len(items)}
        await self.read_page_served()  # edits made "while the client pages"
        return answer

    async def route_create_contact(self, request: Request) -> Response:
        body = await self._json(request)
        attributes = body.get("attributes") or {}
        email = body.get("email")
        if email is None and "ext_id" not in body and "SMS" not in attributes:
            raise BrevoError(
                400,
                "missing_parameter",
                "Please provide Email or SMS attribute value to create user",
            )
        email = self._valid_email(email) if email is not None else None
        existing = self._by_email.get(email) if email else None
        if existing is None and body.get("ext_id") in self._by_ext_id:
            existing = self._by_ext_id[body["ext_id"]]
        list_ids = self._check_lists(body.get("listIds", []))
        self._check_unique(existing, attributes)
        if existing is not None:
            if not body.get("updateEnabled", False):
                raise BrevoError(
                    400,
                    "duplicate_parameter",
                    "Unable to create contact, email is already associated with another Contact",
                    metadata={"duplicate_identifiers": ["email"]},
                )
            contact = self.contacts[existing]
            self._update_contact(contact, body, list_ids)
            return Response(status_code=204)
        contact = self._new_contact(email)
        if "ext_id" in body:
            contact.ext_id = str(body["ext_id"])
            self._by_ext_id[contact.ext_id] = contact.id
        self._set_attributes(contact, attributes, source="api")
        self._set_blacklist(contact, body.get("emailBlacklisted"), "api")
        contact.sms_blacklisted = bool(body.get("smsBlacklisted", False))
        contact.list_ids |= list_ids
        return JSONResponse({"id": contact.id}, status_code=201)

    #: the account the emulated key belongs to (`GET /account`); a test swaps accounts by
    #: setting these on an instance (`owner_email` is the login)
    organization_id: str | None = "65a1f0c2e4b0a1b2c3d4e5f6"
    company_name: str = "segsync emulator"

    async def route_account(self, request: Request) -> dict[str, Any]:
        """`GET /account`: the login, company and plan of the account the key reaches, with
        its `organization_id` as the current API answers it (None leaves it out, as the
        2025-02 description does)."""
        body: dict[str, Any] = {
            "email": self.owner_email,
            "firstName": "segsync",
            "lastName": "emulator",
            "companyName": self.company_name,
            "address": {"street": "", "city": "", "zipCode": "", "country": ""},
            "plan": [{"type": "free", "credits": 300, "creditsType": "sendLimit"}],
            "relay": {
                "enabled": True,
                "data": {"userName": self.owner_email, "relay": "smtp-relay.brevo.com",
                         "port": 587},
            },
            "marketingAutomation": {"enabled": False},
        }
        if self.organization_id is not None:
            body["organization_id"] = self.organization_id
        return body

    async def route_contact(self, request: Request) -> Response:
        identifier = request.path_params["identifier"]
        identifier_type = request.query_params.get("identifierType")
        contact = self._find(identifier, identifier_type, method=request.method)
        if request.method == "GET":
            data = self.contact_json(contact)
            data["statistics"] = self.contact_statistics(contact)
            return JSONResponse(data)
        if request.method == "DELETE":
            if contact.email == self.owner_email:
                raise BrevoError(405, "method_not_allowed", "You cannot delete the account owner")
            del self.contacts[contact.id]
            if contact.email:
                self._by_email.pop(contact.email, None)
            if contact.ext_id:
                self._by_ext_id.pop(contact.ext_id, None)
            return Response(status_code=204)
        body = await self._json(request)
        self._update_contact(contact, body, self._check_lists(body.get("listIds", [])))
        return Response(status_code=204)

    async def route_batch_update(self, request: Request) -> Response:
        body = await self._json(request)
        items = body.get("contacts")
        if not isinstance(items, list) or not items:
            raise BrevoError(400, "missing_parameter", "contacts is required")
        targets = []
        for item in items:
            keys = [k for k in ("email", "id", "sms") if k in item]
            if len(keys) != 1:
                raise BrevoError(400, "invalid_parameter", "Pass exactly one of email, id or sms")
            kind = {"email": "email_id", "id": "contact_id", "sms": "phone_id"}[keys[0]]
            targets.append(self._find(str(item[keys[0]]), kind, method="PUT"))  # all-or-nothing
        for contact, item in zip(targets, items, strict=True):
            self._update_contact(contact, item, self._check_lists(item.get("listIds", [])))
        return Response(status_code=204, headers={"Deprecation": "@1793318400"})

    async def route_double_opt_in(self, request: Request) -> Response:
        body = await self._json(request)
        missing = [
            k for k in ("email", "includeListIds", "templateId", "redirectionUrl") if k not in body
        ]
        if missing:
            raise BrevoError(400, "missing_parameter", f"{', '.join(missing)} is required")
        email = self._valid_email(body["email"])
        self._check_lists(body["includeListIds"])
        self.pending_double_opt_in[email] = dict(body)
        return Response(status_code=204 if email in self._by_email else 201)

    # -- import and processes -------------------------------------------------------------

    async def route_import_contacts(self, request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_IMPORT_BYTES:
            raise BrevoError(400, "invalid_parameter", "The body must be smaller than 10MB")
        body = await self._json(request)
        sources = [k for k in ("fileUrl", "fileBody", "jsonBody") if k in body]
        if len(sources) != 1:
            raise BrevoError(
                400,
                "invalid_parameter",
                "Please provide exactly one of fileUrl, fileBody or jsonBody",
            )
        if sources[0] == "fileUrl":
            raise BrevoError(400, "invalid_parameter", "fileUrl cannot be fetched by this emulator")
        rows = body["jsonBody"] if sources[0] == "jsonBody" else _csv_rows(body["fileBody"])
        if not isinstance(rows, list):
            raise BrevoError(400, "invalid_parameter", "jsonBody must be an array")
        if "listIds" in body:
            list_ids = self._check_lists(body["listIds"])
        elif isinstance(body.get("newList"), dict):
            new = body["newList"]
            list_id = next(self._list_ids)
            self.lists[list_id] = {
                "name": str(new.get("listName", "Imported")),
                "folderId": int(new.get("folderId", 1)),
                "createdAt": self._now(),
            }
            list_ids = {list_id}
        else:
            raise BrevoError(400, "missing_parameter", "listIds or newList is required")
        update_existing = bool(body.get("updateExistingContacts", True))
        empty_clears = bool(body.get("emptyContactsAttributes", False)) and update_existing
        blacklist = bool(body.get("emailBlacklist", False))
        failing = (
            self.faults.failing_indexes(len(rows))
            if self.partial_failure_requested(request)
            else set()
        )

        def apply(when: dt.datetime) -> dict[str, Any]:
            malformed = [
                i + 1
                for i, row in enumerate(rows)
                if not isinstance(row, dict)
                or not isinstance(row.get("attributes", {}), dict)
            ]
            if malformed:
                raise ProcessFailed(
                    f"Invalid row(s) {', '.join(map(str, malformed[:10]))}: each row must be an "
                    "object with an email and an attributes object"
                )
            if self.import_failure is not None:
                raise ProcessFailed(self.import_failure)
            report = {
                "invalid_emails": 0,
                "duplicate_contact_id": 0,
                "duplicate_ext_id": 0,
                "duplicate_email_id": 0,
                "duplicate_phone_id": 0,
                "duplicate_whatsapp_id": 0,
                "duplicate_landline_number_id": 0,
            }
            seen: set[str] = set()
            for index, row in enumerate(rows):
                email = row.get("email") if isinstance(row, dict) else None
                try:
                    email = self._valid_email(email)
                except BrevoError:
                    report["invalid_emails"] += 1
                    continue
                if index in failing:
                    report["invalid_emails"] += 1
                    continue
                if email in seen:
                    report["duplicate_email_id"] += 1
                    continue
                seen.add(email)
                cid = self._by_email.get(email)
                if cid is None:
                    contact = self._new_contact(email, when)
                    self._set_attributes(contact, row.get("attributes") or {}, source="import")
                elif update_existing:
                    contact = self.contacts[cid]
                    self._set_attributes(
                        contact,
                        row.get("attributes") or {},
                        source="import",
                        empty_clears=empty_clears,
                    )
                else:
                    contact = self.contacts[cid]
                if blacklist:
                    self._set_blacklist(contact, True, "import")
                contact.list_ids |= list_ids
                self._touch(contact, when)
            return {"import": report}

        process = self._start_process("IMPORTUSER", len(rows), apply)
        return JSONResponse({"processId": process.id}, status_code=202)

    async def route_get_process(self, request: Request) -> dict[str, Any]:
        process = self.processes.get(request.path_params["process_id"])
        if process is None:
            raise BrevoError(404, "document_not_found", "Process ID not found")
        return self._process_json(process)

    async def route_list_processes(self, request: Request) -> dict[str, Any]:
        limit = self._int_param(request, "limit", 10, 50)
        offset = self._int_param(request, "offset", 0)
        sort = request.query_params.get("sort", "desc")
        items = sorted(self.processes.values(), key=lambda p: p.id, reverse=(sort == "desc"))
        return {
            "processes": [self._process_json(p) for p in items[offset : offset + limit]],
            "count": len(items),
        }

    # -- attributes ----------------------------------------------------------------------

    async def route_list_attributes(self, request: Request) -> dict[str, Any]:
        return {"attributes": [a.as_json() for a in self.attributes.values()]}

    async def route_attribute(self, request: Request) -> Response:
        category = request.path_params["category"]
        name = request.path_params["name"].upper()
        if category not in ATTRIBUTE_CATEGORIES:
            raise BrevoError(400, "invalid_parameter", f"Invalid attribute category {category!r}")
        existing = self.attributes.get(name)
        if request.method == "DELETE":
            if existing is None or existing.category != category:
                raise BrevoError(404, "document_not_found", "Attribute not found")
            del self.attributes[name]
            for contact in self.contacts.values():
                contact.attributes.pop(name, None)
            return Response(status_code=204)
        body = await self._json(request)
        if request.method == "PUT":
            if existing is None or existing.category != category:
                raise BrevoError(404, "document_not_found", "Attribute not found")
            if "enumeration" in body:
                if category != "category":
                    raise BrevoError(
                        400, "invalid_parameter", "enumeration is only for category attributes"
                    )
                merged = {e["value"]: e for e in existing.enumeration}
                merged.update({int(e["value"]): dict(e) for e in body["enumeration"]})
                existing.enumeration = sorted(merged.values(), key=lambda e: e["value"])
            if "multiCategoryOptions" in body:
                if existing.type != "multiple-choice":
                    raise BrevoError(400, "invalid_parameter", "Not a multiple-choice attribute")
                for option in body["multiCategoryOptions"]:
                    if option not in existing.options:
                        existing.options.append(str(option))
            if "value" in body:
                existing.value = str(body["value"])
            return Response(status_code=204)
        if existing is not None:
            raise BrevoError(400, "invalid_parameter", "Attribute name must be unique")
        kind = body.get("type")
        if category == "category":
            kind = "category"
            enumeration = body.get("enumeration")
            if not enumeration:
                raise BrevoError(
                    400, "missing_parameter", "enumeration is required for category attributes"
                )
        elif category in ("calculated", "global"):
            if "value" not in body:
                raise BrevoError(400, "missing_parameter", "value is required")
            kind = None
        elif kind not in TYPES_BY_CATEGORY[category]:
            raise BrevoError(
                400, "invalid_parameter", f"Invalid type {kind!r} for category {category!r}"
            )
        record = AttributeRecord(
            name,
            category,
            kind,
            enumeration=[
                {"value": int(e["value"]), "label": str(e["label"])}
                for e in body.get("enumeration") or []
            ],
            options=[str(o) for o in body.get("multiCategoryOptions") or []],
            value=body.get("value"),
        )
        self.attributes[name] = record
        return Response(status_code=201)

    async def route_delete_option(self, request: Request) -> Response:
        attribute = self.attributes.get(request.path_params["name"].upper())
        option = request.path_params["option"]
        if (
            attribute is None
            or attribute.type != "multiple-choice"
            or option not in attribute.options
        ):
            raise BrevoError(404, "document_not_found", "Attribute option not found")
        attribute.options.remove(option)
        return Response(status_code=204)

    # -- folders and lists -------------------------------------------------------------------

    async def route_folders(self, request: Request) -> Response:
        if request.method == "POST":
            body = await self._json(request)
            if not isinstance(body.get("name"), str) or not body["name"]:
                raise BrevoError(400, "missing_parameter", "name is required")
            folder_id = next(self._folder_ids)
            self.folders[folder_id] = body["name"]
            return JSONResponse({"id": folder_id}, status_code=201)
        page, count = self._paged(request, sorted(self.folders), 50)
        return JSONResponse({"folders": [self._folder_json(i) for i in page], "count": count})

    async def route_folder(self, request: Request) -> Response:
        folder_id = request.path_params["folder_id"]
        if folder_id not in self.folders:
            raise BrevoError(404, "document_not_found", "Folder ID not found")
        if request.method == "GET":
            return JSONResponse(self._folder_json(folder_id))
        if request.method == "PUT":
            body = await self._json(request)
            self.folders[folder_id] = str(body.get("name", self.folders[folder_id]))
            return Response(status_code=204)
        del self.folders[folder_id]
        for list_id in [i for i, data in self.lists.items() if data["folderId"] == folder_id]:
            self._delete_list(list_id)
        return Response(status_code=204)

    async def route_folder_lists(self, request: Request) -> dict[str, Any]:
        folder_id = request.path_params["folder_id"]
        if folder_id not in self.folders:
            raise BrevoError(404, "document_not_found", "Folder ID not found")
        ids = sorted(i for i, data in self.lists.items() if data["folderId"] == folder_id)
        page, count = self._paged(request, ids, 50)
        return {"lists": [self._list_json(i, folder=False) for i in page], "count": count}

    async def route_lists(self, request: Request) -> Response:
        if request.method == "POST":
            body = await self._json(request)
            missing = [k for k in ("name", "folderId") if k not in body]
            if missing:
                raise BrevoError(400, "missing_parameter", f"{', '.join(missing)} is required")
            if body["folderId"] not in self.folders:
                raise BrevoError(404, "document_not_found", "Folder ID does not exist")
            list_id = next(self._list_ids)
            self.lists[list_id] = {
                "name": str(body["name"]),
                "folderId": body["folderId"],
                "createdAt": self._now(),
            }
            return JSONResponse({"id": list_id}, status_code=201)
        page, count = self._paged(request, sorted(self.lists), 50)
        return JSONResponse({"lists": [self._list_json(i) for i in page], "count": count})

    async def route_list(self, request: Request) -> Response:
        list_id = request.path_params["list_id"]
        if list_id not in self.lists:
            raise BrevoError(404, "document_not_found", "List ID not found")
        if request.method == "GET":
            data = self._list_json(list_id)
            data["createdAt"] = self.stamp(self.lists[list_id]["createdAt"])
            start = self._date_param(request, "startDate")
            end = self._date_param(request, "endDate")
            if (start is None) != (end is None):
                raise BrevoError(400, "invalid_parameter", "startDate and endDate go together")
            data["campaignStats"] = self.list_campaign_stats(list_id, start, end)
            data["dynamicList"] = False
            return JSONResponse(data)
        if request.method == "PUT":
            body = await self._json(request)
            if ("name" in body) == ("folderId" in body):
                raise BrevoError(400, "invalid_parameter", "Pass either name or folderId")
            if "folderId" in body and body["folderId"] not in self.folders:
                raise BrevoError(404, "document_not_found", "Folder ID does not exist")
            self.lists[list_id].update(body)
            return Response(status_code=204)
        self._delete_list(list_id)
        return Response(status_code=204)

    async def route_list_members(self, request: Request) -> dict[str, Any]:
        list_id = request.path_params["list_id"]
        if list_id not in self.lists:
            raise BrevoError(404, "document_not_found", "List ID not found")
        limit = self._int_param(request, "limit", 50, 500)
        offset = self._int_param(request, "offset", 0)
        since = self._date_param(request, "modifiedSince")
        items = [c for c in self.contacts.values() if list_id in c.list_ids]
        if since is not None:
            items = [c for c in items if c.modified_at >= since]
        items.sort(
            key=lambda c: (c.created_at, c.id),
            reverse=request.query_params.get("sort", "desc") == "desc",
        )
        return {
            "contacts": [self.contact_json(c) for c in items[offset : offset + limit]],
            "count": len(items),
        }

    async def route_list_membership(self, request: Request) -> Response:
        list_id = request.path_params["list_id"]
        action = request.path_params["action"]
        if action not in ("add", "remove"):
            raise BrevoError(404, "document_not_found", "Not found")
        if list_id not in self.lists:
            raise BrevoError(404, "document_not_found", "List ID not found")
        body = await self._json(request)
        if action == "remove" and body.get("all") is True:
            members = [c for c in self.contacts.values() if list_id in c.list_ids]

            def remove_all(when: dt.datetime) -> dict[str, Any]:
                for contact in members:
                    contact.list_ids.discard(list_id)
                    self._touch(contact, when)
                return {}

            process = self._start_process("REMOVE_LIST_CONTACTS", len(members), remove_all)
            return JSONResponse(
                {"contacts": {"total": len(members), "processId": process.id}}, status_code=201
            )
        keys = [k for k in ("emails", "ids", "extIds") if k in body]
        if len(keys) != 1:
            raise BrevoError(400, "invalid_parameter", "Pass exactly one of emails, ids or extIds")
        items = body[keys[0]]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_LIST_ITEMS:
            raise BrevoError(
                400,
                "out_of_range",
                f"You can pass between 1 and {MAX_LIST_ITEMS} items in one request",
            )
        failing = (
            self.faults.failing_indexes(len(items))
            if self.partial_failure_requested(request)
            else set()
        )
        success: list[Any] = []
        failure: list[Any] = []
        for index, item in enumerate(items):
            contact: ContactRecord | None = None
            if keys[0] == "emails":
                # matched case-sensitively against the stored (lower-case) address
                cid = self._by_email.get(item) if isinstance(item, str) else None
                contact = None if cid is None else self.contacts[cid]
            elif keys[0] == "ids":
                contact = self.contacts.get(item) if isinstance(item, int) else None
            else:
                cid = self._by_ext_id.get(item) if isinstance(item, str) else None
                contact = None if cid is None else self.contacts[cid]
            present = contact is not None and list_id in contact.list_ids
            ok = (
                contact is not None
                and index not in failing
                and (not present if action == "add" else present)
            )
            if not ok or contact is None:
                failure.append(item)
                continue
            if action == "add":
                contact.list_ids.add(list_id)
            else:
                contact.list_ids.discard(list_id)
            self._touch(contact)
            success.append(item)
        if not success:
            raise BrevoError(
                400, "invalid_parameter", "Contact already in list and/or does not exist"
            )
        # an empty `failure` would fit both of the description's oneOf arrays: left out
        answer: dict[str, Any] = {"success": success}
        if failure:
            answer["failure"] = failure
        return JSONResponse({"contacts": answer}, status_code=201)

    # -- segments (read-only) -------------------------------------------------------------

    async def route_list_segments(self, request: Request) -> dict[str, Any]:
        page, count = self._paged(request, sorted(self.segments), 50)
        return {
            "segments": [
                {
                    "id": i,
                    "segmentName": self.segments[i].name,
                    "categoryName": self.segments[i].category,
                    "updatedAt": self.stamp(self.segments[i].updated_at),
                }
                for i in page
            ],
            "count": count,
        }

    async def route_segments_read_only(self, request: Request) -> Response:
        raise BrevoError(405, "method_not_allowed", "Segments cannot be changed through the API")


def _csv_rows(text: Any) -> list[Any]:
    """`fileBody` CSV (`;`-separated, header of attribute names) as jsonBody rows."""
    if not isinstance(text, str):
        raise BrevoError(400, "invalid_parameter", "fileBody must be a string")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = [h.strip().upper() for h in lines[0].split(";")]
    rows: list[Any] = []
    for line in lines[1:]:
        cells = line.split(";")
        if len(cells) > len(header):
            rows.append(None)  # more cells than the header names: the import fails on it
            continue
        values = dict(zip(header, (v.strip() for v in cells), strict=False))
        email = values.pop("EMAIL", None)
        rows.append({"email": email, "attributes": values})
    return rows
