"""JSON-RPC 2.0 messages as the pool relays them: pure functions, no I/O.

The pool speaks newline-delimited JSON-RPC with its children (the MCP stdio transport), so
everything here works on plain dicts: decoding one line, telling a request from a notification
from a response, building the few messages the pool itself sends (``initialize``, ``ping``,
``notifications/cancelled``, answers to a child's own requests), swapping a caller's progress
token for a child-unique one, and turning a JSON-RPC error into a :class:`BridgeError`.

Protocol version. ``mcp`` 2.3 knows two eras: the handshake era (``initialize``, then
``notifications/initialized``; :data:`HANDSHAKE_PROTOCOL_VERSIONS`) and the handshake-free
2026 era (:data:`MODERN_PROTOCOL_VERSIONS`, whose newest is the SDK's ``LATEST_PROTOCOL_VERSION``)
that stamps the version and client capabilities into every request's ``_meta`` and is
discovered with ``server/discover`` rather than negotiated. An ``initialize`` never opens the
2026 era: the SDK's server answers one that offers 2026-07-28 with its newest handshake version.
So the pool offers :data:`LATEST_HANDSHAKE_VERSION` and accepts whichever handshake version the
server answers with (an older server may counter with 2024-11-05); the relay passes methods
and results through untouched, so any of them works. An answer outside that list fails the
child's start with a message naming it.
"""

from __future__ import annotations

import enum
import json
from typing import Any

import orjson
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

from ttrpg_mcp import __version__
from ttrpg_mcp.bridge.errors import BridgeError

__all__ = [
    "CLIENT_NAME",
    "INTERNAL_ERROR",
    "METHOD_NOT_FOUND",
    "InvalidMessageError",
    "Message",
    "MessageKind",
    "cancelled_notification",
    "decode",
    "encode",
    "error_from_response",
    "error_response",
    "initialize_params",
    "kind_of",
    "negotiated_version",
    "notification",
    "request",
    "result_response",
    "with_progress_token",
    "with_viewer",
]

CLIENT_NAME = "ttrpg-bridge"
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603

Message = dict[str, Any]


class InvalidMessageError(ValueError):
    """A line from a child that is not a JSON-RPC 2.0 message; the pool logs and skips it."""


class MessageKind(enum.Enum):
    """What a decoded message is, which decides where the pool sends it."""

    REQUEST = "request"  # the child asks the bridge something (ping, roots/list, sampling)
    NOTIFICATION = "notification"  # progress, logging, list_changed, resources/updated
    RESPONSE = "response"  # the answer to one of the pool's requests


def encode(message: Message) -> bytes:
    """One message as one line (JSON escapes newlines inside strings); orjson, else :mod:`json`."""
    try:
        return orjson.dumps(message, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # orjson.JSONEncodeError: an integer past 64 bits, a key not a string
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode(line: bytes) -> Message:
    """Parse one line into a message object."""
    try:
        value = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidMessageError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidMessageError(f"not a JSON object but {type(value).__name__}")
    if value.get("jsonrpc") != "2.0":
        raise InvalidMessageError("missing jsonrpc: 2.0")
    return value


def kind_of(message: Message) -> MessageKind:
    """Classify a decoded message, or raise :class:`InvalidMessageError`."""
    method = message.get("method")
    if isinstance(method, str):
        return MessageKind.REQUEST if "id" in message else MessageKind.NOTIFICATION
    if "id" in message and ("result" in message or "error" in message):
        return MessageKind.RESPONSE
    raise InvalidMessageError("neither a request, a notification nor a response")


def request(request_id: int, method: str, params: dict[str, Any] | None) -> Message:
    message: Message = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method: str, params: dict[str, Any] | None = None) -> Message:
    message: Message = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def result_response(request_id: Any, result: dict[str, Any]) -> Message:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_response(request_id: Any, code: int, message: str, data: Any = None) -> Message:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def cancelled_notification(request_id: int, reason: str) -> Message:
    """Tell a child to stop working on one of its requests (a timeout or the caller gave up)."""
    return notification("notifications/cancelled", {"requestId": request_id, "reason": reason})


def with_progress_token(params: dict[str, Any] | None, token: int) -> tuple[dict[str, Any], Any]:
    """A copy of ``params`` whose ``_meta.progressToken`` is ``token``, and the caller's own token.

    Tokens from different sessions may collide, and one child serves them all, so the child
    only ever sees tokens the pool minted; the caller's token (None when it sent none) is kept
    to label the progress notifications relayed back to it. The caller's dicts are not mutated.
    """
    copied = dict(params or {})
    meta = copied.get("_meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    original = meta.get("progressToken")
    meta["progressToken"] = token
    copied["_meta"] = meta
    return copied, original


def with_viewer(params: dict[str, Any] | None, meta_key: str, viewer: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` whose ``_meta`` names the caller under ``meta_key``, and nothing else.

    The MCP server trusts that entry to decide what the caller may see (GM secrets), so it is
    always the bridge's: whatever a caller put in ``_meta`` is dropped, except its
    ``progressToken`` (which :func:`with_progress_token` swaps later). The caller's dicts are
    not mutated.
    """
    copied = dict(params or {})
    given = copied.get("_meta")
    meta: dict[str, Any] = {}
    if isinstance(given, dict) and "progressToken" in given:
        meta["progressToken"] = given["progressToken"]
    meta[meta_key] = dict(viewer)
    copied["_meta"] = meta
    return copied


def error_from_response(error: Any, method: str) -> BridgeError:
    """The ``mcp_error`` for a child's JSON-RPC error object (kept whole in ``data``)."""
    if not isinstance(error, dict):
        return BridgeError(
            "mcp_error",
            f"{method}: malformed error from the MCP server",
            {"jsonrpc_code": INTERNAL_ERROR, "detail": error},
        )
    code = error.get("code")
    text = error.get("message")
    return BridgeError(
        "mcp_error",
        f"{method}: {text}" if isinstance(text, str) and text else f"{method} failed in the MCP server",
        {"jsonrpc_code": code if isinstance(code, int) else INTERNAL_ERROR, "detail": error.get("data")},
    )


def initialize_params() -> dict[str, Any]:
    """The ``initialize`` request: no client capabilities, since the relay answers none of them."""
    return {
        "protocolVersion": LATEST_HANDSHAKE_VERSION,
        "capabilities": {},
        "clientInfo": {"name": CLIENT_NAME, "version": __version__},
    }


def negotiated_version(result: dict[str, Any]) -> str:
    """The protocol version a child answered ``initialize`` with, if the SDK can speak it."""
    version = result.get("protocolVersion")
    if not isinstance(version, str) or version not in HANDSHAKE_PROTOCOL_VERSIONS:
        raise InvalidMessageError(
            f"the MCP server answered initialize with protocol version {version!r}; "
            f"supported: {', '.join(HANDSHAKE_PROTOCOL_VERSIONS)}"
        )
    return version
