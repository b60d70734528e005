"""Structured logs: JSON lines for machines, a console format in a terminal.

Context is bound once with :func:`structlog.contextvars.bind_contextvars` (connection id,
session id, user, request id) and carried by every event logged below it, so one grep of a
session id shows its whole story. Logs go to stderr. Passwords and tokens are never passed to
a log call; :func:`_drop_secrets` removes any key that looks like one as a second line of defence.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

__all__ = ["configure_logging"]

_TOKEN_IN_QUERY = re.compile(r"((?:access_)?token=)[^&\s\"]+")
_SECRET_KEYS = frozenset({"password", "token", "access_token", "refresh_token", "secret", "authorization"})


def _drop_secrets(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


def configure_logging(
    level: Literal["debug", "info", "warning", "error"] = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
) -> None:
    """Route structlog (and the standard library's logging, for uvicorn) to stderr."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=numeric, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s", force=True
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_RedactTokens())
    # Migrations log each step at INFO on every start and admin command; only problems matter.
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))


class _RedactTokens(logging.Filter):
    """uvicorn logs each WebSocket's path with its query string, where ``?token=`` may sit."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg = _TOKEN_IN_QUERY.sub(r"\1[redacted]", message)
            record.args = None
        return True
