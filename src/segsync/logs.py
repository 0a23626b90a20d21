"""Logging setup for the command line: text or JSON lines on stderr, secrets redacted.

`configure_logging(LogFormat.JSON)` makes every log record one JSON object on one line
(`ts`, `level`, `logger`, `message`, plus the record's `extra` fields and `exception`), for
log collectors; `LogFormat.TEXT` gives `LEVEL logger: message` lines for people. Either way,
every record passes a `SecretRedactor` first: the secrets registered with `register_secret`
(the CLI registers the configuration's keys and tokens), values that look like platform
credentials (Mailchimp keys, HubSpot private-app tokens, Brevo keys, bearer tokens), and extra
fields whose name says they are secret. Library code only logs through `logging.getLogger`;
only the CLI calls `configure_logging`.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

__all__ = [
    "LogFormat",
    "SecretRedactor",
    "active_format",
    "configure_logging",
    "redactor",
    "register_credential_patterns",
    "register_secret",
]

REDACTED = "***"

#: Credentials recognisable by their shape, redacted even when nobody registered them.
CREDENTIAL_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b[0-9a-f]{32}-us\d{1,3}\b"),  # Mailchimp API key
    re.compile(r"\bxkeysib-[0-9A-Za-z-]{16,}"),  # Brevo API key
    re.compile(r"\bxsmtpsib-[0-9A-Za-z-]{16,}"),  # Brevo SMTP key
    re.compile(r"\bpat-[a-z]{2,4}\d?-[0-9a-f-]{20,}"),  # HubSpot private-app token
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),  # Authorization values
    re.compile(r"(?i)(://[^:/@\s]+:)[^@\s]+(@)"),  # passwords in URLs
)

#: Third-party loggers that speak at INFO for every request: shown only at DEBUG.
CHATTY_LOGGERS = ("httpx", "httpcore")

_SECRET_NAME = re.compile(r"(?i)(key|token|secret|password|passwd|credential|authorization)")

#: Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}


class LogFormat(enum.StrEnum):
    """How log records are written on stderr."""

    TEXT = "text"
    JSON = "json"


class SecretRedactor:
    """Replaces registered secrets and credential-shaped values with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register a secret (strings shorter than 6 characters are ignored: they are prose)."""
        if secret and len(secret) >= 6 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in CREDENTIAL_PATTERNS:
            text = pattern.sub(_keep_prefix, text)
        return text

    def value(self, name: str, value: Any) -> Any:
        """A JSON-ready `value` of the field `name`, redacted (all of it, if the name says so)."""
        if _SECRET_NAME.search(name) and value not in (None, ""):
            return REDACTED
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {str(k): self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(name, v) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self(str(value))

    def __repr__(self) -> str:
        return f"SecretRedactor({len(self._secrets)} secrets)"


def _keep_prefix(match: re.Match[str]) -> str:
    """Keep a URL's user (`://user:`) or the auth scheme; redact the credential itself."""
    if match.re.groups >= 2 and match.group(2) == "@":
        return f"{match.group(1)}{REDACTED}@"
    if match.re.groups >= 1 and match.group(1):
        return f"{match.group(1)} {REDACTED}"
    return REDACTED


redactor = SecretRedactor()
"""The process-wide redactor every handler installed by `configure_logging` uses."""


_active: list[LogFormat] = []


def active_format() -> LogFormat | None:
    """The format `configure_logging` last installed (None: never configured)."""
    return _active[-1] if _active else None


def register_credential_patterns(patterns: Iterable[str]) -> None:
    """Redact everything matching `patterns` (a connector's credential shapes) from now on."""
    global CREDENTIAL_PATTERNS
    known = {p.pattern for p in CREDENTIAL_PATTERNS}
    added = tuple(re.compile(p) for p in patterns if p not in known)
    CREDENTIAL_PATTERNS = CREDENTIAL_PATTERNS + added


def register_secret(secret: str | None) -> None:
    """Never let `secret` appear in a log line."""
    redactor.add(secret)


class _RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: SecretRedactor) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return self.secrets(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, extras, exception."""

    def __init__(self, secrets: SecretRedactor) -> None:
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
                entry[name] = self.secrets.value(name, value)
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
