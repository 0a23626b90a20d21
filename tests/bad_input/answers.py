"""Helpers of the bad-input catalogue: where each platform's contact read is, a transport
that rewrites its answers, and the contents of a state store that must survive a bad run."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "READS",
    "AnswerRewrite",
    "CorruptingTransport",
    "Read",
    "json_rewrite",
    "store_contents",
]


@dataclasses.dataclass(frozen=True)
class Read:
    """How a platform's contact read is paged: endpoint, list key, total key, paging."""

    method: str
    path: str  # regex on the request path
    endpoint: str  # how the endpoint is named in errors
    items: str
    total: str
    paging: str  # "offset" or "after"
    email: tuple[str, ...]  # where an item holds its email


READS: dict[str, Read] = {
    "mailchimp": Read(
        "GET", r"/members$", "/members", "members", "total_items", "offset", ("email_address",)
    ),
    "hubspot": Read(
        "POST",
        r"/contacts/search$",
        "contacts/search",
        "results",
        "total",
        "after",
        ("properties", "email"),
    ),
    "brevo": Read("GET", r"/v3/contacts$", "/contacts", "contacts", "count", "offset", ("email",)),
}

AnswerRewrite = Callable[[Read, bytes, httpx.Request], tuple[bytes, dict[str, str]]]
"""(read, body, request) -> (new body, headers to set)."""


def json_rewrite(body: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """`body` decoded, changed in place by `change`, encoded again."""
    data = json.loads(body)
    change(data)
    return json.dumps(data).encode()


class CorruptingTransport(httpx.AsyncBaseTransport):
    """Passes requests on; rewrites the answers to `read` with `corruption` while `active`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, read: Read, corruption: AnswerRewrite):
        self.inner = inner
        self.read = read
        self.corruption = corruption
        self.active = False
        self.corrupted = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not (
            self.active
            and request.method == self.read.method
            and re.search(self.read.path, request.url.path)
            and response.status_code == 200
        ):
            return response
        body = await response.aread()
        new_body, headers = self.corruption(self.read, body, request)
        self.corrupted += 1
        out_headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        out_headers.update(headers)
        return httpx.Response(200, headers=out_headers, content=new_body, request=request)


KEPT_TABLES = ("base", "canonical", "owned", "ledger", "members")


def store_contents(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What the store keeps between runs (staging, run logs and the generation left out)."""
    with sqlite3.connect(path) as db:
        out = {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall()) for t in KEPT_TABLES}
        out["cursors"] = sorted(db.execute("SELECT config, platform, cursor FROM cursors"))
    return out
