"""Checks requests against the Mailchimp API description (a test aid; needs `jsonschema`).

`SpecChecker(spec_dir)` reads `marketing-*.openapi3*.json` and `segment-conditions*.json` from
a directory that holds the vendor's description (segsync never ships it). `problems(method,
path, params, body)` lists what does not conform: an unknown path or method, a query
parameter the operation does not declare or whose value breaks its schema, a JSON body that
breaks the operation's request schema, and saved-segment conditions that match none of the
description's `x-oneOf` condition schemas (Mailchimp's own extension, which plain JSON Schema
validators ignore). `SpecCheckingTransport` wraps an httpx transport and records the
problems of every request that passes through it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

__all__ = ["SpecChecker", "SpecCheckingTransport", "default_spec_dir"]

API_PREFIX = "/3.0"


def default_spec_dir() -> Path:
    """`../shared/specs/mailchimp` relative to the repository root of this checkout."""
    repo_root = Path(__file__).resolve().parents[3]
    return repo_root.parent / "shared" / "specs" / "mailchimp"


@dataclasses.dataclass(frozen=True)
class _Operation:
    method: str
    template: str
    regex: re.Pattern[str]
    params: Mapping[str, Mapping[str, Any]]  # query parameter -> schema
    body_ref: str | None


def _coerce_query(value: str, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "boolean":
        if value not in ("true", "false"):
            raise ValueError(f"{value!r} is not true/false")
        return value == "true"
    if kind == "array":
        return value.split(",")
    return value


def _relax_known_quirks(spec: dict[str, Any]) -> list[str]:
    """Loosen the description where it contradicts itself; return what was loosened.

    - Member bodies type each `merge_fields` value as an object, while the same schema says
      "It's values are the values to be added to the merge field" (strings, numbers, and an
      object only for address fields): any JSON value is accepted there.
    - The segment PATCH body (`Conditions1`) nests conditions as an array of arrays where
      POST (`Conditions`) takes a flat array of the same condition objects; the fact sheet
      notes the API presumably takes the flat form: both are accepted.
    """
    relaxed = []
    schemas = spec["components"]["schemas"]
    patch_conditions = schemas.get("Conditions1", {}).get("properties", {}).get("conditions")
    if isinstance(patch_conditions, dict) and patch_conditions.get("items", {}).get("type") == (
        "array"
    ):
        nested = patch_conditions["items"]
        patch_conditions["items"] = {"anyOf": [nested["items"], nested]}
        relaxed.append("Conditions1.conditions")
    for name, schema in schemas.items():
        merge = schema.get("properties", {}).get("merge_fields", {})
        extra = merge.get("additionalProperties")
        if isinstance(extra, dict) and extra.get("type") == "object":
            merge["additionalProperties"] = {}
            relaxed.append(f"{name}.merge_fields")
    return relaxed


class SpecChecker:
    """Validates requests against the Marketing API description in `spec_dir`."""

    def __init__(self, spec_dir: Path) -> None:
        import jsonschema

        self._jsonschema = jsonschema
        [api_file] = sorted(spec_dir.glob("marketing-*.json"))
        [conditions_file] = sorted(spec_dir.glob("segment-conditions*.json"))
        self.spec: dict[str, Any] = json.loads(api_file.read_text())
        self.relaxed = _relax_known_quirks(self.spec)
        conditions = json.loads(conditions_file.read_text())
        self.condition_schemas: dict[str, list[dict[str, Any]]] = {}
        for schema in conditions["condition_types"]:
            names = schema.get("properties", {}).get("condition_type", {}).get("enum", [])
            for name in names:
                self.condition_schemas.setdefault(name, []).append(schema)
        self.operations: list[_Operation] = []
        for template, item in self.spec["paths"].items():
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            for method, op in item.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                params = {
                    p["name"]: p.get("schema", {})
                    for p in op.get("parameters", [])
                    if p.get("in") == "query"
                }
                content = op.get("requestBody", {}).get("content", {})
                ref = next(
                    (c["schema"].get("$ref") for c in content.values() if "schema" in c), None
                )
                self.operations.append(
                    _Operation(method.upper(), template, re.compile(pattern), params, ref)
                )
        self._validators: dict[str, Any] = {}

    def _validator(self, ref: str) -> Any:
        if ref not in self._validators:
            schema = {"$ref": ref, "components": self.spec["components"]}
            self._validators[ref] = self._jsonschema.Draft7Validator(schema)
        return self._validators[ref]

    def operation(self, method: str, path: str) -> _Operation | None:
        """The described operation a request goes to (None when there is none)."""
        path = path.removeprefix(API_PREFIX) or "/"
        matches = [o for o in self.operations if o.method == method and o.regex.match(path)]
        # prefer the most literal template (/lists/{id}/members over /lists/{id}/{x})
        matches.sort(key=lambda o: o.template.count("{"))
        return matches[0] if matches else None

    def problems(self, method: str, path: str, params: Mapping[str, str], body: Any) -> list[str]:
        """Everything in one request that does not conform to the description."""
        op = self.operation(method, path)
        where = f"{method} {path}"
        if op is None:
            known = any(o.regex.match(path.removeprefix(API_PREFIX)) for o in self.operations)
            return [f"{where}: {'method not described' if known else 'path not described'}"]
        found: list[str] = []
        for name, value in params.items():
            schema = op.params.get(name)
            if schema is None:
                found.append(f"{where}: query parameter {name!r} is not described")
                continue
            try:
                coerced = _coerce_query(value, schema)
                self._jsonschema.validate(coerced, schema)
            except (ValueError, self._jsonschema.ValidationError) as exc:
                found.append(f"{where}: query {name}={value!r}: {str(exc).splitlines()[0]}")
        if body is not None:
            if op.body_ref is None:
                found.append(f"{where}: sends a body the operation does not take")
            else:
                for error in self._validator(op.body_ref).iter_errors(body):
                    at = ".".join(str(p) for p in error.absolute_path) or "(body)"
                    found.append(f"{where}: {at}: {error.message}")
                found.extend(self._condition_problems(where, body))
        return found

    def _condition_problems(self, where: str, body: Any) -> list[str]:
        options = body.get("options") if isinstance(body, dict) else None
        if not isinstance(options, dict):
            return []
        found = []
        for index, condition in enumerate(options.get("conditions") or []):
            ctype = condition.get("condition_type") if isinstance(condition, dict) else None
            candidates = self.condition_schemas.get(str(ctype), [])
            if not candidates:
                found.append(f"{where}: condition {index}: unknown condition_type {ctype!r}")
                continue
            errors = [
                list(self._jsonschema.Draft7Validator(s).iter_errors(condition)) for s in candidates
            ]
            if all(errors):
                first = errors[0][0]
                at = ".".join(str(p) for p in first.absolute_path)
                found.append(f"{where}: condition {index} ({ctype}) {at}: {first.message}")
        return found


class SpecCheckingTransport(httpx.AsyncBaseTransport):
    """Passes requests to `inner`, recording every spec problem in `problems`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, checker: SpecChecker) -> None:
        self.inner = inner
        self.checker = checker
        self.problems: list[str] = []
        self.checked = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw = request.content
        body = json.loads(raw) if raw else None
        params = dict(request.url.params)
        self.problems.extend(self.checker.problems(request.method, request.url.path, params, body))
        self.checked += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def summary(self) -> Sequence[str]:
        """Distinct problems, in the order first seen."""
        return list(dict.fromkeys(self.problems))
