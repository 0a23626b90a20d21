"""The emulated Mailchimp as an `Emulator`: auth, errors, rate limits and the route table.

`MailchimpEmulator` puts together the state (`state`), its handlers (`routes`,
`audience_routes`) and the `segsync.emulator.Emulator` contract: HTTP Basic (any user, the
key as password) or `Bearer`/`OAuth` tokens, 403 Wrong Datacenter for a
`<dc>.api.mailchimp.com` host that is not the key's, problem+json errors, 429 beyond 10
concurrent connections without rate headers, and `X-Trigger-Error: <glossary name>`
answering with that error (Mailchimp's debugging aid).
"""

from __future__ import annotations

import base64
import itertools
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from segsync.emulator import ConcurrencyLimit, Emulator, WindowLimit
from segsync_mailchimp.emulator.activity import MailchimpActivityRoutes
from segsync_mailchimp.emulator.audience_routes import MailchimpAudienceRoutes
from segsync_mailchimp.emulator.state import ApiProblem, invalid
from segsync_mailchimp.errors import ERROR_TITLES, problem_body

__all__ = ["API_PREFIX", "MailchimpEmulator"]

API_PREFIX = "/3.0"
_HOST_DC = re.compile(r"^([a-z]+[0-9]+)\.api\.mailchimp\.com$")


class MailchimpEmulator(MailchimpAudienceRoutes, MailchimpActivityRoutes, Emulator):
    """Stateful Mailchimp Marketing API v3 (see the package docstring for what is modelled).

    Seed state with `seed_list` / `seed_member`; inspect it with `get_member`,
    `get_member_tags`, `get_segment_matches` and `lists`; edit while a read pages with
    `after_read_page`. Where Mailchimp's behaviour is unverified the default is the stricter
    reading, and a flag gives the lenient one:

    - `max_segment_conditions` (default 5; the API documents no cap);
    - `reject_fake_emails` (default on, as Mailchimp does: example.com/.org/.net and
      `.invalid` addresses are refused as "looks fake or invalid");
    - `tag_changes_bump_last_changed` (default off: a tag added or removed does not move the
      member's `last_changed`, so incremental reads do not see it);
    - `batch_items_need_status` (default on: a batch subscribe item without `status` is
      refused, as the single-member schemas require one; the batch item schema is silent);
    - `tag_search_pages` (default on: tag search answers one page, `count` 10 by default,
      with `total_items` counting every match; off answers every match at once).
    """

    platform: ClassVar[str] = "mailchimp"
    read_page_hook: ClassVar[bool] = True
    default_api_key: ClassVar[str] = "0123456789abcdef0123456789abcdef-us21"
    default_list_id: ClassVar[str] = "a1b2c3d4e5"
    max_connections: ClassVar[int] = 10
    base_path: ClassVar[str] = API_PREFIX
    demo_port: ClassVar[int | None] = 8001

    def __init__(
        self,
        *,
        max_segment_conditions: int = 5,
        reject_fake_emails: bool = True,
        tag_changes_bump_last_changed: bool = False,
        batch_items_need_status: bool = True,
        tag_search_pages: bool = True,
        create_default_list: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_segment_conditions = max_segment_conditions
        self.reject_fake_emails = reject_fake_emails
        self.tag_changes_bump_last_changed = tag_changes_bump_last_changed
        self.batch_items_need_status = batch_items_need_status
        self.tag_search_pages = tag_search_pages
        self.lists = {}
        self._ids = itertools.count(1)
        self._segment_ids = itertools.count(10001)
        self._auth_failure = "APIKeyInvalid"
        if create_default_list:
            self.seed_list("segsync test audience", list_id=self.default_list_id)

    @property
    def datacenter(self) -> str:
        """The datacenter of the key the emulator accepts (`us21` of `<hex>-us21`)."""
        return self.api_key.rsplit("-", 1)[-1] if "-" in self.api_key else "us1"

    notes = (
        "addresses at example.com, example.org, example.net or .invalid are refused as "
        "'looks fake or invalid', as the real Mailchimp API does: use real-looking domains",
    )

    # -- Emulator contract ------------------------------------------------------------------

    def client_config(self) -> dict[str, Any]:
        """The `platforms.mailchimp` block that reaches this emulator (without `base_url`)."""
        return {"api_key": self.api_key, "list_id": self.default_list_id}

    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        titles = {
            "unauthorized": "API Key Invalid",
            "rate_limited": "Too Many Requests",
            "server_error": "Internal Server Error",
            "not_found": "Resource Not Found",
            "method_not_allowed": "Method Not Allowed",
        }
        if code == "not_found":
            message = "The requested resource could not be found."
        title = ERROR_TITLES[code][1] if code in ERROR_TITLES else titles.get(code, code)
        return self._problem(status, title, message, extra.get("errors"), extra.get("headers"))

    def _problem(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        instance = str(uuid.UUID(int=self.random.getrandbits(128)))
        body = problem_body(status, title, detail, instance=instance, errors=errors)
        return JSONResponse(
            body,
            status_code=status,
            media_type="application/problem+json",
            headers={
                "X-Request-Id": instance,
                "Link": "<https://us1.api.mailchimp.com/schema/3.0/ProblemDetailDocument.json>; "
                'rel="describedBy"',
                **(headers or {}),
            },
        )

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        key = None
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credential).decode()
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            key = decoded.partition(":")[2]
        elif scheme.lower() in ("bearer", "oauth"):
            key = credential
        if not header:
            self._auth_failure = "APIKeyMissing"
            return False
        if key != self.api_key:
            self._auth_failure = "APIKeyInvalid"
            return False
        host = request.url.hostname or ""
        m = _HOST_DC.match(host)
        if m and m.group(1) != self.datacenter:
            self._auth_failure = "WrongDatacenter"
            return False
        return True

    def unauthorized_response(self) -> Response:
        name = self._auth_failure
        status, title = ERROR_TITLES[name]
        detail = {
            "APIKeyMissing": "Your request did not include an API key.",
            "APIKeyInvalid": "Your API key may be invalid, or you've attempted to access the "
            "wrong datacenter.",
            "WrongDatacenter": "The API key provided is linked to a different datacenter.",
        }[name]
        return self._problem(status, title, detail)

    def rate_limits(self) -> Sequence[WindowLimit | ConcurrencyLimit]:
        return (ConcurrencyLimit("simultaneous connections", self.max_connections),)

    def rate_limited_response(
        self, limit: WindowLimit | ConcurrencyLimit, retry_after: float
    ) -> Response:
        # Mailchimp sends no Retry-After and no rate-limit headers
        return self._problem(
            429,
            "Too Many Requests",
            "You have exceeded the limit of 10 simultaneous connections.",
        )

    def routes(self) -> Sequence[BaseRoute]:
        p = API_PREFIX
        lp = p + "/lists/{list_id}"
        table: list[tuple[str, Callable[..., Any], list[str]]] = [
            (p + "/ping", self.route_ping, ["GET"]),
            (p + "/", self.route_root, ["GET"]),
            (p + "/lists", self.route_get_lists, ["GET"]),
            (p + "/lists", self.route_post_list, ["POST"]),
            (lp, self.route_get_list, ["GET"]),
            (lp, self.route_batch_subscribe, ["POST"]),
            (lp + "/members", self.route_list_members, ["GET"]),
            (lp + "/members", self.route_post_member, ["POST"]),
            (lp + "/members/{member}", self.route_get_member, ["GET"]),
            (lp + "/members/{member}", self.route_put_member, ["PUT"]),
            (lp + "/members/{member}", self.route_patch_member, ["PATCH"]),
            (lp + "/members/{member}", self.route_archive_member, ["DELETE"]),
            (
                lp + "/members/{member}/actions/delete-permanent",
                self.route_delete_permanent,
                ["POST"],
            ),
            (lp + "/members/{member}/tags", self.route_get_member_tags, ["GET"]),
            (lp + "/members/{member}/tags", self.route_post_member_tags, ["POST"]),
            (lp + "/merge-fields", self.route_get_merge_fields, ["GET"]),
            (lp + "/merge-fields", self.route_post_merge_field, ["POST"]),
            (lp + "/interest-categories", self.route_get_categories, ["GET"]),
            (lp + "/interest-categories", self.route_post_category, ["POST"]),
            (
                lp + "/interest-categories/{category_id}/interests",
                self.route_get_interests,
                ["GET"],
            ),
            (
                lp + "/interest-categories/{category_id}/interests",
                self.route_post_interest,
                ["POST"],
            ),
            (lp + "/tag-search", self.route_tag_search, ["GET"]),
            (lp + "/segments", self.route_get_segments, ["GET"]),
            (lp + "/segments", self.route_post_segment, ["POST"]),
            (lp + "/segments/{segment_id}", self.route_get_segment, ["GET"]),
            (lp + "/segments/{segment_id}", self.route_patch_segment, ["PATCH"]),
            (lp + "/segments/{segment_id}", self.route_delete_segment, ["DELETE"]),
            (lp + "/segments/{segment_id}", self.route_bulk_segment, ["POST"]),
            (lp + "/segments/{segment_id}/members", self.route_get_segment_members, ["GET"]),
            (p + "/campaigns", self.route_get_campaigns, ["GET"]),
            (
                p + "/reports/{campaign_id}/email-activity",
                self.route_get_email_activity,
                ["GET"],
            ),
        ]
        return [
            Route(path, self._handler(fn), methods=methods, name=f"{fn.__name__}_{methods[0]}")
            for path, fn, methods in table
        ]

    def _handler(self, fn: Callable[..., Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                trigger = request.headers.get("x-trigger-error")
                if trigger:
                    # Mailchimp's debugging aid: answer with the named glossary error
                    if trigger not in ERROR_TITLES:
                        raise invalid(f"Unknown error name in X-Trigger-Error: {trigger}")
                    raise ApiProblem(trigger, f"Triggered {trigger} error.")
                return await fn(request)  # type: ignore[no-any-return]
            except ApiProblem as problem:
                return self._problem(
                    problem.status, problem.title, problem.detail, problem.errors, problem.headers
                )

        return endpoint

    # -- helpers ----------------------------------------------------------------------------
