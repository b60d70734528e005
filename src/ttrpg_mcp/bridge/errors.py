"""The bridge's one error type and the table of its codes.

Every failure a client can see is a :class:`BridgeError` with a stable string ``code``, a
readable ``message`` and optional ``data``. Inside the bridge it is raised; at the edge
(dispatch for the WebSocket and SSE transports, the HTTP API's exception handler) it becomes
a value: an ``error`` reply or an HTTP problem body. Nothing a client sends turns into an
exception that ends its connection.

Codes are strings rather than the spike's numbers: the later parts of the protocol (``forbidden``,
``conflict``, ``rate_limited``) name them, clients switch on names, and a JSON-RPC error from a
child keeps its numeric code in ``data["jsonrpc_code"]``. :data:`ERROR_CODES` is the table that
``docs/protocol.md`` is checked against.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ERROR_CODES", "BridgeError"]

# code -> (HTTP status when it surfaces on the HTTP API, what it means)
ERROR_CODES: dict[str, tuple[int, str]] = {
    "invalid_json": (400, "The message is not valid JSON."),
    "invalid_message": (422, "The message does not match the schema of its type."),
    "unknown_type": (422, "The message's type is not one the protocol knows."),
    "message_too_large": (413, "The message exceeds the size limit."),
    "message_too_deep": (400, "The message nests deeper than the limit."),
    "value_too_long": (413, "A string, array or object in the message is over its length limit."),
    "dangerous_key": (
        400,
        "The message carries a key that is never allowed (__proto__, constructor, prototype).",
    ),
    "batch_too_large": (413, "A batch holds more messages than the limit."),
    "unauthenticated": (401, "The connection has not authenticated yet."),
    "invalid_token": (401, "The token is malformed, tampered with, of the wrong kind or revoked."),
    "token_expired": (401, "The token has expired; refresh it."),
    "invalid_credentials": (401, "Unknown user, wrong password or disabled account."),
    "registration_closed": (403, "This bridge does not accept new accounts that way."),
    "user_exists": (409, "An account with that name exists."),
    "forbidden": (403, "Your role does not allow this."),
    "campaign_required": (
        403,
        "The credential is not bound to one campaign; an agent at /mcp needs a key or token scoped to one.",
    ),
    "not_found": (404, "No such thing."),
    "unknown_tool": (404, "The MCP server has no tool by that name."),
    "invalid_params": (422, "The parameters do not match the tool's or message's schema."),
    "tool_error": (422, "The tool ran and reported an error (unknown id, invalid value, bad dice...)."),
    "invalid_dice": (422, "The dice expression is malformed or over a limit."),
    "mcp_error": (502, "The MCP server answered with a JSON-RPC error."),
    "mcp_timeout": (504, "The MCP server did not answer in time; the request was cancelled in it."),
    "mcp_child_crashed": (502, "The MCP child serving the request exited; retry."),
    "mcp_unavailable": (503, "No MCP child can serve requests now."),
    "rate_limited": (429, "Too many messages; wait retry_after seconds."),
    "conflict": (409, "The change was based on a stale version."),
    "limit_reached": (429, "A configured limit (participants per campaign, sessions per user) is reached."),
    "storage_unavailable": (
        503,
        "The store cannot save or read now (disk full, I/O error, read-only); nothing was changed. Retry.",
    ),
    "too_many_connections": (
        503,
        "The bridge, or your address, holds as many connections as it allows; retry shortly.",
    ),
    "shutting_down": (503, "The bridge is shutting down; reconnect shortly."),
    "internal_error": (500, "An unexpected error in the bridge; it has been logged."),
}


class BridgeError(Exception):
    """A failure with a code from :data:`ERROR_CODES`, shown to the client as is."""

    def __init__(self, code: str, message: str, data: dict[str, Any] | None = None) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    @property
    def http_status(self) -> int:
        return ERROR_CODES[self.code][0]

    def to_dict(self) -> dict[str, Any]:
        """The ``error`` object of the protocol: ``{code, message, data}``."""
        return {"code": self.code, "message": self.message, "data": self.data}
