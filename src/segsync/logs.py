"""Logging setup for the command line, and the one secret redactor of the process.

`configure_logging(LogFormat.JSON)` makes every log record one JSON object on one line
(`ts`, `level`, `logger`, `message`, plus the record's `extra` fields and `exception`), for
log collectors; `LogFormat.TEXT` gives `LEVEL logger: message` lines for people. Library code
only logs through `logging.getLogger`; only the CLI calls `configure_logging`.

Context: every record carries `run_id`, `platform`, `segment` and `phase` (`LOG_FIELDS`; null
when unknown), taken from context variables the engine sets (`bind_log`, `log_context`) unless
the record's own `extra` names them. Context variables follow asyncio tasks: a field bound
inside a platform's task is that task's alone. `run_started` and `run_finished` log a run's
start and end events (`event` `run_started` / `run_finished`) on the `segsync.run` logger.

Redaction: `redactor` is the one process-wide `Redactor`. The HTTP layer registers every
client's keys, tokens and auth headers with it, the CLI the configuration's secrets
(`register_secret`), and each connector class its platform's credential shapes
(`Connector.credential_patterns`, through `register_credential_patterns`). It redacts the
error messages and bodies of the HTTP layer (and so the reports that quote them), every line
`configure_logging`'s handler writes (secret-named extra fields entirely), and, through
`RedactingFilter`, the records of httpx's and httpcore's own loggers whatever handler
receives them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import datetime as dt
import enum
import json
import logging
import re
import sys
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

__all__ = [
    "GENERIC_CREDENTIAL_PATTERNS",
    "LOG_FIELDS",
    "LogFormat",
    "RedactingFilter",
    "Redactor",
    "active_format",
    "bind_log",
    "configure_logging",
    "log_context",
    "redactor",
    "register_credential_patterns",
    "register_secret",
    "run_finished",
    "run_started",
]

REDACTED = "***"

MIN_SECRET_LENGTH = 6
"""Registered strings shorter than this are ignored: they would redact prose."""

GENERIC_CREDENTIAL_PATTERNS: tuple[str, ...] = (
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}",  # Authorization values
    r"(?i)(://[^:/@\s]+:)[^@\s]+(@)",  # passwords in URLs
)
"""Credential shapes of no platform in particular, redacted even when nobody registered them.
Connectors add their own platform's shapes (`register_credential_patterns`)."""

#: Third-party loggers that speak at INFO for every request: shown only at DEBUG.
CHATTY_LOGGERS = ("httpx", "httpcore")

#: Loggers of the HTTP stack that may quote URLs and headers: `RedactingFilter` sits on each.
HTTP_STACK_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)

_SECRET_NAME = re.compile(r"(?i)(key|token|secret|password|passwd|credential|authorization)")

#: Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}


class LogFormat(enum.StrEnum):
    """How log records are written on stderr."""

    TEXT = "text"
    JSON = "json"


class Redactor:
    """Replaces registered secrets (and their obvious encodings) and credential-shaped text
    with `***`.

    A registered secret is also redacted URL-encoded, without its scheme when it is an
    Authorization value (`Bearer <token>`: the token too; `Basic <b64>`: the password too),
    and without a suffix after its first dash when what precedes it is 12 characters or more
    (a key that carries a region or account suffix). Patterns redact by shape: the credential
    itself, keeping an auth scheme or a URL's user.
    """

    def __init__(
        self, secrets: Iterable[str] = (), patterns: Iterable[str] = GENERIC_CREDENTIAL_PATTERNS
    ) -> None:
        self._secrets: list[str] = []
        self._patterns: list[re.Pattern[str]] = []
        for pattern in patterns:
            self.add_pattern(pattern)
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register a secret; strings shorter than `MIN_SECRET_LENGTH` are ignored."""
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            return
        forms = _encodings(secret)
        scheme, _, credential = secret.partition(" ")
        if credential and scheme.isalpha() and len(credential) >= MIN_SECRET_LENGTH:
            forms.add(credential)
            if scheme.lower() == "basic":
                with contextlib.suppress(binascii.Error, ValueError, UnicodeDecodeError):
                    decoded = base64.b64decode(credential, validate=True).decode()
                    password = decoded.partition(":")[2]
                    if len(password) >= MIN_SECRET_LENGTH:
                        forms.update(_encodings(password))
        known = set(self._secrets)
        self._secrets.extend(form for form in forms if form not in known)
        # longest first, so a secret is never half-replaced by one of its fragments
        self._secrets.sort(key=len, reverse=True)

    def add_pattern(self, pattern: str) -> None:
        """Redact everything matching the regular expression `pattern` from now on."""
        if all(known.pattern != pattern for known in self._patterns):
            self._patterns.append(re.compile(pattern))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in self._patterns:
            text = pattern.sub(_keep_prefix, text)
        return text

    def value(self, data: Any) -> Any:
        """`data` (JSON-like) with every string redacted, mapping keys included."""
        if isinstance(data, str):
            return self(data)
        if isinstance(data, Mapping):
            return {self(str(k)): self.value(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self.value(v) for v in data]
        return data

    def field(self, name: str, value: Any) -> Any:
        """The JSON-ready `value` of a log field `name`, redacted: all of it when the name
        (or a nested key's name) says it is secret."""
        if _SECRET_NAME.search(name) and value not in (None, ""):
            return REDACTED
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {str(k): self.field(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.field(name, v) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self(str(value))

    def __bool__(self) -> bool:
        return bool(self._secrets or self._patterns)

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets, {len(self._patterns)} patterns)"


def _encodings(secret: str) -> set[str]:
    """`secret`, URL-encoded both ways, and its part before a dash when that is long."""
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
    head = secret.split("-")[0]
    if len(head) >= 12:
        forms.add(head)
    return forms


def _keep_prefix(match: re.Match[str]) -> str:
    """Keep a URL's user (`://user:`) or the auth scheme; redact the credential itself."""
    if match.re.groups >= 2 and match.group(2) == "@":
        return f"{match.group(1)}{REDACTED}@"
    if match.re.groups >= 1 and match.group(1):
        return f"{match.group(1)} {REDACTED}"
    return REDACTED


redactor = Redactor()
"""The process-wide redactor: the HTTP layer, the log handlers and `RedactingFilter` use it."""


class RedactingFilter(logging.Filter):
    """Redacts a record's message with `redactor` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if redactor:
            message = record.getMessage()
            clean = redactor(message)
            if clean != message:
                record.msg, record.args = clean, ()
        return True


_filter = RedactingFilter()
for _name in HTTP_STACK_LOGGERS:
    logging.getLogger(_name).addFilter(_filter)


_active: list[LogFormat] = []


def active_format() -> LogFormat | None:
    """The format `configure_logging` last installed (None: never configured)."""
    return _active[-1] if _active else None


def register_credential_patterns(patterns: Iterable[str]) -> None:
    """Redact everything matching `patterns` (a connector's credential shapes) from now on."""
    for pattern in patterns:
        redactor.add_pattern(pattern)


def register_secret(secret: str | None) -> None:
    """Never let `secret` appear in a log line, an error or a report."""
    redactor.add(secret)


# -- context fields ------------------------------------------------------------------------

LOG_FIELDS = ("run_id", "platform", "segment", "phase")
"""The fields every log record carries (null when unknown)."""

_context: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"segsync_log_{name}", default=None) for name in LOG_FIELDS
}


def _check_fields(fields: Mapping[str, str | None]) -> None:
    unknown = set(fields) - set(LOG_FIELDS)
    if unknown:
        raise ValueError(f"unknown log fields {sorted(unknown)}; known: {', '.join(LOG_FIELDS)}")


def bind_log(**fields: str | None) -> None:
    """Set context fields (`LOG_FIELDS`) for the rest of the current context (an asyncio
    task's own copy inside a task)."""
    _check_fields(fields)
    for name, value in fields.items():
        _context[name].set(value)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Set context fields for the block; every field is as before afterwards (those bound
    inside the block by `bind_log` included)."""
    _check_fields(fields)
    saved = {name: var.get() for name, var in _context.items()}
    bind_log(**fields)
    try:
        yield
    finally:
        for name, var in _context.items():
            var.set(saved[name])


def context_fields() -> dict[str, str | None]:
    """The context fields of the moment."""
    return {name: var.get() for name, var in _context.items()}


class _ContextFilter(logging.Filter):
    """Puts the context fields on a record, unless its `extra` set them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _context.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


_run_log = logging.getLogger("segsync.run")


def run_started(run_id: str, config: str, command: str) -> None:
    """Bind `run_id` for the rest of the current context and log the run's start."""
    bind_log(run_id=run_id)
    _run_log.info("run %s started (%s of %s)", run_id, command, config,
                  extra={"event": "run_started", "config": config, "command": command})


def run_finished(
    run_id: str, status: str, duration_s: float, platforms: Mapping[str, Mapping[str, Any]],
    errors: int,
) -> None:
    """Log a run's end: its status, duration, record errors and per-platform counts."""
    level = logging.INFO if status in ("ok", "errors") else logging.WARNING
    _run_log.log(level, "run %s %s in %.1fs (%d record errors)", run_id, status, duration_s,
                 errors, extra={"event": "run_finished", "run_id": run_id, "status": status,
                                "duration_s": duration_s, "errors": errors,
                                "platforms": {k: dict(v) for k, v in platforms.items()}})


class _RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: Redactor) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return self.secrets(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, extras, exception."""

    def __init__(self, secrets: Redactor) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self.secrets(record.getMessage()),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = self.secrets.field(name, value)
        if record.exc_info:
            entry["exception"] = self.secrets(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def _quiet_chatty_loggers(record: logging.LogRecord) -> bool:
    """Drop records below WARNING from `CHATTY_LOGGERS`."""
    chatty = record.name.split(".", 1)[0] in CHATTY_LOGGERS
    return not chatty or record.levelno >= logging.WARNING


class _SegsyncHandler(logging.Handler):
    """The handler `configure_logging` installs: one line per record on its stream.

    Without a stream it writes to the `sys.stderr` of the moment (so a swapped stderr, as in
    tests, is honoured), and it is found again by type to be replaced.
    """

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = self.stream if self.stream is not None else sys.stderr
            stream.write(line + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def configure_logging(
    log_format: LogFormat | str = LogFormat.TEXT,
    *,
    level: int | str = logging.WARNING,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send log records at `level` and above to `stream` (default stderr), redacted.

    Idempotent: a second call replaces the handler of the first. The root logger's level is
    only ever lowered (to let `level` through), never raised. Returns the handler.

    Raises:
        ValueError: `level` is not a logging level name or number.
    """
    fmt = LogFormat(log_format)
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _SegsyncHandler):
            root.removeHandler(handler)
    handler = _SegsyncHandler(stream)
    handler.setLevel(numeric)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(
        JsonFormatter(redactor) if fmt is LogFormat.JSON else _RedactingFormatter(redactor)
    )
    if numeric > logging.DEBUG:
        # one line per HTTP request is for debugging, not for `--log-level info`
        handler.addFilter(_quiet_chatty_loggers)
    root.addHandler(handler)
    if root.getEffectiveLevel() > numeric:
        root.setLevel(numeric)
    # JSON on stderr means only JSON: Python warnings become records of `py.warnings`
    logging.captureWarnings(fmt is LogFormat.JSON)
    _active[:] = [fmt]
    return handler
