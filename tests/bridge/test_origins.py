"""Origin checks against cross-site WebSocket hijacking, and CORS from the same list."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import anyio
import httpx
import pytest
from bridge_process import RunningBridge, run_bridge
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ttrpg_mcp.bridge.origins import origin_allowed

TEST_TIMEOUT = 60.0
ALLOWED = "https://table.example"


def test_the_origin_rule() -> None:
    """No Origin, the bridge's own, a listed one, or '*': allowed; any other: refused."""
    listed = [ALLOWED]
    assert origin_allowed({"host": "127.0.0.1:8080"}, listed)
    assert origin_allowed({"origin": "http://127.0.0.1:8080", "host": "127.0.0.1:8080"}, listed)
    assert origin_allowed({"origin": "https://TABLE.example/", "host": "x"}, listed)
    assert not origin_allowed({"origin": "https://evil.example", "host": "127.0.0.1:8080"}, listed)
    assert origin_allowed({"origin": "https://evil.example", "host": "x"}, ["*"])


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("origins") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir, {"TTRPG_ALLOWED_ORIGINS": f'["{ALLOWED}"]'}) as running:
        yield running


@pytest.mark.anyio
async def test_a_foreign_page_cannot_open_a_socket_or_a_stream_with_a_users_token(
    bridge: RunningBridge,
) -> None:
    """Origin evil: the WebSocket handshake and the event stream are refused; a listed origin works."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with httpx.AsyncClient(base_url=bridge.base_url) as http:
            body = {"name": f"o{uuid.uuid4().hex[:8]}", "password": "password123"}
            token = (await http.post("/api/auth/register", json=body)).json()["access_token"]
            url = f"ws://127.0.0.1:{bridge.port}/ws?token={token}"
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url, origin="https://evil.example"):  # type: ignore[arg-type]
                    pass
            assert refused.value.response.status_code == 403
            async with connect(url, origin=ALLOWED) as ws:  # type: ignore[arg-type]
                assert '"session_created"' in str(await ws.recv())
            stream = await http.get(
                "/api/events", params={"token": token}, headers={"Origin": "https://evil.example"}
            )
            assert stream.status_code == 403
            assert stream.json()["error"]["code"] == "forbidden"


@pytest.mark.anyio
async def test_cors_answers_listed_origins_only(bridge: RunningBridge) -> None:
    """A preflight from the listed origin is allowed with credentials; from another, not."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with httpx.AsyncClient(base_url=bridge.base_url) as http:
            preflight = {
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            }
            good = await http.options("/api/auth/login", headers={"Origin": ALLOWED, **preflight})
            bad = await http.options(
                "/api/auth/login", headers={"Origin": "https://evil.example", **preflight}
            )
    assert good.headers.get("access-control-allow-origin") == ALLOWED
    assert good.headers.get("access-control-allow-credentials") == "true"
    assert "access-control-allow-origin" not in bad.headers
