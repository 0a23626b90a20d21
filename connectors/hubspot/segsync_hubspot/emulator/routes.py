"""The HubSpot emulator: its routing table and HubSpot's answers to auth and rate limits.

`HubSpotEmulator` serves the paths of every configured API version at once: `v3`
(`/crm/v3/objects/contacts`, `/crm/v3/lists`, `/crm/v3/properties/contacts`,
`/communication-preferences/v3/...`) and dated versions such as `2026-03`
(`/crm/objects/2026-03/contacts`, `/crm/lists/2026-03`, `/crm/properties/2026-03/contacts`,
`/communication-preferences/2026-03/...`, whose shape is v4's), and the account details
(`/account-info/{v3|2026-03}/details`). Each path goes to a `route_*`
handler; a handler's `HubSpotError` becomes HubSpot's error body. Auth is a Bearer token; the
rolling 10-second limit (100 or 190 by tier), the daily limit and the search limit (5 a
second) answer with HubSpot's 429 bodies, and non-search answers carry the
`X-HubSpot-RateLimit-*` headers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from segsync.emulator.base import ConcurrencyLimit, WindowLimit
from segsync_hubspot.emulator.activity import HubSpotActivity
from segsync_hubspot.emulator.consent_routes import ConsentRoutes
from segsync_hubspot.emulator.contact_routes import ContactRoutes
from segsync_hubspot.emulator.erase_routes import EraseRoutes
from segsync_hubspot.emulator.list_routes import ListRoutes
from segsync_hubspot.emulator.records import HubSpotError
from segsync_hubspot.emulator.scopes import required_scopes
from segsync_hubspot.limits import BURST_SECONDS

__all__ = ["HubSpotEmulator"]

_SEARCH_PATH = r"/crm/(?:v3/objects|objects/[^/]+)/contacts/search$"


class HubSpotEmulator(HubSpotActivity, ContactRoutes, ListRoutes, ConsentRoutes, EraseRoutes):
    """The HubSpot emulator; see the package docstring. Keyword arguments are its knobs."""

    platform: ClassVar[str] = "hubspot"
    read_page_hook: ClassVar[bool] = True  # contacts search calls `read_page_served`
    default_api_key: ClassVar[str] = "pat-na1-00000000-1111-2222-3333-444444444444"
    demo_port: ClassVar[int | None] = 8002

    def client_config(self) -> dict[str, Any]:
        """The `platforms.hubspot` block that reaches this emulator (without `base_url`)."""
        return {"token": self.api_key}

    def rate_limits(self) -> Sequence[WindowLimit | ConcurrencyLimit]:
        return (
            WindowLimit("SECONDLY", self.search_per_second, 1.0, path_pattern=_SEARCH_PATH),
            WindowLimit(
                "TEN_SECONDLY_ROLLING",
                self.burst_limit,
                BURST_SECONDS,
                path_pattern=rf"^(?!.*{_SEARCH_PATH[:-1]}$)",
            ),
            WindowLimit("DAILY", self.daily_limit, 86_400.0),
        )

    def _correlation_id(self) -> str:
        self._correlation += 1
        return str(uuid.UUID(int=self.random.getrandbits(128) ^ self._correlation))

    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        category = {
            "unauthorized": "INVALID_AUTHENTICATION",
            "server_error": "INTERNAL_ERROR",
            "rate_limited": "RATE_LIMITS",
            "not_found": "OBJECT_NOT_FOUND",
            "method_not_allowed": "VALIDATION_ERROR",
            "bad_request": "VALIDATION_ERROR",
        }.get(code, code)
        body: dict[str, Any] = {
            "status": "error",
            "message": message,
            "correlationId": self._correlation_id(),
            "category": category,
        }
        body.update(extra)
        return JSONResponse(body, status_code=status)

    def unauthorized_response(self) -> Response:
        return self.error_response(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication "
            "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        )

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header == f"Bearer {self.api_key}"

    def rate_limited_response(
        self, limit: WindowLimit | ConcurrencyLimit, retry_after: float
    ) -> Response:
        name = limit.name if limit.name in ("SECONDLY", "DAILY") else "TEN_SECONDLY_ROLLING"
        message = {
            "SECONDLY": "You have reached your secondly limit.",
            "DAILY": "You have reached your daily limit.",
            "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
        }[name]
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "category": "RATE_LIMITS",  # seen by many clients; the spec's Error requires it
            "correlationId": self._correlation_id(),
            "policyName": name,
            "groupName": f"publicapi:private-app:{self.portal_id}",
            "requestId": self._correlation_id(),
        }
        headers = {} if name == "SECONDLY" else self._rate_headers()
        return JSONResponse(body, status_code=429, headers=headers)

    def _rate_headers(self) -> dict[str, str]:
        now = self.clock.monotonic()
        burst = next(
            x
            for x in self.limits
            if isinstance(x, WindowLimit) and x.name == "TEN_SECONDLY_ROLLING"
        )
        daily = next(x for x in self.limits if isinstance(x, WindowLimit) and x.name == "DAILY")
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(daily.remaining(now)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.burst_limit),
            "X-HubSpot-RateLimit-Remaining": str(burst.remaining(now)),
        }

    def rate_limit_headers(
        self, limit: WindowLimit, remaining: int, reset_in: float
    ) -> Mapping[str, str]:
        """HubSpot's X-HubSpot-RateLimit-* headers; search answers carry none."""
        if limit.name == "SECONDLY":
            return {}
        return self._rate_headers()

    def routes(self) -> Sequence[BaseRoute]:
        routes: list[BaseRoute] = []
        for version in self.versions:
            dated = version != "v3"
            c = f"/crm/objects/{version}/contacts" if dated else "/crm/v3/objects/contacts"
            lists = f"/crm/lists/{version}" if dated else "/crm/v3/lists"
            props = f"/crm/properties/{version}" if dated else "/crm/v3/properties"
            routes += [
                Route(c, self._h(self.route_list_contacts), methods=["GET"]),
                Route(c, self._h(self.route_create_contact), methods=["POST"]),
                Route(f"{c}/search", self._h(self.route_search), methods=["POST"]),
                Route(f"{c}/batch/read", self._h(self.route_batch_read), methods=["POST"]),
                Route(f"{c}/batch/create", self._h(self.route_batch_create), methods=["POST"]),
                Route(f"{c}/batch/update", self._h(self.route_batch_update), methods=["POST"]),
                Route(f"{c}/batch/upsert", self._h(self.route_batch_upsert), methods=["POST"]),
                Route(f"{c}/batch/archive", self._h(self.route_batch_archive), methods=["POST"]),
                Route(f"{c}/gdpr-delete", self._h(self.route_gdpr_delete), methods=["POST"]),
                Route(f"{c}/{{contact_id}}", self._h(self.route_get_contact), methods=["GET"]),
                Route(f"{c}/{{contact_id}}", self._h(self.route_patch_contact), methods=["PATCH"]),
                Route(
                    f"{c}/{{contact_id}}", self._h(self.route_archive_contact), methods=["DELETE"]
                ),
                Route(
                    f"{props}/{{object_type}}", self._h(self.route_get_properties), methods=["GET"]
                ),
                Route(
                    f"{props}/{{object_type}}",
                    self._h(self.route_create_property),
                    methods=["POST"],
                ),
                Route(
                    f"{props}/{{object_type}}/groups",
                    self._h(self.route_get_groups),
                    methods=["GET"],
                ),
                Route(
                    f"{props}/{{object_type}}/groups",
                    self._h(self.route_create_group),
                    methods=["POST"],
                ),
                Route(
                    f"{props}/{{object_type}}/{{name}}",
                    self._h(self.route_get_property),
                    methods=["GET"],
                ),
                Route(
                    f"{props}/{{object_type}}/{{name}}",
                    self._h(self.route_patch_property),
                    methods=["PATCH"],
                ),
                Route(lists, self._h(self.route_create_list), methods=["POST"]),
                Route(lists, self._h(self.route_get_lists), methods=["GET"]),
                Route(f"{lists}/search", self._h(self.route_search_lists), methods=["POST"]),
                Route(
                    f"{lists}/records/{{otid}}/{{record_id}}/memberships",
                    self._h(self.route_record_memberships),
                    methods=["GET"],
                ),
                Route(
                    f"{lists}/object-type-id/{{otid}}/name/{{name}}",
                    self._h(self.route_get_list_by_name),
                    methods=["GET"],
                ),
                Route(f"{lists}/{{list_id}}", self._h(self.route_get_list), methods=["GET"]),
                Route(f"{lists}/{{list_id}}", self._h(self.route_delete_list), methods=["DELETE"]),
                Route(
                    f"{lists}/{{list_id}}/update-list-filters",
                    self._h(self.route_update_list_filters),
                    methods=["PUT"],
                ),
                Route(
                    f"{lists}/{{list_id}}/update-list-name",
                    self._h(self.route_update_list_name),
                    methods=["PUT"],
                ),
                Route(
                    f"{lists}/{{list_id}}/memberships",
                    self._h(self.route_get_memberships),
                    methods=["GET"],
                ),
                Route(
                    f"{lists}/{{list_id}}/memberships/add",
                    self._h(self.route_add_members),
                    methods=["PUT"],
                ),
                Route(
                    f"{lists}/{{list_id}}/memberships/remove",
                    self._h(self.route_remove_members),
                    methods=["PUT"],
                ),
                Route(
                    f"{lists}/{{list_id}}/memberships/add-and-remove",
                    self._h(self.route_add_and_remove_members),
                    methods=["PUT"],
                ),
            ]
            routes.append(
                Route(
                    f"/account-info/{version}/details",
                    self._h(self.route_account_details),
                    methods=["GET"],
                )
            )
            cp = f"/communication-preferences/{version}"
            routes.append(
                Route(f"{cp}/definitions", self._h(self.route_definitions), methods=["GET"])
            )
            if version == "v3":
                routes += [
                    Route(
                        f"{cp}/status/email/{{email}}",
                        self._h(self.route_v3_status),
                        methods=["GET"],
                    ),
                    Route(f"{cp}/subscribe", self._h(self.route_v3_subscribe), methods=["POST"]),
                    Route(
                        f"{cp}/unsubscribe", self._h(self.route_v3_unsubscribe), methods=["POST"]
                    ),
                ]
            else:
                routes += [
                    Route(
                        f"{cp}/statuses/batch/read",
                        self._h(self.route_v4_batch_read),
                        methods=["POST"],
                    ),
                    Route(
                        f"{cp}/statuses/batch/write",
                        self._h(self.route_v4_batch_write),
                        methods=["POST"],
                    ),
                    Route(
                        f"{cp}/statuses/{{email}}", self._h(self.route_v4_status), methods=["GET"]
                    ),
                    Route(
                        f"{cp}/statuses/{{email}}",
                        self._h(self.route_v4_set_status),
                        methods=["POST"],
                    ),
                    Route(
                        f"{cp}/statuses/{{email}}/unsubscribe-all",
                        self._h(self.route_v4_unsubscribe_all),
                        methods=["POST"],
                    ),
                ]
        if "v4" not in self.versions and "v3" in self.versions:
            cp = "/communication-preferences/v4"
            routes += [
                Route(f"{cp}/definitions", self._h(self.route_definitions), methods=["GET"]),
                Route(
                    f"{cp}/statuses/batch/read", self._h(self.route_v4_batch_read), methods=["POST"]
                ),
                Route(
                    f"{cp}/statuses/batch/write",
                    self._h(self.route_v4_batch_write),
                    methods=["POST"],
                ),
                Route(f"{cp}/statuses/{{email}}", self._h(self.route_v4_status), methods=["GET"]),
                Route(
                    f"{cp}/statuses/{{email}}", self._h(self.route_v4_set_status), methods=["POST"]
                ),
                Route(
                    f"{cp}/statuses/{{email}}/unsubscribe-all",
                    self._h(self.route_v4_unsubscribe_all),
                    methods=["POST"],
                ),
            ]
        return routes

    #: the kind of account answered by the account details (a test may set it)
    account_type: str = "STANDARD"

    async def route_account_details(self, request: Request) -> dict[str, Any]:
        """`GET /account-info/{v3|<date>}/details`: the portal the token reaches (`portalId`,
        which a test swaps with `portal_id`), its type, time zone, currency and hosting."""
        return {
            "portalId": self.portal_id,
            "accountType": self.account_type,
            "timeZone": "US/Eastern",
            "companyCurrency": "USD",
            "additionalCurrencies": [],
            "utcOffset": "-05:00",
            "utcOffsetMilliseconds": -18_000_000,
            "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        }

    def _check_scopes(self, request: Request) -> None:
        """403 `MISSING_SCOPES` unless the token holds one alternative of the endpoint's scopes
        (`token_scopes`; the default token holds `PRIVATE_APP_SCOPES`)."""
        alternatives = required_scopes(request.method, request.url.path)
        if not alternatives or any(a <= self.token_scopes for a in alternatives):
            return
        wanted = sorted({s for a in alternatives for s in a})
        raise HubSpotError(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call. "
            "Read more about required scopes here: https://developers.hubspot.com/scopes.",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": wanted},
                }
            ],
        )

    def _h(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                self._check_scopes(request)
                result = await handler(request)
            except HubSpotError as exc:
                return self.error_response(exc.status, exc.category, exc.message, **exc.extra)
            if isinstance(result, Response):
                return result
            return JSONResponse(result)

        return endpoint
