"""The emulated Mailchimp's HTTP handlers: account, audiences, members, merge fields, groups.

Each handler is a `route_<method>_<thing>` (or `route_<action>`) coroutine taking the
Starlette request: names that cannot be mistaken for the state's `get_<thing>` inspection
helpers. Handlers validate through `MailchimpState`, raise `ApiProblem` for Mailchimp's
errors, and answer with its JSON shapes; `fields` / `exclude_fields` are honoured on every
answer. The handlers of merge fields, groups, tags and segments are in `audience_routes`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from segsync.emulator import Emulator, FaultPlan
from segsync_mailchimp.api import (
    MAX_BATCH_MEMBERS,
    MAX_PAGE,
    iso_time,
    parse_time,
    subscriber_hash,
)
from segsync_mailchimp.emulator.state import (
    ApiProblem,
    AudienceList,
    MailchimpState,
    Member,
    not_found,
    schema_invalid,
)

__all__ = ["MailchimpRoutes"]

STATUSES_PATCH = ("subscribed", "unsubscribed", "cleaned", "pending")
LIST_REQUIRED = (
    "name",
    "contact",
    "permission_reminder",
    "campaign_defaults",
    "email_type_option",
)
CONTACT_REQUIRED = ("company", "address1", "city", "country")
DEFAULTS_REQUIRED = ("from_name", "from_email", "subject", "language")
LIST_SETTINGS = (
    "contact",
    "permission_reminder",
    "use_archive_bar",
    "campaign_defaults",
    "notify_on_subscribe",
    "notify_on_unsubscribe",
    "email_type_option",
    "double_optin",
    "marketing_permissions",
)


class MailchimpRoutes(MailchimpState):
    """The handlers of the account, audience, member, merge-field and group endpoints."""

    faults: FaultPlan

    # -- request helpers --------------------------------------------------------------------

    def _list(self, request: Request) -> AudienceList:
        lst = self.lists.get(request.path_params["list_id"])
        if lst is None:
            raise not_found()
        return lst

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiProblem(
                "JSONParseError",
                "We encountered an unspecified JSON parsing error.",
                title="JSON Parse Error",
            ) from None
        if not isinstance(body, dict):
            raise schema_invalid("", "Schema describes object, array found instead")
        return body

    @staticmethod
    def _hash_param(value: str) -> str:
        return subscriber_hash(value) if "@" in value else value.lower()

    def _page(self, request: Request) -> tuple[int, int]:
        q = request.query_params
        try:
            count = int(q.get("count", "10"))
            offset = int(q.get("offset", "0"))
        except ValueError:
            raise schema_invalid("count", "Schema describes integer") from None
        return max(0, min(count, MAX_PAGE)), max(0, offset)

    def _reply(self, request: Request, data: dict[str, Any], status: int = 200) -> Response:
        q = request.query_params
        if q.get("fields"):
            data = _only_fields(data, [f.strip() for f in q["fields"].split(",") if f.strip()])
        elif q.get("exclude_fields"):
            data = _exclude_fields(
                data, [f.strip() for f in q["exclude_fields"].split(",") if f.strip()]
            )
        return JSONResponse(data, status_code=status)

    # -- handlers: account and lists ---------------------------------------------------------

    async def route_ping(self, request: Request) -> Response:
        return JSONResponse({"health_status": "Everything's Chimpy!"})

    #: the account the emulated key belongs to (`GET /`); a test swaps accounts by setting
    #: these on an instance
    account_id: str = "8d3a3db4d97663a9074efcc16"
    account_name: str = "segsync emulator"

    async def route_root(self, request: Request) -> Response:
        """The API root: the account's details (`fields` / `exclude_fields` honoured)."""
        return self._reply(
            request,
            {
                "account_id": self.account_id,
                "login_id": "1",
                "account_name": self.account_name,
                "email": "owner@segsync.dev",
                "first_name": "segsync",
                "last_name": "emulator",
                "username": "segsync-emulator",
                "role": "owner",
                "member_since": "2020-01-01T00:00:00+00:00",
                "pricing_plan_type": "monthly",
                "account_timezone": "UTC",
                "total_subscribers": sum(len(lst.members) for lst in self.lists.values()),
                "_links": [],
            },
        )

    def _list_json(self, lst: AudienceList) -> dict[str, Any]:
        counts = {
            s: sum(1 for m in lst.members.values() if m.status == s)
            for s in ("subscribed", "unsubscribed", "cleaned")
        }
        return {
            **lst.settings,
            "id": lst.id,
            "web_id": lst.web_id,
            "name": lst.name,
            "date_created": iso_time(lst.created),
            "double_optin": bool(lst.settings.get("double_optin", False)),
            "marketing_permissions": bool(
                lst.marketing_permissions or lst.settings.get("marketing_permissions")
            ),
            "stats": {
                "member_count": counts["subscribed"],
                "unsubscribe_count": counts["unsubscribed"],
                "cleaned_count": counts["cleaned"],
                "merge_field_count": len(lst.merge_fields),
            },
            "_links": [],
        }

    async def route_get_lists(self, request: Request) -> Response:
        count, offset = self._page(request)
        items = list(self.lists.values())
        return self._reply(
            request,
            {
                "lists": [self._list_json(x) for x in items[offset : offset + count]],
                "total_items": len(items),
                "_links": [],
            },
        )

    async def route_post_list(self, request: Request) -> Response:
        """`POST /lists` as specified (`SubscriberList`): name, contact, permission_reminder,
        campaign_defaults and email_type_option required; a new audience with the default
        merge fields."""
        body = await self._body(request)
        missing = [k for k in LIST_REQUIRED if k not in body or body[k] in (None, "")]
        contact, defaults = body.get("contact"), body.get("campaign_defaults")
        if isinstance(contact, dict):
            missing += [f"contact.{k}" for k in CONTACT_REQUIRED if not contact.get(k)]
        elif "contact" not in missing:
            raise schema_invalid("contact", "Schema describes object")
        if isinstance(defaults, dict):
            missing += [f"campaign_defaults.{k}" for k in DEFAULTS_REQUIRED if not defaults.get(k)]
        elif "campaign_defaults" not in missing:
            raise schema_invalid("campaign_defaults", "Schema describes object")
        if missing:
            raise schema_invalid("", f"Required fields were not provided: {', '.join(missing)}")
        for flag in ("email_type_option", "double_optin", "marketing_permissions"):
            if flag in body and not isinstance(body[flag], bool):
                raise schema_invalid(flag, "Schema describes boolean")
        lst = self.seed_list(str(body["name"]))
        lst.settings = {k: body[k] for k in LIST_SETTINGS if k in body}
        return self._reply(request, self._list_json(lst))

    async def route_get_list(self, request: Request) -> Response:
        return self._reply(request, self._list_json(self._list(request)))

    async def route_batch_subscribe(self, request: Request) -> Response:
        lst = self._list(request)
        body = await self._body(request)
        members = body.get("members")
        if not isinstance(members, list):
            raise schema_invalid("", "Required fields were not provided: members")
        if len(members) > MAX_BATCH_MEMBERS:
            raise schema_invalid(
                "members", f"Array has too many items ({len(members)}), maximum 500 allowed"
            )
        update_existing = bool(body.get("update_existing", False))
        sync_tags = bool(body.get("sync_tags", False))
        skip_dupes = request.query_params.get("skip_duplicate_check", "false").lower() == "true"
        failing = (
            self.faults.failing_indexes(len(members))
            if Emulator.partial_failure_requested(request)
            else set()
        )
        new: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        for index, item in enumerate(members):
            email = str(item.get("email_address", "")) if isinstance(item, dict) else ""
            h = subscriber_hash(email)
            if not isinstance(item, dict):
                errors.append(_batch_error(email, "Schema describes object", "ERROR_GENERIC"))
                continue
            if h in seen:
                if skip_dupes:
                    continue
                errors.append(
                    _batch_error(email, f"{email} is a duplicate in this batch", "ERROR_GENERIC")
                )
                continue
            seen.add(h)
            if index in failing:
                errors.append(
                    _batch_error(
                        email,
                        "An unexpected internal error has occurred. Please try again later.",
                        "ERROR_GENERIC",
                    )
                )
                continue
            existing = lst.members.get(h)
            if existing is not None and existing.status != "archived" and not update_existing:
                errors.append(
                    _batch_error(
                        email,
                        f"{email} is already a list member. Use PUT to insert or update list "
                        "members.",
                        "ERROR_CONTACT_EXISTS",
                    )
                )
                continue
            try:
                if self.batch_items_need_status and "status" not in item:
                    # the single-member schemas require a status; the batch item's is silent
                    raise schema_invalid("", "Required fields were not provided: status")
                member, created = self._upsert(
                    lst,
                    item,
                    existing=existing,
                    status=item.get("status"),
                    allow_tags=True,
                )
                if not created and sync_tags and "tags" in item:
                    self._set_tags(lst, member, list(item.get("tags") or []), replace=True)
            except ApiProblem as problem:
                field_error = (problem.errors or [{}])[0]
                errors.append(
                    _batch_error(
                        email,
                        problem.detail,
                        "ERROR_GENERIC",
                        field=field_error.get("field", ""),
                        field_message=field_error.get("message", ""),
                    )
                )
                continue
            (new if created else updated).append(self._member_json(lst, member))
        return JSONResponse(
            {
                "new_members": new,
                "updated_members": updated,
                "errors": errors,
                "total_created": len(new),
                "total_updated": len(updated),
                "error_count": len(errors),
                "_links": [],
            }
        )

    # -- handlers: members ------------------------------------------------------------------

    async def route_list_members(self, request: Request) -> Response:
        lst = self._list(request)
        q = request.query_params
        count, offset = self._page(request)
        status = q.get("status")
        members = [
            m
            for m in lst.members.values()
            if (m.status == status if status else m.status != "archived")
        ]
        try:
            if q.get("since_last_changed"):
                since = parse_time(q["since_last_changed"])
                members = [m for m in members if m.last_changed >= since]
            if q.get("before_last_changed"):
                before = parse_time(q["before_last_changed"])
                members = [m for m in members if m.last_changed < before]
        except ValueError:
            raise schema_invalid("since_last_changed", "Invalid date-time format") from None
        if q.get("vip_only", "").lower() == "true":
            members = [m for m in members if m.vip]
        sort_field = q.get("sort_field")
        if sort_field == "last_changed":
            members.sort(
                key=lambda m: (m.last_changed, m.web_id), reverse=q.get("sort_dir") == "DESC"
            )
        elif sort_field in ("timestamp_opt", "timestamp_signup"):
            members.sort(key=lambda m: getattr(m, sort_field), reverse=q.get("sort_dir") == "DESC")
        page = members[offset : offset + count]
        answer = self._reply(
            request,
            {
                "members": [self._member_json(lst, m) for m in page],
                "list_id": lst.id,
                "total_items": len(members),
                "_links": [],
            },
        )
        await self.read_page_served()  # edits made "while the client pages"
        return answer

    def _member_or_404(
        self, lst: AudienceList, request: Request, *, by_contact_id: bool = False
    ) -> Member:
        """The member a path names: by subscriber hash or address; with `by_contact_id` (the
        GET/PATCH/DELETE member paths, which the spec says also take it) by `contact_id`."""
        value = request.path_params["member"]
        member = lst.members.get(self._hash_param(value))
        if member is None and by_contact_id and "@" not in value:
            member = next((m for m in lst.members.values() if m.contact_id == value), None)
        if member is None:
            raise not_found()
        return member

    async def route_get_member(self, request: Request) -> Response:
        lst = self._list(request)
        member = self._member_or_404(lst, request, by_contact_id=True)
        return self._reply(request, self._member_json(lst, member))

    async def route_post_member(self, request: Request) -> Response:
        lst = self._list(request)
        body = await self._body(request)
        email = self._check_email(body.get("email_address"))
        if "status" not in body:
            raise schema_invalid("", "Required fields were not provided: status")
        existing = lst.members.get(subscriber_hash(email))
        if existing is not None and existing.status != "archived":
            raise ApiProblem(
                "MemberExists",
                f"{email} is already a list member. Use PUT to insert or update list members.",
            )
        member, _ = self._upsert(lst, body, existing=existing, status=body["status"])
        return self._reply(request, self._member_json(lst, member))

    async def route_put_member(self, request: Request) -> Response:
        lst = self._list(request)
        body = await self._body(request)
        path_hash = self._hash_param(request.path_params["member"])
        existing = lst.members.get(path_hash)
        email = body.get("email_address") or (existing.email_address if existing else None)
        email = self._check_email(email)
        if subscriber_hash(email) != path_hash:
            raise ApiProblem(
                "MemberExists",
                f"{email} is already a list member. Use PUT to insert or update list members.",
            )
        if existing is None and "status_if_new" not in body and "status" not in body:
            raise schema_invalid("", "Required fields were not provided: status_if_new")
        member, _ = self._upsert(
            lst,
            body,
            existing=existing,
            status=body.get("status"),
            status_if_new=body.get("status_if_new"),
            allow_tags=False,
        )
        return self._reply(request, self._member_json(lst, member))

    async def route_patch_member(self, request: Request) -> Response:
        """Update a member; an `email_address` that differs renames it (its subscriber hash,
        hence its URL, becomes the new address's; tags and notes follow it). A rename to an
        address the audience holds, or one permanently deleted, is refused (400)."""
        lst = self._list(request)
        member = self._member_or_404(lst, request, by_contact_id=True)
        body = await self._body(request)
        status = body.get("status")
        if status is not None and status not in STATUSES_PATCH:
            raise schema_invalid("status", f"Value is not one of {list(STATUSES_PATCH)}")
        new_email = None
        if "email_address" in body:
            new_email = self._check_email(body["email_address"])
            self._check_rename(lst, member, new_email)
        rest = {k: v for k, v in body.items() if k != "email_address"}
        self._upsert(lst, rest, existing=member, status=status, allow_tags=False)
        if new_email is not None and new_email != member.email_address:
            self._rename(lst, member, new_email)
        return self._reply(request, self._member_json(lst, member))

    def _check_rename(self, lst: AudienceList, member: Member, email: str) -> None:
        target = subscriber_hash(email)
        if target == member.id:
            return
        if target in lst.members:
            raise ApiProblem(
                "MemberExists",
                f"{email} is already a list member. Use PUT to insert or update list members.",
            )
        if target in lst.forgotten:
            raise ApiProblem(
                "ForgottenEmailNotSubscribed",
                f"{email} was permanently deleted and cannot be re-imported. The contact must "
                "re-subscribe to get back on the list.",
            )

    def _rename(self, lst: AudienceList, member: Member, email: str) -> None:
        old = member.id
        member.email_address = email
        new = member.id
        if new != old:
            del lst.members[old]
            lst.members[new] = member
            for segment in lst.segments.values():
                if old in segment.members:
                    segment.members[new] = segment.members.pop(old)
        self._touch(member)

    async def route_archive_member(self, request: Request) -> Response:
        lst = self._list(request)
        member = self._member_or_404(lst, request, by_contact_id=True)
        if member.status == "archived":
            raise ApiProblem(
                "MethodNotAllowed",
                "This list member cannot be removed.  Please contact support.",
                headers={"Allow": "GET, PUT"},
            )
        member.status = "archived"
        self._touch(member)
        return Response(status_code=204)

    async def route_delete_permanent(self, request: Request) -> Response:
        lst = self._list(request)
        member = self._member_or_404(lst, request)
        del lst.members[member.id]
        lst.forgotten.add(member.id)
        for segment in lst.segments.values():
            segment.members.pop(member.id, None)
        return Response(status_code=204)

    async def route_get_member_tags(self, request: Request) -> Response:
        lst = self._list(request)
        member = self._member_or_404(lst, request)
        count, offset = self._page(request)
        tags = [
            {"id": s.id, "name": s.name, "date_added": iso_time(s.members[member.id])}
            for s in sorted(lst.segments.values(), key=lambda s: s.id)
            if s.type == "static" and member.id in s.members
        ]
        return self._reply(
            request,
            {
                "tags": tags[offset : offset + count],
                "total_items": len(tags),
                "_links": [],
            },
        )

    async def route_post_member_tags(self, request: Request) -> Response:
        lst = self._list(request)
        member = self._member_or_404(lst, request)
        body = await self._body(request)
        tags = body.get("tags")
        if not isinstance(tags, list):
            raise schema_invalid("", "Required fields were not provided: tags")
        add = [t["name"] for t in tags if isinstance(t, dict) and t.get("status") == "active"]
        remove = {
            str(t["name"]).casefold()
            for t in tags
            if isinstance(t, dict) and t.get("status") == "inactive"
        }
        self._set_tags(lst, member, add, replace=False)
        changed = False
        for segment in lst.segments.values():
            if (
                segment.type == "static"
                and segment.name.casefold() in remove
                and member.id in segment.members
            ):
                del segment.members[member.id]
                changed = True
        if changed:
            self._tag_edited(member)
        return Response(status_code=204)


# -- small pure helpers ------------------------------------------------------------------


def _batch_error(
    email: str, message: str, code: str, *, field: str = "", field_message: str = ""
) -> dict[str, Any]:
    return {
        "email_address": email,
        "error": message,
        "error_code": code,
        "field": field,
        "field_message": field_message,
    }


def _split_path(path: str) -> list[str]:
    return [p for p in path.split(".") if p]


def _only_fields(data: dict[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """Mailchimp `fields`: keep only the dot paths listed (list items filtered alike)."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in _split_path(path):
            node = node.setdefault(part, {})

    def keep(value: Any, spec: dict[str, Any]) -> Any:
        if not spec:
            return value
        if isinstance(value, list):
            return [keep(v, spec) for v in value]
        if isinstance(value, dict):
            return {k: keep(value[k], sub) for k, sub in spec.items() if k in value}
        return value

    return keep(data, tree)  # type: ignore[no-any-return]


def _exclude_fields(data: dict[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """Mailchimp `exclude_fields`: drop the dot paths listed."""

    def drop(value: Any, parts: list[str]) -> None:
        if isinstance(value, list):
            for v in value:
                drop(v, parts)
        elif isinstance(value, dict) and parts:
            if len(parts) == 1:
                value.pop(parts[0], None)
            elif parts[0] in value:
                drop(value[parts[0]], parts[1:])

    copy = json.loads(json.dumps(data))
    for path in paths:
        drop(copy, _split_path(path))
    return copy  # type: ignore[no-any-return]
