"""Checks requests against HubSpot's OpenAPI descriptions (a development and test aid).

`SpecValidator(directory)` loads every `*.json` OpenAPI 3.0 file in `directory` (HubSpot's
contacts, lists, properties and communication-preferences descriptions) and `problems(...)`
says what is wrong with one request: an unknown path or method, a missing required query
parameter, or a JSON body that does not validate against the operation's request schema
(OpenAPI 3.0 semantics via `openapi-schema-validator`). `ValidatingTransport` wraps an httpx
transport and records the problems of every request that goes through it (and, when asked,
of every JSON response: `response_problems` checks a body against the declared schema).

The descriptions are reference data that segsync does not ship; callers point this at a copy.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from openapi_schema_validator import OAS30Validator

__all__ = ["KNOWN_DEVIATIONS", "SpecValidator", "ValidatingTransport"]

KNOWN_DEVIATIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"\['properties'\]\[[^]]+\]: None (for not nullable|is not of type)"),
        "HubSpot answers null for a requested property with no value (contacts guide); "
        "the descriptions type property values as non-null strings",
    ),
)
"""Response problems that are the descriptions' error, not the emulator's, and why."""


@dataclasses.dataclass(frozen=True)
class _Operation:
    source: str
    template: str
    pattern: re.Pattern[str]
    params: int
    methods: Mapping[str, Mapping[str, Any]]
    components: Mapping[str, Any]


class SpecValidator:
    """Validates requests against the OpenAPI files of a directory; see the module docstring."""

    def __init__(self, directory: Path) -> None:
        self.operations: list[_Operation] = []
        for path in sorted(directory.glob("*.json")):
            document = json.loads(path.read_text())
            for template, item in document.get("paths", {}).items():
                regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
                methods = {m.upper(): op for m, op in item.items() if isinstance(op, dict)}
                self.operations.append(
                    _Operation(
                        path.name,
                        template,
                        re.compile(regex),
                        template.count("{"),
                        methods,
                        document.get("components", {}),
                    )
                )
        self.operations.sort(key=lambda op: op.params)
        self.checked = 0
        self._validators: dict[tuple[str, str, str, str], OAS30Validator] = {}

    def _validator(
        self, op: _Operation, method: str, which: str, schema: Mapping[str, Any]
    ) -> OAS30Validator:
        key = (op.source, op.template, method, which)
        if key not in self._validators:
            self._validators[key] = OAS30Validator({"components": op.components, "allOf": [schema]})
        return self._validators[key]

    def problems(self, method: str, path: str, query: Mapping[str, Any], body: Any) -> list[str]:
        """What is wrong with one request (empty when it validates)."""
        self.checked += 1
        matches = [op for op in self.operations if op.pattern.match(path)]
        if not matches:
            return [f"{method} {path}: no such path in the API descriptions"]
        for op in matches:
            operation = op.methods.get(method.upper())
            if operation is None:
                continue
            return self._check(op, operation, method, path, query, body)
        return [f"{method} {path}: method not allowed ({matches[0].template})"]

    def response_problems(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """What is wrong with one JSON response against the operation's response schema."""
        for op in (op for op in self.operations if op.pattern.match(path)):
            operation = op.methods.get(method.upper())
            if operation is None:
                continue
            responses = operation.get("responses", {})
            declared = responses.get(str(status)) or responses.get("default")
            label = f"{method} {op.template} -> {status} ({op.source})"
            if declared is None:
                return [f"{label}: status not declared"]
            declared = self._resolve(op, declared)
            schema = declared.get("content", {}).get("application/json", {}).get("schema")
            if schema is None or body is None:
                return []
            validator = self._validator(op, method, str(status), schema)
            return [
                f"{label}: body{''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message[:300]}"
                for e in validator.iter_errors(body)
            ]
        return []

    @staticmethod
    def _resolve(op: _Operation, item: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = item.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/components/"):
            return item
        node: Any = op.components
        for part in ref.removeprefix("#/components/").split("/"):
            node = node.get(part, {})
        return node if isinstance(node, Mapping) else item

    def _check(
        self,
        op: _Operation,
        operation: Mapping[str, Any],
        method: str,
        path: str,
        query: Mapping[str, Any],
        body: Any,
    ) -> list[str]:
        found: list[str] = []
        label = f"{method} {op.template} ({op.source})"
        declared = {p["name"]: p for p in operation.get("parameters", []) if p.get("in") == "query"}
        for name, param in declared.items():
            if param.get("required") and name not in query:
                found.append(f"{label}: missing required query parameter {name}")
        for name in query:
            if name not in declared:
                found.append(f"{label}: unknown query parameter {name}")
        request_body = operation.get("requestBody")
        if request_body is None:
            if body is not None:
                found.append(f"{label}: takes no body")
            return found
        schema = request_body.get("content", {}).get("application/json", {}).get("schema")
        if body is None:
            if request_body.get("required"):
                found.append(f"{label}: the JSON body is required")
            return found
        if schema is not None:
            validator = self._validator(op, method, "request", schema)
            found += [
                f"{label}: body{''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message[:300]}"
                for e in validator.iter_errors(body)
            ]
        return found


class ValidatingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that validates each request before passing it on."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        validator: SpecValidator,
        *,
        responses: bool = False,
    ) -> None:
        self.inner = inner
        self.validator = validator
        self.responses = responses
        self.problems: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw = request.content
        body = json.loads(raw) if raw else None
        query: dict[str, list[str]] = {}
        for key, value in request.url.params.multi_items():
            query.setdefault(key, []).append(value)
        self.problems += self.validator.problems(request.method, request.url.path, query, body)
        response = await self.inner.handle_async_request(request)
        if self.responses and response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            await response.aread()
            self.problems += [
                problem
                for problem in self.validator.response_problems(
                    request.method, request.url.path, response.status_code, response.json()
                )
                if not any(pattern.search(problem) for pattern, _ in KNOWN_DEVIATIONS)
            ]
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
