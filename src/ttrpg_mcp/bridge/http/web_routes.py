"""The web table: the built SvelteKit app served at ``/``, with a fallback to its ``index.html``.

The app is a static single-page build (adapter-static). Its files are served as they are, and
any other page path (``/join/CODE``, ``/c/<campaign id>``) answers with ``index.html`` so the
app's router can take over in the browser. Paths that belong to the bridge itself (``/api/...``,
``/ws``, ``/docs``, ``/metrics``, ...) never fall back: an unknown one is the API's JSON
``not_found``, so a typo in an API call never comes back as a web page.

Where the app comes from, first found wins: the configured ``web_dir``, else the copy built into
the package (``ttrpg_mcp/web_dist``, filled by ``make run`` and shipped in the wheel). Without
either, page paths answer 503 with a short page saying how to build it; the API is unaffected.

``index.html`` goes out with a Content-Security-Policy that allows no inline script except the
exact bootstrap scripts SvelteKit writes into it: their SHA-256 hashes are computed from the
file when it is read (again whenever it changes on disk), so a rebuild needs no configuration.
Hashed asset files under ``_app/immutable`` are cached for a year; ``index.html`` is revalidated
on every load so a new build is picked up at once.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from ttrpg_mcp.bridge.errors import BridgeError

__all__ = ["BRIDGE_PATH_PREFIXES", "WebAppFiles", "content_security_policy", "install_web_app"]

# First path segments owned by the bridge: never answered with the app's page.
BRIDGE_PATH_PREFIXES = frozenset(
    {"api", "ws", "docs", "redoc", "openapi.json", "metrics", "healthz", "readyz"}
)

# host, IPv4 or [IPv6], with an optional port: all a Host header may put into the policy.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")

# A year: files under _app/immutable have a content hash in their names, so they never change.
_IMMUTABLE_MAX_AGE = 365 * 86400

_NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ttrpg-bridge: web table not built</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1>The web table is not built</h1>
<p>The bridge is running (the API, <code>/ws</code> and <a href="/docs">/docs</a> work), but it has
no copy of the web app to serve.</p>
<p>From a checkout, <code>make run</code> builds it (it needs Node.js 20 and npm), or build it by
hand with <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code> and start the bridge with
<code>TTRPG_WEB_DIR=web/build</code>.</p>
</body></html>
"""


class _InlineScripts(HTMLParser):
    """Collects the text of every ``<script>`` without a ``src``, exactly as written."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and not any(name == "src" for name, _ in attrs):
            self._current = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._current is not None:
            self.scripts.append("".join(self._current))
            self._current = None


def content_security_policy(index_html: str, host: str | None = None) -> str:
    """The policy for a page: scripts from the bridge itself plus the page's own inline scripts,
    allowed by hash; no ``unsafe-inline`` or ``unsafe-eval`` for scripts. ``host`` (the request's
    ``Host``) names the WebSocket origins explicitly, for browsers whose ``'self'`` does not
    cover ``ws:``/``wss:`` yet."""
    parser = _InlineScripts()
    parser.feed(index_html)
    parser.close()
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in parser.scripts
    ]
    directives = [
        "default-src 'self'",
        "script-src " + " ".join(["'self'", *hashes]),
        # Svelte sets style attributes for layout and transitions; styles cannot run code.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src " + " ".join(["'self'", *([f"ws://{host}", f"wss://{host}"] if host else [])]),
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


@dataclass(frozen=True)
class _IndexPage:
    mtime_ns: int
    body: bytes
    text: str


class WebAppFiles:
    """The app's files in one directory, its ``index.html`` with a CSP, and the page fallback."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._static = StaticFiles(directory=directory, check_dir=False) if directory else None
        self._index: _IndexPage | None = None

    @property
    def built(self) -> bool:
        return self.directory is not None and (self.directory / "index.html").is_file()

    def _index_page(self) -> _IndexPage:
        assert self.directory is not None
        path = self.directory / "index.html"
        mtime_ns = path.stat().st_mtime_ns
        if self._index is None or self._index.mtime_ns != mtime_ns:
            body = path.read_bytes()
            self._index = _IndexPage(mtime_ns, body, body.decode())
        return self._index

    def page(self, host: str | None = None) -> Response:
        """``index.html``: the entry to every page of the app."""
        if not self.built:
            return HTMLResponse(_NOT_BUILT_PAGE, status_code=503, headers={"Cache-Control": "no-store"})
        index = self._index_page()
        policy = content_security_policy(index.text, _plain_host(host))
        return Response(
            index.body,
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache"},
        )

    async def handle(self, request: Request) -> Response:
        """Answer one GET or HEAD for a path no other route claimed."""
        path = request.path_params.get("path", "")
        first = path.split("/", 1)[0]
        if first in BRIDGE_PATH_PREFIXES:
            raise BridgeError("not_found", f"no route {request.url.path}")
        host = request.headers.get("host")
        if path in ("", "index.html"):
            return self.page(host)
        # A missing page path is the app's to route; a missing file (a name with an extension,
        # or anything under _app/) stays a 404 so a broken asset shows as one.
        is_file = "." in path.rsplit("/", 1)[-1] or first == "_app"
        if not self.built or self._static is None:
            if is_file:
                raise BridgeError("not_found", f"no file {request.url.path}")
            return self.page(host)
        try:
            response = await self._static.get_response(path, request.scope)
        except HTTPException as exc:
            if exc.status_code != 404 or is_file:
                raise BridgeError("not_found", f"no file {request.url.path}") from None
            return self.page(host)
        if path.startswith("_app/immutable/"):
            response.headers["Cache-Control"] = f"public, max-age={_IMMUTABLE_MAX_AGE}, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response


def _plain_host(host: str | None) -> str | None:
    """The Host header when it is a plain host[:port], so nothing else can enter the policy."""
    return host if host and _HOST.fullmatch(host) else None


def packaged_web_dir() -> Path | None:
    """The app built into this package (``ttrpg_mcp/web_dist``), when it is there."""
    candidate = Path(str(resources.files("ttrpg_mcp") / "web_dist"))
    return candidate if (candidate / "index.html").is_file() else None


def install_web_app(app: FastAPI, web_dir: Path | None) -> WebAppFiles:
    """Serve the app at ``/`` and every unclaimed page path; call after every other route."""
    files = WebAppFiles(web_dir if web_dir is not None else packaged_web_dir())
    app.state.web_app = files
    app.router.add_route("/", files.handle, methods=["GET", "HEAD"], include_in_schema=False)
    app.router.add_route("/{path:path}", files.handle, methods=["GET", "HEAD"], include_in_schema=False)
    return files
