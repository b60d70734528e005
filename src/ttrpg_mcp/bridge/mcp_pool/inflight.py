"""The requests one child is working on: its ids, progress tokens and deadlines. No I/O.

One child serves many sessions, whose own request ids and progress tokens may well collide (two
browsers both send id 1 and token "p"). So every request a child sees gets the next integer of
that child's counter as its id, and the same integer as its ``progressToken``. A reply is
matched by id; a progress notification by token, which counts as a sign of life that pushes the
request's deadline back, and is relayed to the session that asked under the token it chose.

A request's deadline is ``timeout`` seconds after its last sign of life (its start, or its last
progress notification), and never later than ``max_timeout`` after its start.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.mcp_pool import jsonrpc

__all__ = ["InFlightTable", "PendingRequest"]


@dataclass
class PendingRequest:
    """One request sent to the child and not yet answered."""

    request_id: int
    method: str
    session_id: str | None
    caller_token: Any  # the caller's own progressToken (None: it asked for no progress)
    internal: bool  # the pool's own initialize and ping: not counted as load
    future: asyncio.Future[dict[str, Any]]
    started: float
    last_sign_of_life: float

    def deadline(self, timeout: float, max_timeout: float) -> float:
        return min(self.last_sign_of_life + timeout, self.started + max_timeout)


class InFlightTable:
    """Pending requests of one child by child-side id."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[int, PendingRequest] = {}

    @property
    def load(self) -> int:
        """Requests from sessions in flight (the pool's own pings excluded)."""
        return sum(1 for pending in self._pending.values() if not pending.internal)

    def open(
        self,
        method: str,
        params: dict[str, Any] | None,
        *,
        session_id: str | None,
        internal: bool,
        now: float,
    ) -> tuple[PendingRequest, jsonrpc.Message]:
        """Register a request; return it and the message to send (id and token rewritten)."""
        request_id = next(self._ids)
        # The pool's own requests (initialize, ping) need no progress token.
        outgoing, caller_token = (
            (params, None) if internal else jsonrpc.with_progress_token(params, request_id)
        )
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        pending = PendingRequest(request_id, method, session_id, caller_token, internal, future, now, now)
        self._pending[request_id] = pending
        return pending, jsonrpc.request(request_id, method, outgoing)

    def close(self, pending: PendingRequest) -> None:
        """Forget a request that has ended one way or another."""
        self._pending.pop(pending.request_id, None)
        if pending.future.done() and not pending.future.cancelled():
            pending.future.exception()  # retrieved, so asyncio never logs it as forgotten

    def resolve(self, response: jsonrpc.Message) -> bool:
        """Complete the request a response answers; False when none is waiting for it."""
        request_id = response.get("id")
        pending = self._pending.get(request_id) if isinstance(request_id, int) else None
        if pending is None or pending.future.done():
            return False
        result = response.get("result")
        if "error" in response:
            pending.future.set_exception(jsonrpc.error_from_response(response["error"], pending.method))
        elif not isinstance(result, dict):
            pending.future.set_exception(jsonrpc.error_from_response(result, pending.method))
        else:
            pending.future.set_result(result)
        return True

    def progress(self, message: jsonrpc.Message, now: float) -> tuple[str, jsonrpc.Message] | None:
        """Count a progress notification as a sign of life of its request.

        Returns the session to relay it to and the notification with the caller's own token, or
        None when nobody wants it (an ended request, a caller that asked for no progress).
        """
        params = message.get("params")
        token = params.get("progressToken") if isinstance(params, dict) else None
        pending = self._pending.get(token) if isinstance(token, int) else None
        if pending is None or not isinstance(params, dict):
            return None
        pending.last_sign_of_life = now
        if pending.caller_token is None or pending.session_id is None:
            return None
        return pending.session_id, {**message, "params": {**params, "progressToken": pending.caller_token}}

    def fail_all(self, error: BridgeError, *, internal: bool = True) -> list[PendingRequest]:
        """Fail every request still waiting (the pool's own too, unless not ``internal``); those failed."""
        failed = [
            pending
            for pending in self._pending.values()
            if not pending.future.done() and (internal or not pending.internal)
        ]
        for pending in failed:
            pending.future.set_exception(error)
        return failed
