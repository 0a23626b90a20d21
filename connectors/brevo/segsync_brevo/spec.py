"""Checks requests against Brevo's API description (an OpenAPI 3.0 document).

`SpecValidator` matches a request to an operation (path template and method), checks its
query parameters (known names, types, enums, bounds) and its JSON body against the
operation's schema, and returns what does not conform. It is deliberately a little stricter
than the description: properties an object schema does not list are reported (Brevo ignores
them silently, so sending one is a segsync bug), and `oneOf` is read as `anyOf` (Brevo's
alternatives overlap, e.g. the `emails` / `ids` / `extIds` bodies of list membership calls).

`jsonschema` (installed with the test extras, through openapi-core) is imported only when a
request is checked. The description lives outside the project
(`<repo>/../shared/specs/brevo/`); `find_spec` returns None when it is absent, and callers
skip with that reason.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["SPEC_FILE", "SpecValidator", "find_spec"]

SPEC_FILE = "contacts-subset.2025-02-28.json"
"""The subset of the Brevo description with every path the connector uses."""


def find_spec(start: Path | None = None) -> Path | None:
    """`<repo root>/../shared/specs/brevo/<SPEC_FILE>`, or None when absent."""
    here = (start or Path(__file__)).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file():
            candidate = parent.parent / "shared" / "specs" / "brevo" / SPEC_FILE
            return candidate if candidate.is_file() else None
    return None


@dataclasses.dataclass(frozen=True)
class _Operation:
    method: str
    template: str
    regex: re.Pattern[str]
    literal_segments: int
    operation: Mapping[str, Any]


class SpecValidator:
    """Validates (method, path, query, body) against an OpenAPI document; see the module doc."""

    def __init__(self, document: Mapping[str, Any], *, base_path: str = "/v3") -> None:
        self.document = document
        self.base_path = base_path
        self._operations: list[_Operation] = []
        for template, item in document.get("paths", {}).items():
            pattern = "^" + re.sub(r"\{[^/]+\}", "([^/]+)", template) + "$"
            literal = sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
            for method, operation in item.items():
                if method.lower() in ("get", "post", "put", "delete", "patch"):
                    self._operations.append(
                        _Operation(
                            method.upper(), template, re.compile(pattern), literal, operation
                        )
                    )
        self._operations.sort(key=lambda op: -op.literal_segments)
        self._schemas: dict[int, Any] = {}

    @classmethod
    def from_file(cls, path: Path) -> SpecValidator:
        """Load a JSON description."""
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def operation(self, method: str, path: str) -> tuple[str, Mapping[str, Any]] | None:
        """The (template, operation) a request maps to, or None."""
        path = self._strip(path)
        for op in self._operations:
            if op.method == method.upper() and op.regex.match(path):
                return op.template, op.operation
        return None

    def _strip(self, path: str) -> str:
        if self.base_path and path.startswith(self.base_path + "/"):
            return path[len(self.base_path) :]
        return path

    def check(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> list[str]:
        """Every way the request departs from the description (empty: it conforms)."""
        found = self.operation(method, path)
        label = f"{method.upper()} {path}"
        if found is None:
            known = any(op.regex.match(self._strip(path)) for op in self._operations)
            what = "method not described for this path" if known else "path not described"
            return [f"{label}: {what}"]
        template, operation = found
        problems = self._check_query(template, operation, query)
        problems += self._check_body(operation, body)
        return [f"{method.upper()} {template}: {p}" for p in problems]

    def _check_query(
        self, template: str, operation: Mapping[str, Any], query: Sequence[tuple[str, str]]
    ) -> list[str]:
        params = {p["name"]: p for p in operation.get("parameters", []) if p.get("in") == "query"}
        values: dict[str, list[str]] = {}
        for name, raw_value in query:
            values.setdefault(name, []).append(raw_value)
        problems = []
        for name, raw in values.items():
            spec = params.get(name)
            if spec is None:
                problems.append(f"query parameter {name!r} is not described")
                continue
            schema = self._resolve(spec.get("schema", {}))
            value: Any
            if schema.get("type") == "array":
                items = [v for r in raw for v in r.split(",")]
                value = [self._coerce(schema.get("items", {}), v) for v in items]
            else:
                value = self._coerce(schema, raw[-1])
            problems += [f"query {name}: {e}" for e in self._errors(schema, value)]
        for name, spec in params.items():
            if spec.get("required") and name not in values:
                problems.append(f"query parameter {name!r} is required")
        return problems

    @staticmethod
    def _coerce(schema: Mapping[str, Any], raw: str) -> Any:
        kind = schema.get("type")
        try:
            if kind == "integer":
                return int(raw)
            if kind == "number":
                return float(raw)
        except ValueError:
            return raw
        if kind == "boolean" and raw in ("true", "false"):
            return raw == "true"
        return raw

    def _check_body(self, operation: Mapping[str, Any], body: bytes | None) -> list[str]:
        request_body = operation.get("requestBody")
        if not body:
            if request_body and request_body.get("required"):
                return ["a JSON body is required"]
            return []
        if request_body is None:
            return ["a body was sent to an operation that takes none"]
        content = request_body.get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            return ["the operation takes no JSON body"]
        try:
            value = json.loads(body)
        except ValueError:
            return ["the body is not JSON"]
        return [f"body: {e}" for e in self._errors(self._strict(schema), value)]

    def _errors(self, schema: Mapping[str, Any], value: Any) -> list[str]:
        import jsonschema

        validator = jsonschema.Draft7Validator(schema)
        out = []
        for error in sorted(validator.iter_errors(value), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in error.path) or "(root)"
            message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
            out.append(f"{where}: {message}")
        return out

    def _resolve(self, schema: Any, depth: int = 0) -> Any:
        """`schema` with every local `$ref` inlined, `oneOf` as `anyOf`, `nullable` as null."""
        if depth > 40:
            return {}
        if isinstance(schema, list):
            return [self._resolve(s, depth + 1) for s in schema]
        if not isinstance(schema, dict):
            return schema
        if "$ref" in schema:
            target: Any = self.document
            for part in schema["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return self._resolve(target, depth + 1)
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key in ("example", "examples", "description", "format", "xml"):
                continue
            out["anyOf" if key == "oneOf" else key] = self._resolve(value, depth + 1)
        if out.pop("nullable", False) and "type" in out:
            out["type"] = [out["type"], "null"]
        return out

    def _strict(self, schema: Mapping[str, Any]) -> Any:
        """The resolved schema, with undescribed properties of described objects refused."""
        resolved = copy.deepcopy(self._resolve(schema))

        def close(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("properties") and "additionalProperties" not in node:
                    node["additionalProperties"] = False
                for value in node.values():
                    close(value)
            elif isinstance(node, list):
                for value in node:
                    close(value)

        close(resolved)
        return resolved
