"""Checks an emulator's JSON answers against the vendor's OpenAPI 3.0 description.

`ResponseValidator(documents)` takes parsed OpenAPI 3.0 documents (a connector reads them
from wherever the vendor's files are; segsync ships none). `problems(method, path, status,
body)` lists how one JSON answer departs from the schema its operation declares for that
status (or `default`): a success status the operation does not declare is a problem; an
undeclared error status (401, 429, 5xx, which descriptions leave out) and a path or method the
documents do not describe are not (requests are checked elsewhere). The path is
matched after the servers' base path (`/3.0`, `/v3`) is removed. `known_deviations` are
(pattern, reason) pairs: a problem matching a pattern is the description's error, not the
emulator's, and is dropped.

`ResponseCheckingTransport(inner, validator)` wraps an httpx transport and keeps the problems
of every JSON answer passing through it in `problems` (and counts the answers it checked).
The conformance kit uses it when a suite's `response_validator()` returns one.

`openapi-schema-validator` (a test dependency) is imported when the validator is built.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

import httpx

__all__ = ["ResponseCheckingTransport", "ResponseValidator"]


@dataclasses.dataclass(frozen=True)
class _Operation:
    template: str
    pattern: re.Pattern[str]
    params: int
    methods: Mapping[str, Mapping[str, Any]]
    components: Mapping[str, Any]
    prefix: str


class ResponseValidator:
    """Validates JSON answers against OpenAPI 3.0 documents; see the module docstring."""

    def __init__(
        self,
        documents: Iterable[Mapping[str, Any]],
        *,
        known_deviations: Sequence[tuple[re.Pattern[str], str]] = (),
    ) -> None:
        self.operations: list[_Operation] = []
        for document in documents:
            servers = document.get("servers") or [{}]
            prefix = urlparse(str(servers[0].get("url", ""))).path.rstrip("/")
            for template, item in (document.get("paths") or {}).items():
                regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "/?$"
                methods = {m.upper(): op for m, op in item.items() if isinstance(op, dict)}
                self.operations.append(
                    _Operation(
                        template,
                        re.compile(regex),
                        template.count("{"),
                        methods,
                        document.get("components") or {},
                        prefix,
                    )
                )
        # a literal segment beats a parameter (`/contacts/lists` before `/contacts/{id}`)
        self.operations.sort(key=lambda op: op.params)
        self.known_deviations = tuple(known_deviations)
        self.checked = 0
        self._validators: dict[tuple[int, str, str], Any] = {}

    def _validator(self, op: _Operation, method: str, status: str, schema: Any) -> Any:
        from openapi_schema_validator import OAS30Validator

        key = (id(op), method, status)
        if key not in self._validators:
            self._validators[key] = OAS30Validator({"components": op.components, "allOf": [schema]})
        return self._validators[key]

    def _match(self, method: str, path: str) -> tuple[_Operation, Mapping[str, Any]] | None:
        for op in self.operations:
            local = path[len(op.prefix) :] if op.prefix and path.startswith(op.prefix) else path
            if op.pattern.match(local) and method.upper() in op.methods:
                return op, op.methods[method.upper()]
        return None

    def problems(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """How one JSON answer departs from its declared schema (empty: it conforms)."""
        found = self._match(method, path)
        if found is None:
            return []
        op, operation = found
        self.checked += 1
        responses = operation.get("responses") or {}
        declared = responses.get(str(status)) or responses.get("default")
        label = f"{method.upper()} {op.template} -> {status}"
        if declared is None:
            if status >= 400:
                return []  # descriptions leave out the generic errors (401, 429, 5xx)
            return [f"{label}: status not declared ({', '.join(sorted(responses))})"]
        declared = self._resolve(op, declared)
        schema = (declared.get("content") or {}).get("application/json", {}).get("schema")
        if schema is None or body is None:
            return []
        out = []
        for error in self._validator(op, method.upper(), str(status), schema).iter_errors(body):
            where = "".join(f"[{p!r}]" for p in error.absolute_path)
            problem = f"{label}: body{where}: {error.message[:300]}"
            if not any(pattern.search(problem) for pattern, _ in self.known_deviations):
                out.append(problem)
        return out

    @staticmethod
    def _resolve(op: _Operation, item: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = item.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/components/"):
            return item
        node: Any = op.components
        for part in ref.removeprefix("#/components/").split("/"):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        return node if isinstance(node, Mapping) else item


class ResponseCheckingTransport(httpx.AsyncBaseTransport):
    """Passes requests to `inner` and checks every JSON answer with `validator`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, validator: ResponseValidator) -> None:
        self.inner = inner
        self.validator = validator
        self.problems: list[str] = []
        self.checked = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if response.headers.get("content-type", "").startswith("application/json"):
            content = await response.aread()
            try:
                body = json.loads(content) if content else None
            except ValueError:
                self.problems.append(f"{request.method} {request.url.path}: invalid JSON")
                return response
            self.checked += 1
            self.problems += self.validator.problems(
                request.method, request.url.path, response.status_code, body
            )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
