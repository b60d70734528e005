"""The WebSocket close codes the bridge uses (RFC 6455 section 7.4.1), in one place.

Below every layer that closes a connection (dispatch, the transports, the runtime's drain),
so none of them imports another for a number.
"""

from __future__ import annotations

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_NORMAL",
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_SERVICE_RESTART",
    "CLOSE_TRY_AGAIN_LATER",
]

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # idle timeout, or the client is gone
CLOSE_POLICY_VIOLATION = 1008  # bad token, sustained abuse
CLOSE_SERVICE_RESTART = 1012  # the bridge is shutting down: reconnect shortly
CLOSE_TRY_AGAIN_LATER = 1013  # a slow consumer, or too many connections
