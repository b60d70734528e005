"""The HTTP half of the client: accounts and tokens, and opening sessions (WebSocket or SSE).

A game night outlasts an access token. Once logged in, :class:`BridgeClient` renews the pair
before the access token expires (at :data:`RENEW_AT` of its lifetime; the refresh token
rotates) and sends ``reauthenticate`` with the new access token on every session it opened
that is still live, so plain connections and :class:`~ttrpg_mcp.client.ResilientTable` seats
go on past the lifetime; a seat that reconnects uses the newest token anyway.

:meth:`BridgeClient.connect` opens a WebSocket by default and falls back to SSE when the
WebSocket cannot be opened (an upgrade refused, a proxy that strips it); the session's
``transport`` says which one it got. With ``campaign_id`` it returns only once the table gave
the seat: a refusal (not a member, no such campaign, a full table) raises
:class:`~ttrpg_mcp.client.BridgeClientError` with the bridge's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, overload
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed as _WsClosed
from websockets.exceptions import InvalidHandshake

from ttrpg_mcp.client.connection import BridgeClientError, BridgeConnection, ConnectionClosed
from ttrpg_mcp.client.sse import SseConnection

__all__ = ["BridgeClient", "Tokens", "Transport"]

Transport = Literal["websocket", "sse", "auto"]

log = logging.getLogger("ttrpg_mcp.client")

SUBPROTOCOL = "mcp-ttrpg-v1"
# The bridge answers authentication within its own 10 s window plus the time to list the MCP
# server's capabilities; wait a little longer than that before giving up.
HANDSHAKE_TIMEOUT = 30.0
# The pair is renewed once this share of the access token's lifetime has passed: late enough
# to refresh rarely, early enough that a slow refresh and the reauthenticate round trips land
# before the old token expires (30 s tokens, the shortest, leave 9 s).
RENEW_AT = 0.7
# A refresh that fails for want of the network is tried again after this long.
RENEW_RETRY = 1.0
# Each live session gets this long to acknowledge reauthenticate.
REAUTHENTICATE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Tokens:
    """What login, register and refresh return."""

    access_token: str
    refresh_token: str
    expires_in: int
    user: dict[str, Any]

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Tokens:
        return cls(body["access_token"], body["refresh_token"], int(body["expires_in"]), body["user_info"])


class BridgeClient:
    """A client of one bridge; keeps the current tokens after login."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, renew_tokens: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        self.tokens: Tokens | None = None
        self.renewals = 0
        self._renew_tokens = renew_tokens
        self._tokens_at = 0.0  # loop time the current pair arrived
        self._tokens_changed = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None
        self._live: set[BridgeConnection | SseConnection] = set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        await self._http.aclose()

    # -- accounts -----------------------------------------------------------------------------

    async def register(self, name: str, password: str, *, display_name: str | None = None) -> Tokens:
        body = {"username": name, "password": password, "display_name": display_name}
        return self._keep(await self._post("/api/auth/register", json=body))

    async def login(self, name: str, password: str) -> Tokens:
        return self._keep(await self._post("/api/auth/login", json={"username": name, "password": password}))

    async def refresh(self) -> Tokens:
        return self._keep(await self._post("/api/auth/refresh", headers=self._bearer(refresh=True)))

    async def logout(self) -> None:
        await self._post("/api/auth/logout", headers=self._bearer(refresh=True))
        self.tokens = None

    async def get(self, path: str) -> httpx.Response:
        return await self._http.get(path)

    # -- API keys and the account's data ----------------------------------------------------------

    async def login_with_api_key(self, key: str) -> Tokens:
        """Tokens scoped like the API key ``key`` (``POST /api/auth/login {"apiKey"}``)."""
        return self._keep(await self._post("/api/auth/login", json={"apiKey": key}))

    async def create_api_key(self, name: str = "API key", **limits: Any) -> dict[str, Any]:
        """A new key (``campaign_id``, ``role``, ``expires_in_seconds`` limit it); ``key`` is shown once."""
        return await self._post("/api/auth/api-keys", json={"name": name, **limits}, headers=self._bearer())

    async def list_api_keys(self) -> list[dict[str, Any]]:
        response = await self._http.get("/api/auth/api-keys", headers=self._bearer())
        return list(self._check(response).get("keys", []))

    async def revoke_api_key(self, key_id: str) -> None:
        self._check(await self._http.delete(f"/api/auth/api-keys/{key_id}", headers=self._bearer()))

    async def export_account(self) -> dict[str, Any]:
        """Everything the bridge and the content store hold about or by this account."""
        return dict(self._check(await self._http.get("/api/me/export", headers=self._bearer())))

    async def delete_account(self, password: str | None = None) -> dict[str, Any]:
        """Delete this account (password, or a sign-in under 5 minutes old); what became of its campaigns."""
        body = {} if password is None else {"password": password}
        response = await self._http.request("DELETE", "/api/me", json=body, headers=self._bearer())
        result = dict(self._check(response))
        self.tokens = None
        return result

    # -- campaigns ----------------------------------------------------------------------------

    async def create_campaign(self, name: str, **fields: Any) -> dict[str, Any]:
        """Create a campaign (in the MCP server too); the caller becomes its GM."""
        return await self._post("/api/campaigns", json={"name": name, **fields}, headers=self._bearer())

    async def list_campaigns(self) -> list[dict[str, Any]]:
        response = await self._http.get("/api/campaigns", headers=self._bearer())
        body = self._check(response)
        return list(body if isinstance(body, list) else body.get("campaigns", []))

    async def list_unclaimed_campaigns(self) -> list[dict[str, Any]]:
        """Administrator only: content-store campaigns nobody on the bridge is a member of."""
        response = await self._http.get("/api/campaigns/unclaimed", headers=self._bearer())
        return list(self._check(response).get("campaigns", []))

    async def claim_campaign(self, campaign_id: str) -> dict[str, Any]:
        """Administrator only: become the GM of an unclaimed campaign."""
        return await self._post(f"/api/campaigns/{campaign_id}/claim", headers=self._bearer())

    async def create_invite(self, campaign_id: str, role: str = "player", **fields: Any) -> dict[str, Any]:
        body = {"role": role, **fields}
        return await self._post(f"/api/campaigns/{campaign_id}/invites", json=body, headers=self._bearer())

    async def join_campaign(self, code: str) -> dict[str, Any]:
        return await self._post("/api/campaigns/join", json={"code": code}, headers=self._bearer())

    async def set_member_role(self, campaign_id: str, user_id: str, role: str) -> dict[str, Any]:
        response = await self._http.patch(
            f"/api/campaigns/{campaign_id}/members/{user_id}", json={"role": role}, headers=self._bearer()
        )
        return dict(self._check(response) or {})

    async def remove_member(self, campaign_id: str, user_id: str) -> None:
        response = await self._http.delete(
            f"/api/campaigns/{campaign_id}/members/{user_id}", headers=self._bearer()
        )
        self._check(response)

    def _keep(self, body: dict[str, Any]) -> Tokens:
        self.tokens = Tokens.from_body(body)
        loop = asyncio.get_running_loop()
        self._tokens_at = loop.time()
        self._tokens_changed.set()
        if self._renew_tokens and self._renewer is None:
            self._renewer = loop.create_task(self._renew_loop(), name="token-renewal")
        return self.tokens

    # -- token renewal ------------------------------------------------------------------------

    async def _renew_loop(self) -> None:
        """Renew the pair before the access token expires, then tell every live session."""
        loop = asyncio.get_running_loop()
        while True:
            self._tokens_changed.clear()
            tokens = self.tokens
            if tokens is None:  # logged out: wait for the next login
                await self._tokens_changed.wait()
                continue
            due = self._tokens_at + tokens.expires_in * RENEW_AT - loop.time()
            with contextlib.suppress(TimeoutError):
                # A login or a manual refresh in between starts the count again.
                await asyncio.wait_for(self._tokens_changed.wait(), timeout=max(0.0, due))
                continue
            try:
                renewed = await self.refresh()
            except BridgeClientError as error:
                log.warning("token renewal refused (%s); log in again", error.code)
                self.tokens = None
                continue
            except httpx.TransportError:
                await asyncio.sleep(RENEW_RETRY)
                continue
            self.renewals += 1
            await self._reauthenticate_all(renewed.access_token)

    async def _reauthenticate_all(self, access_token: str) -> None:
        async def one(session: BridgeConnection | SseConnection) -> None:
            with contextlib.suppress(BridgeClientError, TimeoutError, OSError, httpx.TransportError):
                await session.reauthenticate(access_token, timeout=REAUTHENTICATE_TIMEOUT)

        async with asyncio.TaskGroup() as group:
            for session in list(self._live):
                group.create_task(one(session))

    def _bearer(self, *, refresh: bool = False) -> dict[str, str]:
        if self.tokens is None:
            raise BridgeClientError("unauthenticated", "log in first")
        token = self.tokens.refresh_token if refresh else self.tokens.access_token
        return {"Authorization": f"Bearer {token}"}

    async def _post(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return dict(self._check(await self._http.post(path, **kwargs)) or {})

    @staticmethod
    def _check(response: httpx.Response) -> Any:
        """The JSON body of a successful response; an error response raises BridgeClientError."""
        if response.status_code >= 400:
            error = response.json().get("error", {}) if response.content else {}
            raise BridgeClientError(
                error.get("code", f"http_{response.status_code}"),
                error.get("message", response.text),
                error.get("data"),
            )
        return response.json() if response.content else None

    # -- sessions -----------------------------------------------------------------------------

    @overload
    def connect(
        self,
        *,
        campaign_id: str | None = None,
        auth: Literal["query", "message"] = "query",
        token: str | None = None,
        transport: Literal["websocket"],
        last_seq: int | None = None,
        epoch: str | None = None,
        batch: bool = True,
    ) -> AbstractAsyncContextManager[BridgeConnection]: ...

    @overload
    def connect(
        self,
        *,
        campaign_id: str | None = None,
        auth: Literal["query", "message"] = "query",
        token: str | None = None,
        transport: Literal["sse"],
        last_seq: int | None = None,
        epoch: str | None = None,
        batch: bool = True,
    ) -> AbstractAsyncContextManager[SseConnection]: ...

    @overload
    def connect(
        self,
        *,
        campaign_id: str | None = None,
        auth: Literal["query", "message"] = "query",
        token: str | None = None,
        transport: Transport = "auto",
        last_seq: int | None = None,
        epoch: str | None = None,
        batch: bool = True,
    ) -> AbstractAsyncContextManager[BridgeConnection | SseConnection]: ...

    def connect(
        self,
        *,
        campaign_id: str | None = None,
        auth: Literal["query", "message"] = "query",
        token: str | None = None,
        transport: Transport = "auto",
        last_seq: int | None = None,
        epoch: str | None = None,
        batch: bool = True,
    ) -> AbstractAsyncContextManager[BridgeConnection | SseConnection]:
        """An authenticated session over ``transport``, closed when the block ends.

        ``auto`` (the default): a WebSocket, or SSE when the WebSocket cannot be opened (the
        session's ``transport`` says which). ``websocket``: ``auth`` picks ``?token=`` or an
        ``authenticate`` message. ``sse``: the token goes in the ``Authorization`` header
        (``auth`` does not apply). With ``campaign_id`` the session joins that table at once,
        or raises :class:`BridgeClientError` when the table refuses the seat; ``last_seq`` and
        ``epoch`` (of a previous connection) resume it: the bridge replays the missed events or
        sends a snapshot. With ``batch`` (the default) a WebSocket's replay comes as a few
        ``event_batch`` frames, which the connection hands out as the events they hold.
        """
        if token is None:
            if self.tokens is None:
                raise BridgeClientError("unauthenticated", "log in first")
            token = self.tokens.access_token
        if transport == "sse":
            return self._live_session(self._connect_sse(token, campaign_id, last_seq, epoch))
        websocket = self._connect_websocket(token, campaign_id, auth, last_seq, epoch, batch)
        if transport == "websocket":
            return self._live_session(websocket)
        fallback = self._connect_sse(token, campaign_id, last_seq, epoch)
        return self._live_session(self._websocket_or_sse(websocket, fallback))

    @asynccontextmanager
    async def _websocket_or_sse(
        self,
        websocket: AbstractAsyncContextManager[BridgeConnection],
        sse: AbstractAsyncContextManager[SseConnection],
    ) -> AsyncIterator[BridgeConnection | SseConnection]:
        async with AsyncExitStack() as stack:
            session: BridgeConnection | SseConnection
            try:
                session = await stack.enter_async_context(websocket)
            except (InvalidHandshake, ConnectionClosed) as exc:
                if isinstance(exc, ConnectionClosed) and exc.close_code is not None:
                    raise  # the bridge itself closed it (a refused token): SSE would not help
                log.warning("WebSocket unavailable (%s); falling back to SSE", exc)
                session = await stack.enter_async_context(sse)
            yield session

    @asynccontextmanager
    async def _live_session(self, opening: AbstractAsyncContextManager[Any]) -> AsyncIterator[Any]:
        """Keep the session in the set that token renewal reauthenticates, while it is open."""
        async with opening as session:
            self._live.add(session)
            try:
                yield session
            finally:
                self._live.discard(session)

    @asynccontextmanager
    async def _connect_sse(
        self, token: str, campaign_id: str | None, last_seq: int | None, epoch: str | None
    ) -> AsyncIterator[SseConnection]:
        connection = SseConnection(self._http, token, campaign_id=campaign_id, last_seq=last_seq, epoch=epoch)
        await connection.start()
        try:
            yield connection
        finally:
            await connection.close()

    @asynccontextmanager
    async def _connect_websocket(
        self,
        token: str,
        campaign_id: str | None,
        auth: Literal["query", "message"],
        last_seq: int | None,
        epoch: str | None,
        batch: bool,
    ) -> AsyncIterator[BridgeConnection]:
        query: dict[str, str] = {}
        if auth == "query":
            query["token"] = token
            if campaign_id:
                query["campaign_id"] = campaign_id
            if last_seq is not None:
                query["last_seq"] = str(last_seq)
            if epoch:
                query["epoch"] = epoch
            if batch and last_seq is not None:
                query["batch"] = "1"
        url = self.base_url.replace("http", "ws", 1) + "/ws" + (f"?{urlencode(query)}" if query else "")
        async with ws_connect(url, subprotocols=[SUBPROTOCOL], max_size=None) as websocket:  # type: ignore[list-item]
            try:
                async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                    if auth == "message":
                        message = {"id": uuid.uuid4().hex, "type": "authenticate", "token": token}
                        if campaign_id:
                            message["campaign_id"] = campaign_id
                        await websocket.send(json.dumps(message))
                    first = json.loads(await websocket.recv())
                    if first.get("type") != "session_created":
                        error = first.get("error") or {}
                        raise BridgeClientError(
                            error.get("code", "unexpected"),
                            error.get("message", str(first)),
                            error.get("data"),
                        )
                    # With a campaign, the next message is the seat: its snapshot, or why not.
                    seat = json.loads(await websocket.recv()) if campaign_id else None
            except _WsClosed as exc:
                rcvd = exc.rcvd
                raise ConnectionClosed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None
            if seat is not None and seat.get("type") == "error":
                raise _refusal(seat)
            connection = BridgeConnection(websocket, first, initial=[seat] if seat is not None else [])
            try:
                yield connection
            finally:
                await connection.close()


def _refusal(message: dict[str, Any]) -> BridgeClientError:
    """The bridge's error reply (or an unexpected message) as the exception to raise."""
    error = message.get("error") or {}
    return BridgeClientError(
        error.get("code", "unexpected"), error.get("message", str(message)), error.get("data")
    )
