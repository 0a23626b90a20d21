"""The Brevo emulator's application: auth, errors, rate limits, spec checks, the route table.

Served at the root and under `/v3` (so `https://api.brevo.com/v3` maps onto it). Auth is the
`api-key` header (or an OAuth Bearer token); the rate limits are Brevo's: `/contacts*` per
second and per hour by tier, every other endpoint per hour, with `x-sib-ratelimit-*`
headers and a 429 `{code, message}` body without `Retry-After`. When a `SpecValidator` is
given, every request is checked against the API description and departures are kept in
`spec_violations` (and answered 400 when `strict_spec`).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hmac
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Message, Receive, Scope, Send

from segsync.clock import Clock
from segsync.emulator.base import ConcurrencyLimit, FaultPlan, WindowLimit
from segsync_brevo.emulator.activity import BrevoActivity
from segsync_brevo.emulator.routes import BrevoRoutes
from segsync_brevo.emulator.state import BrevoError
from segsync_brevo.errors import RATE_LIMIT_HEADERS
from segsync_brevo.limits import TIERS

if TYPE_CHECKING:
    from segsync_brevo.spec import SpecValidator

__all__ = ["BrevoEmulator"]

CONTACTS_PATH = r"^(/v3)?/contacts"
OTHER_PATH = r"^(?!(/v3)?/contacts(/|$))"
_KEY_SENT: contextvars.ContextVar[bool] = contextvars.ContextVar("brevo_key_sent", default=True)


_OUTSIDE_SUBSET = frozenset({"/account", "/v3/account"})
"""Paths of the full Brevo description (`getAccount`) that the contacts subset the
validator reads leaves out; a GET of them without query or body has nothing to check."""


class BrevoEmulator(BrevoActivity, BrevoRoutes):
    """The Brevo emulator; see the package docstring. Test hooks are the public methods."""

    platform = "brevo"
    base_path: ClassVar[str] = "/v3"
    default_api_key: ClassVar[str] = "xkeysib-" + "0" * 64 + "-segsyncTEST0001"
    demo_port: ClassVar[int | None] = 8003
    #: set by a test session to validate every request of every instance
    default_validator: ClassVar[SpecValidator | None] = None
    #: called with every new instance (tests collect them to check `spec_violations`)
    on_create: ClassVar[Callable[[BrevoEmulator], None] | None] = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        clock: Clock | None = None,
        latency_ms: float = 0.0,
        faults: FaultPlan | None = None,
        seed: int = 0,
        enforce_rate_limits: bool = True,
        tier: str = "general",
        utc_offset_hours: float = 1.0,
        validator: SpecValidator | None = None,
        strict_spec: bool = False,
        refuse_unblocklist: bool = False,
        double_opt_in_lifts_blocklist: bool = False,
        import_queue_seconds: float = 2.0,
        import_base_seconds: float = 5.0,
        import_seconds_per_contact: float = 0.002,
        owner_email: str = "owner@segsync-account.test",
    ) -> None:
        if tier not in TIERS:
            raise ValueError(f"unknown tier {tier!r}; known: {', '.join(TIERS)}")
        self.tier = TIERS[tier]
        self.tz = dt.timezone(dt.timedelta(hours=utc_offset_hours))
        self.validator = validator if validator is not None else self.default_validator
        self.strict_spec = strict_spec
        self.refuse_unblocklist = refuse_unblocklist
        self.double_opt_in_lifts_blocklist = double_opt_in_lifts_blocklist
        self.import_queue_seconds = import_queue_seconds
        self.import_base_seconds = import_base_seconds
        self.import_seconds_per_contact = import_seconds_per_contact
        self.owner_email = owner_email
        super().__init__(
            api_key=api_key,
            clock=clock,
            latency_ms=latency_ms,
            faults=faults,
            seed=seed,
            enforce_rate_limits=enforce_rate_limits,
        )
        self._init_state()
        if BrevoEmulator.on_create is not None:
            BrevoEmulator.on_create(self)

    def client_config(self) -> dict[str, Any]:
        """The `brevo` config block that reaches this emulator: its key (the account needs
        no other object named in the config)."""
        return {"api_key": self.api_key}

    # -- platform declarations -----------------------------------------------------------

    def routes(self) -> Sequence[BaseRoute]:
        inner = [
            Route("/contacts", self._h(self.route_list_contacts), methods=["GET"]),
            Route("/contacts", self._h(self.route_create_contact), methods=["POST"]),
            Route("/contacts/batch", self._h(self.route_batch_update), methods=["POST"]),
            Route("/contacts/import", self._h(self.route_import_contacts), methods=["POST"]),
            Route(
                "/contacts/doubleOptinConfirmation",
                self._h(self.route_double_opt_in),
                methods=["POST"],
            ),
            Route("/contacts/attributes", self._h(self.route_list_attributes), methods=["GET"]),
            Route(
                "/contacts/attributes/{category}/{name}",
                self._h(self.route_attribute),
                methods=["POST", "PUT", "DELETE"],
            ),
            Route(
                "/contacts/attributes/{category}/{name}/{option}",
                self._h(self.route_delete_option),
                methods=["DELETE"],
            ),
            Route("/contacts/folders", self._h(self.route_folders), methods=["GET", "POST"]),
            Route(
                "/contacts/folders/{folder_id:int}",
                self._h(self.route_folder),
                methods=["GET", "PUT", "DELETE"],
            ),
            Route(
                "/contacts/folders/{folder_id:int}/lists",
                self._h(self.route_folder_lists),
                methods=["GET"],
            ),
            Route("/contacts/lists", self._h(self.route_lists), methods=["GET", "POST"]),
            Route(
                "/contacts/lists/{list_id:int}",
                self._h(self.route_list),
                methods=["GET", "PUT", "DELETE"],
            ),
            Route(
                "/contacts/lists/{list_id:int}/contacts",
                self._h(self.route_list_members),
                methods=["GET"],
            ),
            Route(
                "/contacts/lists/{list_id:int}/contacts/{action}",
                self._h(self.route_list_membership),
                methods=["POST"],
            ),
            Route("/contacts/segments", self._h(self.route_list_segments), methods=["GET"]),
            Route(
                "/contacts/segments",
                self._h(self.route_segments_read_only),
                methods=["POST", "PUT", "DELETE"],
            ),
            Route(
                "/contacts/{identifier}",
                self._h(self.route_contact),
                methods=["GET", "PUT", "DELETE"],
            ),
            Route("/account", self._h(self.route_account), methods=["GET"]),
            Route("/processes", self._h(self.route_list_processes), methods=["GET"]),
            Route("/processes/{process_id:int}", self._h(self.route_get_process), methods=["GET"]),
        ]
        return [Mount("/v3", routes=inner), *inner]

    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        return JSONResponse({"code": code, "message": message, **extra}, status_code=status)

    def authorized(self, request: Request) -> bool:
        """The `api-key` header (or an OAuth Bearer token) holds the account's key."""
        key = request.headers.get("api-key")
        if key is None:
            auth = request.headers.get("authorization", "")
            key = auth[7:] if auth.lower().startswith("bearer ") else None
        _KEY_SENT.set(key is not None)
        return key is not None and hmac.compare_digest(key.encode(), self.api_key.encode())

    def unauthorized_response(self) -> Response:
        """Brevo's two 401 bodies: no credential at all, or one it does not know."""
        if not _KEY_SENT.get():
            return self.error_response(401, "unauthorized", "authentication not found in headers")
        return self.error_response(401, "unauthorized", "Key not found")

    def rate_limits(self) -> Sequence[WindowLimit | ConcurrencyLimit]:
        tier = self.tier
        return (
            WindowLimit("contacts per second", tier.contacts_per_second, 1.0, CONTACTS_PATH),
            WindowLimit("contacts per hour", tier.contacts_per_hour, 3600.0, CONTACTS_PATH),
            WindowLimit("other endpoints per hour", tier.others_per_hour, 3600.0, OTHER_PATH),
        )

    def rate_limited_response(
        self, limit: WindowLimit | ConcurrencyLimit, retry_after: float
    ) -> Response:
        """Brevo's 429: no Retry-After; the `x-sib-ratelimit-*` headers say when to come back."""
        return JSONResponse(
            {"code": "too_many_requests", "message": "The expected rate limit is exceeded."},
            status_code=429,
        )

    def rate_limit_headers(
        self, limit: WindowLimit, remaining: int, reset_in: float
    ) -> Mapping[str, str]:
        """`x-sib-ratelimit-limit/remaining/reset` (reset: whole seconds until a slot frees)."""
        reset = math.ceil(reset_in) if reset_in > 0 else 0
        if remaining == 0:
            reset = max(1, reset)
        return dict(
            zip(RATE_LIMIT_HEADERS, (str(limit.limit), str(remaining), str(reset)), strict=True)
        )

    # -- the pipeline additions ------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.advance_processes()
            if self.validator is not None:
                receive, problems = await self._validate(scope, receive)
                if problems:
                    self.spec_violations.extend(problems)
                    if self.strict_spec:
                        response = self.error_response(
                            400, "invalid_parameter", "; ".join(problems)[:1000]
                        )
                        await response(scope, receive, send)
                        return
        await super().__call__(scope, receive, send)

    async def _validate(self, scope: Scope, receive: Receive) -> tuple[Receive, list[str]]:
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replay = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay_receive() -> Message:
            return replay.pop() if replay else await receive()

        request = Request(scope)
        assert self.validator is not None
        if (
            request.method == "GET"
            and request.url.path in _OUTSIDE_SUBSET
            and not request.query_params
            and not body
            and self.validator.operation("GET", request.url.path) is None
        ):
            return replay_receive, []  # described in the full description, not the subset
        problems = self.validator.check(
            request.method, request.url.path, list(request.query_params.multi_items()), body
        )
        return replay_receive, problems

    def _h(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                result = await handler(request)
            except BrevoError as exc:
                return self.error_response(exc.status, exc.code, exc.message, **exc.extra)
            if isinstance(result, Response):
                return result
            return JSONResponse(result)

        return endpoint
