"""The ASGI application: HTTP API, WebSocket gateway, health, readiness and metrics.

:func:`create_app` builds a FastAPI app around one :class:`~ttrpg_mcp.bridge.runtime.Bridge`,
started and stopped by the app's lifespan. The OpenAPI document and its interactive page are at
``/openapi.json`` and ``/docs``; the web table is served at ``/``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from ttrpg_mcp import __version__
from ttrpg_mcp.bridge.http.account_routes import router as account_router
from ttrpg_mcp.bridge.http.auth_routes import install_error_handler
from ttrpg_mcp.bridge.http.auth_routes import router as auth_router
from ttrpg_mcp.bridge.http.campaign_routes import router as campaign_router
from ttrpg_mcp.bridge.http.docs_routes import install_offline_docs
from ttrpg_mcp.bridge.http.oauth_provider import BridgeOAuthProvider
from ttrpg_mcp.bridge.http.oauth_routes import install_oauth
from ttrpg_mcp.bridge.http.security_headers import harden
from ttrpg_mcp.bridge.http.web_routes import install_web_app
from ttrpg_mcp.bridge.mcp_endpoint import MCP_PATH, McpEndpoint
from ttrpg_mcp.bridge.metrics import CONTENT_TYPE_LATEST
from ttrpg_mcp.bridge.ratelimit import AddressThrottle, LoginThrottle
from ttrpg_mcp.bridge.runtime import Bridge
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.transports.sse import install_sse_routes
from ttrpg_mcp.bridge.transports.websocket import websocket_endpoint

WEBSOCKET_PATH = "/ws"

__all__ = ["create_app"]

log = structlog.get_logger("ttrpg_mcp.bridge.http")


_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class _DirectWebSocket:
    """``/ws`` straight to its endpoint, past the middleware below and the router.

    Each layer a connection passes through stays on its stack for the connection's whole life
    (a frame, FastAPI's exit stacks, a wrapped ``send``), and each frame sent goes through every
    wrapper: for a WebSocket open for hours that was about a fifth of its memory and part of
    every send. No layer does anything for ``/ws``: CORS, the request log and the body limit are
    for HTTP, and the endpoint checks the origin and ends its own errors.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "websocket"
            and scope["path"].removeprefix(scope.get("root_path", "")) == WEBSOCKET_PATH
        ):
            await websocket_endpoint(WebSocket(scope, receive, send))
            return
        await self.app(scope, receive, send)


class _RequestLog:
    """One log event per HTTP request (method, path, status, duration), never the query string,
    which may carry a token; and the security headers on every answer. Plain ASGI middleware,
    so WebSocket traffic passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Browsers must take every answer for what its Content-Type says (JSON stays
                # JSON, never sniffed into HTML), and no page may frame the API.
                message["headers"] = harden(scope, [*message.get("headers", []), *_SECURITY_HEADERS])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            if scope["path"] not in ("/healthz", "/metrics"):
                log.info(
                    "http_request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )


def create_app(settings: BridgeSettings) -> FastAPI:
    """The bridge as an ASGI app; nothing starts until the lifespan does."""
    bridge = Bridge(settings)
    mcp_endpoint = McpEndpoint(bridge)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await bridge.start()
        try:
            async with mcp_endpoint.run():
                yield
        finally:
            await bridge.stop()

    app = FastAPI(
        title="ttrpg-bridge",
        version=__version__,
        summary="A shared tabletop-RPG table over WebSocket, relayed to an MCP server.",
        lifespan=lifespan,
        # /docs is served offline by install_offline_docs; ReDoc would need a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.bridge = bridge
    app.state.auth = bridge.auth
    app.state.login_throttle = LoginThrottle(
        settings.login_per_minute_account, settings.login_per_minute_ip, shared=bridge.buckets
    )
    app.state.register_throttle = AddressThrottle(settings.register_per_minute_ip, shared=bridge.buckets)
    install_error_handler(app)
    app.include_router(auth_router)
    app.include_router(campaign_router)
    app.include_router(account_router)
    oauth = BridgeOAuthProvider(bridge.store, settings.access_token_ttl, settings.refresh_token_ttl)
    install_oauth(app, oauth, settings.register_per_minute_ip)
    app.add_api_websocket_route(WEBSOCKET_PATH, websocket_endpoint)  # reached through _DirectWebSocket
    # MCP Streamable HTTP for agents (see docs/protocol.md); not in the OpenAPI document.
    app.router.routes.append(Route(MCP_PATH, mcp_endpoint, methods=["GET", "POST", "DELETE"]))
    install_sse_routes(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_credentials="*" not in settings.allowed_origins,
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Last-Event-ID",
            "Mcp-Session-Id",
            "Mcp-Protocol-Version",
        ],
        # A browser-based MCP client reads its session id from /mcp's answer.
        expose_headers=["Mcp-Session-Id"],
    )
    app.add_middleware(_RequestLog)
    app.add_middleware(_DirectWebSocket)  # added last: the outermost of these

    @app.get("/healthz", tags=["operations"], summary="The process is alive.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="The store answers and an MCP child is ready.")
    async def readyz() -> JSONResponse:
        ready, checks = await bridge.ready()
        body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
        body["mcp_breaker"] = bridge.pool.breaker.to_dict()
        body["mcp_children"] = {"ready": bridge.pool.ready_children, "total": bridge.pool.size}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics.", response_class=Response)
    async def metrics() -> Response:
        return Response(bridge.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    install_offline_docs(app)
    # Last: the web app answers every GET path no route above claimed.
    install_web_app(app, settings.web_dir)
    return app
