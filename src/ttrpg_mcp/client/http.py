"""The HTTP half of the client: accounts and tokens, and opening sessions (WebSocket or SSE)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, overload
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed as _WsClosed

from ttrpg_mcp.client.connection import BridgeClientError, BridgeConnection, ConnectionClosed
from ttrpg_mcp.client.sse import SseConnection

__all__ = ["BridgeClient", "Tokens", "Transport"]

Transport = Literal["websocket", "sse"]

SUBPROTOCOL = "mcp-ttrpg-v1"
# The bridge answers authentication within its own 10 s window plus the time to list the MCP
# server's capabilities; wait a little longer than that before giving up.
HANDSHAKE_TIMEOUT = 30.0


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

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        self.tokens: Tokens | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- accounts -----------------------------------------------------------------------------

    async def register(self, name: str, password: str, *, display_name: str | None = None) -> Tokens:
        body = {"name": name, "password": password, "display_name": display_name}
        return self._keep(await self._post("/api/auth/register", json=body))

    async def login(self, name: str, password: str) -> Tokens:
        return self._keep(await self._post("/api/auth/login", json={"name": name, "password": password}))

    async def refresh(self) -> Tokens:
        return self._keep(await self._post("/api/auth/refresh", headers=self._bearer(refresh=True)))

    async def logout(self) -> None:
        await self._post("/api/auth/logout", headers=self._bearer(refresh=True))
        self.tokens = None

    async def get(self, path: str) -> httpx.Response:
        return await self._http.get(path)

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
        return self.tokens

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
        transport: Literal["websocket"] = "websocket",
        last_seq: int | None = None,
        epoch: str | None = None,
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
    ) -> AbstractAsyncContextManager[SseConnection]: ...

    @overload
    def connect(
        self,
        *,
        campaign_id: str | None = None,
        auth: Literal["query", "message"] = "query",
        token: str | None = None,
        transport: Transport,
        last_seq: int | None = None,
        epoch: str | None = None,
    ) -> AbstractAsyncContextManager[BridgeConnection | SseConnection]: ...

    def connect(
        self,
        *,
        campaign_id: str | None = None,
        auth: Literal["query", "message"] = "query",
        token: str | None = None,
        transport: Transport = "websocket",
        last_seq: int | None = None,
        epoch: str | None = None,
    ) -> AbstractAsyncContextManager[BridgeConnection | SseConnection]:
        """An authenticated session over ``transport``, closed when the block ends.

        ``websocket``: ``auth`` picks ``?token=`` or an ``authenticate`` message. ``sse``: the
        token goes in the ``Authorization`` header (``auth`` does not apply). With
        ``campaign_id`` the session joins that table at once; ``last_seq`` and ``epoch`` (of a
        previous connection) resume it: the bridge replays the missed events or sends a snapshot.
        """
        if token is None:
            if self.tokens is None:
                raise BridgeClientError("unauthenticated", "log in first")
            token = self.tokens.access_token
        if transport == "sse":
            return self._connect_sse(token, campaign_id, last_seq, epoch)
        return self._connect_websocket(token, campaign_id, auth, last_seq, epoch)

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
            except _WsClosed as exc:
                rcvd = exc.rcvd
                raise ConnectionClosed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None
            if first.get("type") != "session_created":
                error = first.get("error") or {}
                raise BridgeClientError(error.get("code", "unexpected"), error.get("message", str(first)))
            connection = BridgeConnection(websocket, first)
            try:
                yield connection
            finally:
                await connection.close()
