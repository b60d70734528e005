"""The interactive API page at ``/docs``, working offline.

FastAPI's default page loads Swagger UI from a CDN, which fails on a LAN game night without
internet and leaks every visit to a third party. Here the Swagger UI files come from the
``swagger-ui-bundle-v2`` package and are served by the bridge under ``/docs/assets``; the page
itself is FastAPI's own template pointed at those local URLs.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

__all__ = ["DOCS_ASSETS_PATH", "install_offline_docs", "swagger_ui_directory"]

DOCS_ASSETS_PATH = "/docs/assets"


def swagger_ui_directory() -> Path:
    """Where the installed package keeps the Swagger UI distribution."""
    return Path(swagger_ui_bundle.swagger_ui_path)


def install_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets; the app must be created with ``docs_url=None``."""
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = "/docs/oauth2-redirect"
    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=swagger_ui_directory()), name="swagger-ui")

    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            oauth2_redirect_url=oauth2_redirect_url,
            swagger_js_url=f"{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_PATH}/favicon-32x32.png",
        )

    async def swagger_ui_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.router.add_route("/docs", swagger_ui, methods=["GET", "HEAD"], include_in_schema=False)
    app.router.add_route(
        oauth2_redirect_url, swagger_ui_redirect, methods=["GET", "HEAD"], include_in_schema=False
    )
