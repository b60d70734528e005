"""The web table served by the bridge: files, page fallback, CSP, and bridge paths left alone."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import httpx
import pytest

from ttrpg_mcp.bridge.app import create_app
from ttrpg_mcp.bridge.http.web_routes import content_security_policy
from ttrpg_mcp.bridge.settings import BridgeSettings

pytestmark = pytest.mark.anyio

BOOTSTRAP = (
    '\n\t\t\t{\n\t\t\t\t__sveltekit_1x = { base: "" };'
    '\n\t\t\t\tPromise.all([import("./_app/a.js")]);\n\t\t\t}\n\t\t'
)
INDEX_HTML = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<link rel="modulepreload" href="./_app/immutable/entry/start.abc.js">
<script type="application/json" data-note="not executable, still hashed"></script>
</head><body><div style="display: contents"><script>{BOOTSTRAP}</script></div></body></html>
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.fixture
def web_build(tmp_path: Path) -> Path:
    """A small stand-in for `npm run build` output: an index, a hashed asset, a plain file."""
    build = tmp_path / "build"
    (build / "_app" / "immutable" / "entry").mkdir(parents=True)
    (build / "index.html").write_text(INDEX_HTML)
    (build / "_app" / "immutable" / "entry" / "start.abc.js").write_text("export const start = 1;\n")
    (build / "_app" / "version.json").write_text('{"version": "1"}')
    (build / "robots.txt").write_text("User-agent: *\n")
    return build


def _client(data_dir: Path, web_dir: Path | None) -> httpx.AsyncClient:
    app = create_app(BridgeSettings(data_dir=data_dir, web_dir=web_dir))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bridge.test")


async def test_the_app_is_served_at_the_root_with_a_hash_based_csp(data_dir: Path, web_build: Path) -> None:
    """/ is index.html, revalidated on each load, with a CSP allowing only its own inline scripts."""
    async with _client(data_dir, web_build) as http:
        response = await http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == INDEX_HTML
    assert response.headers["cache-control"] == "no-cache"
    policy = response.headers["content-security-policy"]
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src "))
    assert _sha256(BOOTSTRAP) in script_src.split()
    assert "unsafe-inline" not in script_src
    assert "unsafe-eval" not in script_src
    assert "frame-ancestors 'none'" in policy
    assert "connect-src 'self' ws://bridge.test wss://bridge.test" in policy
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/join/K7Q-2XF", "/c/camp_4f2a9c", "/lobby", "/c/camp_4f2a9c/notes"])
async def test_page_paths_fall_back_to_the_app(data_dir: Path, web_build: Path, path: str) -> None:
    """A link into the app (invite link, campaign page) loads index.html for the app's router."""
    async with _client(data_dir, web_build) as http:
        response = await http.get(path)
    assert response.status_code == 200
    assert response.text == INDEX_HTML
    assert "content-security-policy" in response.headers


async def test_hashed_assets_are_cached_for_good_and_other_files_revalidated(
    data_dir: Path, web_build: Path
) -> None:
    """_app/immutable files never change under one name; anything else is checked on each load."""
    async with _client(data_dir, web_build) as http:
        asset = await http.get("/_app/immutable/entry/start.abc.js")
        robots = await http.get("/robots.txt")
        again = await http.get("/robots.txt", headers={"If-None-Match": robots.headers["etag"]})
    assert asset.status_code == 200
    assert asset.text == "export const start = 1;\n"
    assert "javascript" in asset.headers["content-type"]
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert robots.headers["cache-control"] == "no-cache"
    assert again.status_code == 304


@pytest.mark.parametrize("path", ["/_app/immutable/missing.js", "/favicon.png", "/../pyproject.toml"])
async def test_a_missing_file_is_a_404_not_the_page(data_dir: Path, web_build: Path, path: str) -> None:
    """A broken asset link shows as a 404 error body, never as HTML that fails to parse as code."""
    async with _client(data_dir, web_build) as http:
        response = await http.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/nothing-here", "/api", "/docs/nothing", "/metrics/x", "/ws/other"])
async def test_unknown_bridge_paths_stay_json_errors(data_dir: Path, web_build: Path, path: str) -> None:
    """A typo in an API path answers the API's error body, not the app's page."""
    async with _client(data_dir, web_build) as http:
        response = await http.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_the_bridges_own_routes_still_answer_beside_the_app(data_dir: Path, web_build: Path) -> None:
    """Health, the OpenAPI document and wrong methods behave as without the app."""
    async with _client(data_dir, web_build) as http:
        health = await http.get("/healthz")
        openapi = await http.get("/openapi.json")
        wrong_method = await http.post("/healthz")
        post_page = await http.post("/join/K7Q-2XF")
    assert health.json() == {"status": "ok"}
    assert "/api/auth/login" in openapi.json()["paths"]
    assert "/{path}" not in openapi.json()["paths"]
    assert wrong_method.status_code == 405
    assert post_page.status_code == 405


async def test_without_a_build_pages_say_how_to_build_it(data_dir: Path, tmp_path: Path) -> None:
    """No index.html: a 503 page naming the commands; the API is unaffected."""
    async with _client(data_dir, tmp_path / "no-build-here") as http:
        page = await http.get("/join/K7Q-2XF")
        icon = await http.get("/favicon.ico")
        health = await http.get("/healthz")
    assert icon.status_code == 404
    assert page.status_code == 503
    assert "make run" in page.text
    assert "npm run build" in page.text
    assert health.status_code == 200


async def test_a_rebuilt_index_is_served_with_its_new_hashes(data_dir: Path, web_build: Path) -> None:
    """A new build while the bridge runs is picked up at the next load, policy included."""
    async with _client(data_dir, web_build) as http:
        first = await http.get("/")
        index = web_build / "index.html"
        index.write_text(INDEX_HTML.replace("a.js", "b.js"))
        stat = index.stat()
        # Make sure the change is visible even on a filesystem with coarse timestamps.
        os.utime(index, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        second = await http.get("/")
    assert "b.js" in second.text
    assert first.headers["content-security-policy"] != second.headers["content-security-policy"]
    assert _sha256(BOOTSTRAP.replace("a.js", "b.js")) in second.headers["content-security-policy"]


def test_the_policy_hashes_inline_scripts_only() -> None:
    """Scripts with src are covered by 'self'; each inline script gets its own hash."""
    html = '<script src="/x.js"></script><script>one()</script><SCRIPT>two()</SCRIPT>'
    policy = content_security_policy(html)
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src "))
    assert script_src.split() == ["script-src", "'self'", _sha256("one()"), _sha256("two()")]


async def test_docs_work_offline_from_the_bridges_own_assets(data_dir: Path, web_build: Path) -> None:
    """/docs loads Swagger UI from /docs/assets on the bridge: no CDN anywhere on the page."""
    async with _client(data_dir, web_build) as http:
        page = await http.get("/docs")
        script = await http.get("/docs/assets/swagger-ui-bundle.js")
        style = await http.get("/docs/assets/swagger-ui.css")
        redirect = await http.get("/docs/oauth2-redirect")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "/docs/assets/swagger-ui.css" in page.text
    assert "cdn" not in page.text.lower()
    assert "https://" not in page.text
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.text
    assert style.status_code == 200
    assert redirect.status_code == 200


async def test_a_strange_host_header_never_enters_the_policy(data_dir: Path, web_build: Path) -> None:
    """Only a plain host[:port] is echoed into connect-src; anything else leaves just 'self'."""
    async with _client(data_dir, web_build) as http:
        odd = await http.get("/", headers={"Host": "evil.test; script-src *"})
        ipv6 = await http.get("/", headers={"Host": "[::1]:8080"})
    assert "connect-src 'self';" in odd.headers["content-security-policy"]
    assert "evil" not in odd.headers["content-security-policy"]
    assert "ws://[::1]:8080" in ipv6.headers["content-security-policy"]


async def test_without_a_configured_directory_the_packaged_app_is_served(
    data_dir: Path, web_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """web_dir unset: the app built into the package (ttrpg_mcp/web_dist) is what / serves."""
    from ttrpg_mcp.bridge.http import web_routes

    monkeypatch.setattr(web_routes, "packaged_web_dir", lambda: web_build)
    async with _client(data_dir, None) as http:
        response = await http.get("/c/camp_4f2a9c")
    assert response.status_code == 200
    assert response.text == INDEX_HTML
