"""The emulated Mailchimp's handlers of an audience's structure: merge fields, groups, tags,
segments.

Merge fields have types and validated options (a date field keeps its `date_format`); an
audience holds at most 60 interests. Tags are static segments (found by name
case-insensitively, searched by prefix, bulk membership at 500 adds + 500 removes a call);
saved segments hold one flat `match` any/all list of conditions, validated against
`CONDITION_EVALUATORS` on write and evaluated on read; `member_count` counts subscribed
members only. Handlers are `route_<method>_<thing>`.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from segsync_mailchimp.api import MAX_SEGMENT_BULK, iso_time, subscriber_hash
from segsync_mailchimp.emulator.conditions import CONDITION_EVALUATORS, STORED_CONDITION_TYPES
from segsync_mailchimp.emulator.routes import MailchimpRoutes
from segsync_mailchimp.emulator.state import (
    AudienceList,
    InterestCategory,
    MergeField,
    Segment,
    invalid,
    not_found,
    schema_invalid,
)

__all__ = ["MailchimpAudienceRoutes"]

MERGE_TYPES = (
    "text",
    "number",
    "address",
    "phone",
    "date",
    "url",
    "imageurl",
    "radio",
    "dropdown",
    "birthday",
    "zip",
)


class MailchimpAudienceRoutes(MailchimpRoutes):
    """The handlers of the merge-field, group, tag and segment endpoints."""

    max_segment_conditions: int

    # -- handlers: merge fields and interests ----------------------------------------------

    def _merge_json(self, lst: AudienceList, mf: MergeField) -> dict[str, Any]:
        return {
            "merge_id": mf.merge_id,
            "tag": mf.tag,
            "name": mf.name,
            "type": mf.type,
            "required": mf.required,
            "default_value": mf.default_value,
            "public": mf.public,
            "display_order": mf.display_order,
            "options": mf.options,
            "help_text": mf.help_text,
            "list_id": lst.id,
            "_links": [],
        }

    async def route_get_merge_fields(self, request: Request) -> Response:
        lst = self._list(request)
        count, offset = self._page(request)
        fields = list(lst.merge_fields.values())
        if request.query_params.get("type"):
            fields = [f for f in fields if f.type == request.query_params["type"]]
        return self._reply(
            request,
            {
                "merge_fields": [self._merge_json(lst, f) for f in fields[offset : offset + count]],
                "list_id": lst.id,
                "total_items": len(fields),
                "_links": [],
            },
        )

    async def route_post_merge_field(self, request: Request) -> Response:
        lst = self._list(request)
        body = await self._body(request)
        name, type_ = body.get("name"), body.get("type")
        if not name or not type_:
            raise schema_invalid("", "Required fields were not provided: name, type")
        if type_ not in MERGE_TYPES:
            raise schema_invalid("type", f"Value is not one of {list(MERGE_TYPES)}")
        tag = str(body.get("tag") or "").upper()
        if not tag:
            tag = f"MMERGE{max((f.merge_id for f in lst.merge_fields.values()), default=0) + 1}"
        if not re.fullmatch(r"[A-Z0-9_]{1,10}", tag):
            raise invalid(
                "Merge tags may only contain letters, numbers and underscores, and be at most "
                "10 characters long.",
                [{"field": "tag", "message": "Please enter a valid merge tag"}],
            )
        if tag in lst.merge_fields:
            raise invalid(f'A Merge Field with the tag "{tag}" already exists for this list.')
        if len(lst.merge_fields) >= 30:
            raise invalid("This list already has the maximum of 30 merge fields.")
        options = dict(body.get("options") or {})
        if type_ in ("radio", "dropdown") and not options.get("choices"):
            raise invalid("Choices are required for dropdown and radio merge fields.")
        if type_ in ("date", "birthday"):
            options.setdefault("date_format", "MM/DD/YYYY" if type_ == "date" else "MM/DD")
        mf = MergeField(
            merge_id=max((f.merge_id for f in lst.merge_fields.values()), default=0) + 1,
            tag=tag,
            name=str(name),
            type=str(type_),
            required=bool(body.get("required", False)),
            default_value=str(body.get("default_value", "")),
            public=bool(body.get("public", False)),
            display_order=int(body.get("display_order") or len(lst.merge_fields) + 2),
            options=options,
            help_text=str(body.get("help_text", "")),
        )
        lst.merge_fields[tag] = mf
        for member in lst.members.values():
            member.merge_fields.setdefault(tag, "")
        return self._reply(request, self._merge_json(lst, mf))

    def _category(self, lst: AudienceList, request: Request) -> InterestCategory:
        category = lst.categories.get(request.path_params["category_id"])
        if category is None:
            raise not_found()
        return category

    def _category_json(self, lst: AudienceList, c: InterestCategory) -> dict[str, Any]:
        return {
            "list_id": lst.id,
            "id": c.id,
            "title": c.title,
            "display_order": c.display_order,
            "type": c.type,
            "_links": [],
        }

    async def route_get_categories(self, request: Request) -> Response:
        lst = self._list(request)
        count, offset = self._page(request)
        cats = list(lst.categories.values())
        return self._reply(
            request,
            {
                "list_id": lst.id,
                "categories": [self._category_json(lst, c) for c in cats[offset : offset + count]],
                "total_items": len(cats),
                "_links": [],
            },
        )

    async def route_post_category(self, request: Request) -> Response:
        lst = self._list(request)
        body = await self._body(request)
        if not body.get("title") or body.get("type") not in (
            "checkboxes",
            "dropdown",
            "radio",
            "hidden",
        ):
            raise schema_invalid("", "Required fields were not provided: title, type")
        cid = hashlib.md5(
            f"{lst.id}:{body['title']}:{next(self._ids)}".encode(), usedforsecurity=False
        ).hexdigest()[:10]
        category = InterestCategory(
            cid, str(body["title"]), str(body["type"]), int(body.get("display_order") or 0)
        )
        lst.categories[cid] = category
        return self._reply(request, self._category_json(lst, category))

    async def route_get_interests(self, request: Request) -> Response:
        lst = self._list(request)
        category = self._category(lst, request)
        count, offset = self._page(request)
        items = list(category.interests.values())
        return self._reply(
            request,
            {
                "interests": items[offset : offset + count],
                "list_id": lst.id,
                "category_id": category.id,
                "total_items": len(items),
                "_links": [],
            },
        )

    async def route_post_interest(self, request: Request) -> Response:
        lst = self._list(request)
        category = self._category(lst, request)
        body = await self._body(request)
        if not body.get("name"):
            raise schema_invalid("", "Required fields were not provided: name")
        total = sum(len(c.interests) for c in lst.categories.values())
        if total >= 60:
            raise invalid("This list already has the maximum of 60 group names.")
        if any(i["name"] == body["name"] for i in category.interests.values()):
            raise invalid(f'Cannot add "{body["name"]}" because it already exists on the list.')
        iid = hashlib.md5(
            f"{category.id}:{body['name']}:{next(self._ids)}".encode(), usedforsecurity=False
        ).hexdigest()[:10]
        interest = {
            "category_id": category.id,
            "list_id": lst.id,
            "id": iid,
            "name": str(body["name"]),
            "subscriber_count": "0",
            "display_order": int(body.get("display_order") or 0),
            "_links": [],
        }
        category.interests[iid] = interest
        for member in lst.members.values():
            member.interests.setdefault(iid, False)
        return self._reply(request, interest)

    # -- handlers: tags and segments --------------------------------------------------------

    async def route_tag_search(self, request: Request) -> Response:
        lst = self._list(request)
        prefix = request.query_params.get("name", "")
        tags = [
            {"id": s.id, "name": s.name}
            for s in sorted(lst.segments.values(), key=lambda s: s.id)
            if s.type == "static" and s.name.lower().startswith(prefix.lower())
        ]
        page = tags
        if self.tag_search_pages:
            # one page like every collection (count 10 by default), total_items = all matches
            count, offset = self._page(request)
            page = tags[offset : offset + count]
        return self._reply(request, {"tags": page, "total_items": len(tags)})

    def _segment(self, lst: AudienceList, request: Request) -> Segment:
        try:
            sid = int(request.path_params["segment_id"])
        except ValueError:
            raise not_found() from None
        segment = lst.segments.get(sid)
        if segment is None:
            raise not_found()
        return segment

    def _segment_json(self, lst: AudienceList, segment: Segment) -> dict[str, Any]:
        members = self._segment_members(lst, segment)
        data: dict[str, Any] = {
            "id": segment.id,
            "name": segment.name,
            "member_count": sum(1 for m in members if m.status == "subscribed"),
            "type": segment.type,
            "created_at": iso_time(segment.created_at),
            "updated_at": iso_time(segment.updated_at),
            "list_id": lst.id,
            "_links": [],
        }
        if segment.type == "saved":
            data["options"] = segment.options
        return data

    def _validate_options(self, lst: AudienceList, options: Any) -> dict[str, Any]:
        if not isinstance(options, dict):
            raise schema_invalid("options", "Schema describes object, array found instead")
        match = options.get("match", "any")
        if match not in ("any", "all"):
            raise schema_invalid("options.match", "Value is not one of ['any', 'all']")
        conditions = options.get("conditions")
        if isinstance(conditions, list) and any(isinstance(c, list) for c in conditions):
            # the PATCH schema's nested form: the same conditions, one level down
            conditions = [
                c for group in conditions for c in (group if isinstance(group, list) else [group])
            ]
        if not isinstance(conditions, list):
            raise schema_invalid(
                "options.conditions", "Schema describes array, object found instead"
            )
        if len(conditions) > self.max_segment_conditions:
            raise invalid(
                f"Segments may have at most {self.max_segment_conditions} conditions.",
                [
                    {
                        "field": "options.conditions",
                        "message": f"at most {self.max_segment_conditions} conditions",
                    }
                ],
            )
        for index, condition in enumerate(conditions):
            where = f"options.conditions.{index}"
            if not isinstance(condition, dict):
                raise schema_invalid(where, "Schema describes object, array found instead")
            ctype = condition.get("condition_type")
            if ctype in CONDITION_EVALUATORS:
                ops = CONDITION_EVALUATORS[ctype][1]
                if condition.get("op") not in ops:
                    raise schema_invalid(f"{where}.op", f"Value is not one of {sorted(ops)}")
                if ctype == "StaticSegment":
                    target = lst.segments.get(_int_or(condition.get("value"), -1))
                    if target is None or target.type != "static":
                        raise invalid(
                            f"Static segment {condition.get('value')!r} does not exist.",
                            [{"field": f"{where}.value", "message": "unknown segment"}],
                        )
                if (
                    ctype in ("TextMerge", "SelectMerge", "DateMerge", "BirthdayMerge")
                    and str(condition.get("field", "")).upper() not in lst.merge_fields
                ):
                    raise invalid(
                        f"Merge field {condition.get('field')!r} does not exist.",
                        [{"field": f"{where}.field", "message": "unknown merge field"}],
                    )
            elif ctype not in STORED_CONDITION_TYPES:
                raise schema_invalid(
                    where, "Data did not match any of the schemas described in anyOf."
                )
        return {"match": match, "conditions": conditions}

    async def route_get_segments(self, request: Request) -> Response:
        lst = self._list(request)
        count, offset = self._page(request)
        kind = request.query_params.get("type")
        segments = [
            s
            for s in sorted(lst.segments.values(), key=lambda s: s.id)
            if kind is None or s.type == kind
        ]
        return self._reply(
            request,
            {
                "segments": [self._segment_json(lst, s) for s in segments[offset : offset + count]],
                "list_id": lst.id,
                "total_items": len(segments),
                "_links": [],
            },
        )

    async def route_post_segment(self, request: Request) -> Response:
        lst = self._list(request)
        body = await self._body(request)
        if not body.get("name"):
            raise schema_invalid("", "Required fields were not provided: name")
        has_options, has_static = "options" in body, "static_segment" in body
        if has_options == has_static:
            raise invalid('Must provide either an "options" field or a "static_segment" field')
        now = self.clock.now()
        if has_options:
            options = self._validate_options(lst, body["options"])
            segment = Segment(
                next(self._segment_ids), str(body["name"]), "saved", now, now, options
            )
        else:
            if self._tag_segment(lst, str(body["name"]), create=False) is not None:
                raise invalid(f'Tag "{body["name"]}" already exists.')
            segment = Segment(next(self._segment_ids), str(body["name"]), "static", now, now)
            for email in body["static_segment"] or []:
                h = subscriber_hash(str(email))
                if h in lst.members:
                    segment.members[h] = now
        lst.segments[segment.id] = segment
        return self._reply(request, self._segment_json(lst, segment))

    async def route_get_segment(self, request: Request) -> Response:
        lst = self._list(request)
        return self._reply(request, self._segment_json(lst, self._segment(lst, request)))

    async def route_patch_segment(self, request: Request) -> Response:
        lst = self._list(request)
        segment = self._segment(lst, request)
        body = await self._body(request)
        if not body.get("name"):
            raise schema_invalid("", "Required fields were not provided: name")
        if "options" in body and "static_segment" in body:
            raise invalid('Must provide either an "options" field or a "static_segment" field')
        segment.name = str(body["name"])
        if "options" in body:
            if segment.type != "saved":
                raise invalid("Cannot add conditions to a static segment.")
            segment.options = self._validate_options(lst, body["options"])
        if "static_segment" in body:
            if segment.type != "static":
                raise invalid("Cannot set static members of a saved segment.")
            now = self.clock.now()
            segment.members = {
                subscriber_hash(str(e)): now
                for e in body["static_segment"] or []
                if subscriber_hash(str(e)) in lst.members
            }
        segment.updated_at = self.clock.now()
        return self._reply(request, self._segment_json(lst, segment))

    async def route_delete_segment(self, request: Request) -> Response:
        lst = self._list(request)
        segment = self._segment(lst, request)
        del lst.segments[segment.id]
        return Response(status_code=204)

    async def route_bulk_segment(self, request: Request) -> Response:
        lst = self._list(request)
        segment = self._segment(lst, request)
        body = await self._body(request)
        add = body.get("members_to_add") or []
        remove = body.get("members_to_remove") or []
        if len(add) > MAX_SEGMENT_BULK or len(remove) > MAX_SEGMENT_BULK:
            raise invalid(
                "Maximum allowed member items exceeded, please provide at most 500 items in "
                "members_to_add field or members_to_remove field"
            )
        if segment.type != "static":
            raise invalid("Cannot add or remove members of a saved segment.")
        now = self.clock.now()
        added: list[dict[str, Any]] = []
        removed: list[dict[str, Any]] = []
        missing: list[str] = []
        for email in add:
            member = lst.members.get(subscriber_hash(str(email)))
            if member is None or member.status == "archived":
                missing.append(str(email))
                continue
            if member.id not in segment.members:
                segment.members[member.id] = now
                self._tag_edited(member)
                added.append(self._member_json(lst, member))
        for email in remove:
            member = lst.members.get(subscriber_hash(str(email)))
            if member is None:
                missing.append(str(email))
                continue
            if member.id in segment.members:
                del segment.members[member.id]
                self._tag_edited(member)
                removed.append(self._member_json(lst, member))
        errors = (
            [
                {
                    "email_addresses": missing,
                    "error": "Email addresses are not subscribed to the list",
                }
            ]
            if missing
            else []
        )
        segment.updated_at = now
        return JSONResponse(
            {
                "members_added": added,
                "members_removed": removed,
                "errors": errors,
                "total_added": len(added),
                "total_removed": len(removed),
                "error_count": len(missing),
                "_links": [],
            }
        )

    async def route_get_segment_members(self, request: Request) -> Response:
        lst = self._list(request)
        segment = self._segment(lst, request)
        count, offset = self._page(request)
        q = request.query_params
        # subscribed and pending members always; the flags add the other statuses
        visible = {"subscribed", "pending"}
        for flag, status in (
            ("include_cleaned", "cleaned"),
            ("include_transactional", "transactional"),
            ("include_unsubscribed", "unsubscribed"),
        ):
            if q.get(flag, "false").lower() == "true":
                visible.add(status)
        members = [m for m in self._segment_members(lst, segment) if m.status in visible]
        return self._reply(
            request,
            {
                "members": [self._member_json(lst, m) for m in members[offset : offset + count]],
                "total_items": len(members),
                "_links": [],
            },
        )


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
