"""The HubSpot emulator's communication-preferences endpoints.

Subscription definitions; v3 statuses (which refuse to re-subscribe an opted-out address);
v4 and dated-version statuses, one address at a time or in batches (Marketing Hub
Enterprise only, `enterprise_consent`: a 403 otherwise), which re-subscribe an address
unsubscribed from one type when asked, as HubSpot does; opt-outs of all email.

Strict by default: whether v4 re-subscribes an address that opted out of **all** email is not
documented (v3 refuses any opted-out address; opt-outs were "NO UNDO" through the API), so a
`SUBSCRIBED` write for such an address is refused (400 `VALIDATION_ERROR`, or an `errors` entry
of a batch) unless `resubscribes_opted_out_of_all` is set on the emulator.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from segsync_hubspot.emulator.records import EMAIL_PATTERN, HubSpotError, iso_time
from segsync_hubspot.emulator.wire import HubSpotWire

__all__ = ["ConsentRoutes"]

_CHANNELS = frozenset({"EMAIL"})
_STATUS_STATES = frozenset({"SUBSCRIBED", "UNSUBSCRIBED", "NOT_SPECIFIED"})
_LEGAL_BASES = frozenset(
    {
        "CONSENT_WITH_NOTICE",
        "LEGITIMATE_INTEREST_CLIENT",
        "LEGITIMATE_INTEREST_OTHER",
        "LEGITIMATE_INTEREST_PQL",
        "NON_GDPR",
        "PERFORMANCE_OF_CONTRACT",
        "PROCESS_AND_STORE",
    }
)


class ConsentRoutes(HubSpotWire):
    """Handlers of the communication-preferences endpoints (`route_*`)."""

    #: False (strict): a v4 `SUBSCRIBED` write for an address unsubscribed from all email is
    #: refused; True: it re-subscribes (`RESUBSCRIBE_OCCURRED`), the lenient reading
    resubscribes_opted_out_of_all: bool = False

    def _refuse_resubscribe_after_opt_out_of_all(self, email: str, state: Any) -> None:
        """Refuse (400) a `SUBSCRIBED` write for an address opted out of all email."""
        if state == "SUBSCRIBED" and email in self.opted_out_of_all and not (
            self.resubscribes_opted_out_of_all
        ):
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"{email} is not allowed to be resubscribed: the contact unsubscribed from all "
                "email and must resubscribe themselves",
            )

    async def route_definitions(self, request: Request) -> Any:
        definitions = list(self.subscriptions.values())
        if "/v3/" in request.url.path:
            return {"subscriptionDefinitions": [{**d, "id": str(d["id"])} for d in definitions]}
        now = iso_time(self.clock.now())
        results = [{**d, "id": str(d["id"])} for d in definitions]
        return {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}

    async def route_v3_status(self, request: Request) -> Any:
        email = self._address(request.path_params["email"])
        statuses = []
        for sub_id, sub in self.subscriptions.items():
            status = self.subscription_status(email, sub_id)
            entry = {
                "id": str(sub_id),
                "name": sub["name"],
                "description": sub["description"],
                "status": "SUBSCRIBED" if status == "SUBSCRIBED" else "NOT_SUBSCRIBED",
                "sourceOfStatus": "PORTAL_WIDE_STATUS"
                if email in self.opted_out_of_all
                else "SUBSCRIPTION_STATUS",
            }
            stored = self.statuses.get(email, {}).get(sub_id)
            if stored and stored.legal_basis:
                entry["legalBasis"] = stored.legal_basis
                entry["legalBasisExplanation"] = stored.explanation or ""
            statuses.append(entry)
        return {"recipient": email, "subscriptionStatuses": statuses}

    async def _v3_change(self, request: Request, subscribe: bool) -> Any:
        body = await self._object_body(request)
        email = self._address(str(body.get("emailAddress") or ""))
        sub_id = self._sub(body.get("subscriptionId"))
        if subscribe:
            self._require_legal_basis(body.get("legalBasis"), body.get("legalBasisExplanation"))
        if subscribe and self.subscription_status(email, sub_id) == "NOT_SUBSCRIBED":
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"{email} is not allowed to be resubscribed: the contact opted out and must "
                "resubscribe themselves",
            )
        self._set(
            email, sub_id, subscribe, body.get("legalBasis"), body.get("legalBasisExplanation")
        )
        sub = self.subscriptions[sub_id]
        return {
            "id": str(sub_id),
            "name": sub["name"],
            "description": sub["description"],
            "status": "SUBSCRIBED" if subscribe else "NOT_SUBSCRIBED",
            "sourceOfStatus": "SUBSCRIPTION_STATUS",
        }

    async def route_v3_subscribe(self, request: Request) -> Any:
        return await self._v3_change(request, True)

    async def route_v3_unsubscribe(self, request: Request) -> Any:
        return await self._v3_change(request, False)

    async def route_v4_status(self, request: Request) -> Any:
        self._channel(request)
        email = self._address(request.path_params["email"])
        now = iso_time(self.clock.now())
        return {
            "status": "COMPLETE",
            "results": [self._public_status(email, s) for s in self.subscriptions],
            "startedAt": now,
            "completedAt": now,
        }

    async def route_v4_set_status(self, request: Request) -> Any:
        email = self._address(request.path_params["email"])
        body = await self._object_body(request)
        if body.get("channel") != "EMAIL":
            raise HubSpotError(400, "VALIDATION_ERROR", "channel must be EMAIL")
        sub_id = self._sub(body.get("subscriptionId"))
        state = body.get("statusState")
        if state not in ("SUBSCRIBED", "UNSUBSCRIBED", "NOT_SPECIFIED"):
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                "statusState must be SUBSCRIBED, UNSUBSCRIBED or NOT_SPECIFIED",
            )
        started = iso_time(self.clock.now())
        self._refuse_resubscribe_after_opt_out_of_all(email, state)
        reason = self._write_status(
            email, sub_id, state, body.get("legalBasis"), body.get("legalBasisExplanation")
        )
        return {
            "status": "COMPLETE",
            "results": [self._public_status(email, sub_id, reason)],
            "startedAt": started,
            "completedAt": iso_time(self.clock.now()),
        }

    @staticmethod
    def _status_request_problem(index: int, item: Any) -> str | None:
        """What makes batch input `index` not a `PublicStatusRequest` (the spec's schema)."""
        where = f"inputs[{index}]"
        if not isinstance(item, dict):
            return f"{where}: expected an object"
        for name in ("channel", "statusState", "subscriberIdString", "subscriptionId"):
            if name not in item:
                return f"{where}.{name}: is required"
        if not isinstance(item["subscriberIdString"], str):
            return f"{where}.subscriberIdString: expected a string"
        sub = item["subscriptionId"]
        if isinstance(sub, bool) or not isinstance(sub, int):
            return f"{where}.subscriptionId: expected an integer"
        enums = (
            ("channel", _CHANNELS),
            ("statusState", _STATUS_STATES),
            ("legalBasis", _LEGAL_BASES),
        )
        for name, allowed in enums:
            if name in item and item[name] not in allowed:
                return f"{where}.{name}: {item[name]!r} is not one of {sorted(allowed)}"
        explanation = item.get("legalBasisExplanation")
        if explanation is not None and not isinstance(explanation, str):
            return f"{where}.legalBasisExplanation: expected a string"
        return None

    async def route_v4_batch_write(self, request: Request) -> Any:
        """Batch status writes (Enterprise only, like batch reads), at most `batch_limit` inputs.

        A body that is not a `BatchInputPublicStatusRequest` is refused whole (400); an input
        naming an invalid address or an unknown subscription fails alone and is reported in
        `errors` (200 with `numErrors`, the one answer the spec declares); each input is
        applied as the single `POST statuses/{email}` applies it.
        """
        self._enterprise_only("communication_preferences.statuses.batch.write")
        body = await self._object_body(request)
        inputs = self._inputs(body)
        for index, item in enumerate(inputs):
            problem = self._status_request_problem(index, item)
            if problem:
                raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid input JSON: {problem}")
        started = self.clock.now()
        failing = (
            self.faults.failing_indexes(len(inputs))
            if self.partial_failure_requested(request)
            else set()
        )
        results, errors = [], []
        for index, item in enumerate(inputs):
            raw = item["subscriberIdString"]
            email = raw.strip().lower()
            if index in failing:
                errors.append(
                    self._standard_error(
                        "VALIDATION_ERROR",
                        f"Could not update the subscription status of {raw} [injected failure]",
                        {"subscriberIdString": [raw]},
                    )
                )
                continue
            if not EMAIL_PATTERN.match(email):
                errors.append(
                    self._standard_error(
                        "VALIDATION_ERROR",
                        f"{raw} is not a valid email address",
                        {"subscriberIdString": [raw]},
                    )
                )
                continue
            sub_id = item["subscriptionId"]
            if sub_id not in self.subscriptions:
                errors.append(
                    self._standard_error(
                        "VALIDATION_ERROR",
                        f"Subscription {sub_id} does not exist",
                        {"subscriberIdString": [raw], "subscriptionId": [str(sub_id)]},
                    )
                )
                continue
            try:
                self._refuse_resubscribe_after_opt_out_of_all(email, item["statusState"])
                reason = self._write_status(
                    email,
                    sub_id,
                    item["statusState"],
                    item.get("legalBasis"),
                    item.get("legalBasisExplanation"),
                )
            except HubSpotError as exc:  # refused as the single endpoint refuses it
                errors.append(
                    self._standard_error(exc.category, exc.message, {"subscriberIdString": [raw]})
                )
                continue
            results.append(self._public_status(email, sub_id, reason))
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "requestedAt": iso_time(started),
            "startedAt": iso_time(started),
            "completedAt": iso_time(self.clock.now()),
        }
        if errors:
            answer["numErrors"] = len(errors)
            answer["errors"] = errors
        return answer

    async def route_v4_unsubscribe_all(self, request: Request) -> Any:
        self._channel(request)
        email = self._address(request.path_params["email"])
        self._opt_out_of_all(email)
        now = iso_time(self.clock.now())
        return {
            "status": "COMPLETE",
            "results": [self._public_status(email, s) for s in self.subscriptions],
            "startedAt": now,
            "completedAt": now,
        }

    async def route_v4_batch_read(self, request: Request) -> Any:
        """Batch status reads (Marketing Hub Enterprise only: 403 MISSING_SCOPES otherwise)."""
        self._enterprise_only("communication_preferences.statuses.batch.read")
        self._channel(request)
        body = await self._object_body(request)
        inputs = self._inputs(body)
        now = iso_time(self.clock.now())
        results, errors = [], []
        for raw in inputs:
            if not isinstance(raw, str) or not EMAIL_PATTERN.match(raw.strip()):
                errors.append(
                    self._standard_error(
                        "VALIDATION_ERROR",
                        f"{raw} is not a valid email address",
                        {"subscriberIdString": [str(raw)]},
                    )
                )
                continue
            email = raw.strip().lower()
            results.append(
                {
                    "subscriberIdString": email,
                    "statuses": [self._public_status(email, s) for s in self.subscriptions],
                }
            )
        body_out: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": now,
            "completedAt": now,
        }
        if errors:
            body_out["numErrors"] = len(errors)
            body_out["errors"] = errors
            return JSONResponse(body_out, status_code=207)
        return body_out
