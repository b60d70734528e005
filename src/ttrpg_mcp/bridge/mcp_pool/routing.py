"""Which sessions a child's notification reaches: listeners, resource subscriptions, fan-out rules.

A shared child serves many sessions at once, so a notification it sends must go to the right
ones, and never to a session it does not concern:

* ``notifications/progress`` is matched to its request by the child-unique token before it gets
  here (see ``child.py``) and reaches only the session that made that request;
* ``notifications/*/list_changed`` concerns everyone who lists tools, resources or prompts: every
  listener;
* ``notifications/resources/updated`` reaches the sessions that subscribed to that uri through
  the pool (``resources/subscribe`` is tracked as it passes); a uri nobody ever subscribed to
  through the pool (a server that pushes updates unasked) reaches every listener, but one whose
  subscribers have all left reaches nobody;
* ``notifications/message`` (logging) and ``notifications/cancelled`` are the pool's own business
  and reach no session;
* anything else cannot be attributed to a session and is dropped from a shared child.

A child leased to one session (isolation mode) concerns that session alone, so everything it
sends goes to its holder.

Listeners are plain callables invoked on the event loop; one that raises is logged and the
others still run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

__all__ = ["Listener", "NotificationRouter", "is_list_changed", "log_server_message"]

Listener = Callable[[dict[str, Any]], None]

_log = structlog.get_logger(__name__)

# Handled by the pool itself (logging, request bookkeeping), never relayed.
_POOL_ONLY = frozenset({"notifications/message", "notifications/cancelled", "notifications/progress"})


# MCP's syslog levels onto structlog's methods.
_LOG_LEVELS = {"notice": "info", "alert": "critical", "emergency": "critical"}


def log_server_message(message: dict[str, Any], pid: int | None) -> None:
    """Write a child's ``notifications/message`` to the bridge's log at its level."""
    params = message.get("params")
    params = params if isinstance(params, dict) else {}
    level = str(params.get("level", "info"))
    log = getattr(_log, _LOG_LEVELS.get(level, level), _log.info)
    log("mcp_server_log", mcp_child_pid=pid, logger=params.get("logger"), data=params.get("data"))


def is_list_changed(method: str) -> bool:
    return method.startswith("notifications/") and method.endswith("/list_changed")


class NotificationRouter:
    """Listeners by session id and resource subscriptions by uri."""

    def __init__(self) -> None:
        self._listeners: dict[str, Listener] = {}
        self._subscribers: dict[str, set[str]] = {}
        self._known_uris: set[str] = set()  # ever subscribed through the pool

    def add_listener(self, session_id: str, callback: Listener) -> None:
        """Route notifications for ``session_id`` to ``callback`` (replacing an earlier one)."""
        self._listeners[session_id] = callback

    def remove_listener(self, session_id: str) -> None:
        self._listeners.pop(session_id, None)

    def subscribe(self, session_id: str, uri: str) -> None:
        self._subscribers.setdefault(uri, set()).add(session_id)
        self._known_uris.add(uri)

    def unsubscribe(self, session_id: str, uri: str) -> None:
        sessions = self._subscribers.get(uri)
        if sessions is not None:
            sessions.discard(session_id)
            if not sessions:
                del self._subscribers[uri]

    def forget(self, session_id: str) -> None:
        """Drop every subscription of a session that has ended."""
        for uri in [uri for uri, sessions in self._subscribers.items() if session_id in sessions]:
            self.unsubscribe(session_id, uri)

    def subscriptions(self, session_id: str) -> set[str]:
        return {uri for uri, sessions in self._subscribers.items() if session_id in sessions}

    def targets(self, message: dict[str, Any], *, leased_to: str | None = None) -> list[str]:
        """The session ids a child's notification goes to (see the module docstring)."""
        method = message.get("method")
        if not isinstance(method, str) or method in _POOL_ONLY:
            return []
        if leased_to is not None:
            return [leased_to]
        if is_list_changed(method):
            return list(self._listeners)
        if method == "notifications/resources/updated":
            params = message.get("params")
            uri = params.get("uri") if isinstance(params, dict) else None
            if not isinstance(uri, str) or uri not in self._known_uris:
                return list(self._listeners)
            return sorted(self._subscribers.get(uri, ()))
        return []

    def deliver(self, message: dict[str, Any], session_ids: list[str]) -> None:
        """Call each session's listener with ``message``; a listener that raises is logged."""
        for session_id in session_ids:
            callback = self._listeners.get(session_id)
            if callback is None:
                continue
            try:
                callback(message)
            except Exception:
                _log.exception("mcp_listener_failed", session_id=session_id, method=message.get("method"))
