"""The WebSocket gateway end to end: a real bridge process, real MCP children, real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import jwt
import pytest
from bridge_process import RunningBridge, run_bridge
from sqlalchemy import create_engine, text

from ttrpg_mcp.client import BridgeClient, BridgeClientError, ConnectionClosed

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    """One bridge shared by the tests of this module (each test uses its own user)."""
    data_dir = tmp_path_factory.mktemp("gateway") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir, {"TTRPG_MCP__MIN_CHILDREN": "2"}) as running:
        yield running


@pytest.fixture
async def client(bridge: RunningBridge) -> AsyncIterator[BridgeClient]:
    """A client logged in as a fresh user."""
    async with BridgeClient(bridge.base_url) as client:
        name = f"u{uuid.uuid4().hex[:10]}"
        await client.register(name, "password123")
        await client.login(name, "password123")
        yield client


def _secret(bridge: RunningBridge) -> str:
    url = os.environ.get("TTRPG_DATABASE_URL")  # a shared store keeps the key in its database
    if url is None:
        return (bridge.data_dir / "jwt-secret").read_text().strip()
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SELECT secret FROM signing_keys")).scalar_one())
    finally:
        engine.dispose()


async def test_a_token_in_the_query_opens_a_session_with_the_servers_capabilities(
    client: BridgeClient,
) -> None:
    """?token= authenticates at once; session_created lists the MCP tools, resources and prompts."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with client.connect(auth="query") as table:
            assert table.session_id.startswith("ses_")
            assert {"roll_dice", "search", "create_campaign"} <= set(table.tool_names)
            assert {p["name"] for p in table.capabilities["prompts"]} >= {"session_recap"}
            assert table.session["user"]["name"] == client.tokens.user["name"]  # type: ignore[union-attr]
            assert table.subprotocol == "mcp-ttrpg-v1"


async def test_an_authenticate_message_opens_a_session_too(client: BridgeClient) -> None:
    """The spike's flow: connect, then send 'authenticate' with the token and a campaign."""
    with anyio.fail_after(TEST_TIMEOUT):
        campaign = await client.create_campaign("Spike flow")
        async with client.connect(auth="message", campaign_id=campaign["id"]) as table:
            assert table.session["campaign_id"] == campaign["id"]
            snapshot = await table.next_event("campaign_snapshot")
            assert snapshot["data"]["role"] == "gm"
            assert (await table.heartbeat())["type"] == "ack"
        with pytest.raises(BridgeClientError) as refused:
            async with client.connect(auth="message", campaign_id="camp_not_mine"):
                pass
        assert refused.value.code == "forbidden"


@pytest.mark.parametrize("token", ["not-a-jwt", "e30.e30.e30"])
async def test_a_bad_token_is_refused_with_1008(bridge: RunningBridge, token: str) -> None:
    """A malformed or unsigned token closes the socket with policy violation and a reason."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with BridgeClient(bridge.base_url) as client:
            for auth in ("query", "message"):
                with pytest.raises(ConnectionClosed) as closed:
                    async with client.connect(auth=auth, token=token):  # type: ignore[arg-type]
                        pass
                assert closed.value.close_code == 1008
                assert "invalid_token" in closed.value.reason


async def test_an_expired_or_forged_token_is_refused_with_1008(
    bridge: RunningBridge, client: BridgeClient
) -> None:
    """Expired, wrong-key and alg-none tokens are all refused."""
    assert client.tokens is not None
    claims = jwt.decode(client.tokens.access_token, options={"verify_signature": False})
    expired = jwt.encode(claims | {"exp": int(time.time()) - 60}, _secret(bridge), algorithm="HS256")
    forged = jwt.encode(claims, "not-the-secret-" * 4, algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    with anyio.fail_after(TEST_TIMEOUT):
        for token, code in (
            (expired, "token_expired"),
            (forged, "invalid_token"),
            (unsigned, "invalid_token"),
        ):
            with pytest.raises(ConnectionClosed) as closed:
                async with client.connect(token=token):
                    pass
            assert closed.value.close_code == 1008
            assert code in closed.value.reason


async def test_a_first_message_other_than_authenticate_is_refused(bridge: RunningBridge) -> None:
    """Without ?token=, anything but 'authenticate' first closes with 1008."""
    from websockets.asyncio.client import connect

    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(f"ws://127.0.0.1:{bridge.port}/ws") as ws:
            await ws.send(json.dumps({"type": "tool_call", "method": "roll_dice"}))
            await ws.wait_closed()
            assert ws.close_code == 1008
            assert "authenticate" in (ws.close_reason or "")


async def test_a_tool_call_round_trip_returns_structured_results(client: BridgeClient) -> None:
    """tool_call reaches the MCP server and back with request_id, result and duration."""
    with anyio.fail_after(TEST_TIMEOUT):
        campaign = await client.create_campaign("Ashes", system="d20")
        async with client.connect() as table:
            snapshot = await table.join(campaign["id"])
            assert snapshot["role"] == "gm"
            reply = await table.request(
                {
                    "type": "tool_call",
                    "id": "req-1",
                    "method": "get_campaign",
                    "params": {"campaign_id": campaign["id"]},
                }
            )
            assert reply["type"] == "response"
            assert reply["request_id"] == "req-1"
            assert reply["duration"] >= 0
            assert reply["result"]["structuredContent"]["name"] == "Ashes"
            npc = await table.call_tool("create_npc", {"campaign_id": campaign["id"], "name": "Old Brenna"})
            assert npc["campaign_id"] == campaign["id"]
            resource = await table.read_resource(f"campaign://{campaign['id']}")
            assert "Ashes" in resource["contents"][0]["text"]
            prompt = await table.get_prompt(
                "npc_generator", {"campaign_id": campaign["id"], "role": "innkeeper"}
            )
            assert prompt["messages"]
            discovered = await table.discover()
            assert "roll_dice" in {tool["name"] for tool in discovered["tools"]}


async def test_every_kind_of_bad_request_gets_its_own_code_and_the_connection_survives(
    client: BridgeClient,
) -> None:
    """Unknown tool, tool error, bad JSON, unknown type, bad schema, oversize: each a clear error."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with client.connect() as table:
            with pytest.raises(BridgeClientError) as unknown:
                await table.call_tool("summon_dragon", {})
            assert unknown.value.code == "unknown_tool"
            with pytest.raises(BridgeClientError) as bad_tool_input:
                await table.call_tool("roll_dice", {"expression": "1d6 +* 2"})
            assert bad_tool_input.value.code == "tool_error"
            assert bad_tool_input.value.data["tool_code"] == "invalid_dice"
            with pytest.raises(BridgeClientError) as outside:
                await table.call_tool("get_campaign", {"campaign_id": "camp_nope"})
            assert outside.value.code == "forbidden"
            with pytest.raises(BridgeClientError) as dice:
                await table.roll_dice("2d6+")
            assert dice.value.code == "invalid_dice"

            await table.send_text("{not json")
            assert (await table.next_event("error"))["error"]["code"] == "invalid_json"
            unknown_type = await table.request_raw({"id": "t1", "type": "teleport"})
            assert unknown_type["error"]["code"] == "unknown_type"
            bad_schema = await table.request_raw({"id": "t2", "type": "tool_call", "params": []})
            assert bad_schema["error"]["code"] == "invalid_message"
            huge = await table.request_raw({"id": "t3", "type": "heartbeat", "pad": "x" * 200_000})
            assert huge["error"]["code"] == "message_too_large"
            # Still connected and working after all of that.
            roll = await table.roll_dice("2d6+3", purpose="still here")
            assert 5 <= roll["total"] <= 15


async def test_a_hundred_concurrent_calls_from_ten_connections_each_get_their_own_answer(
    bridge: RunningBridge,
) -> None:
    """Replies never cross between requests or sessions sharing the pool's children."""

    async def one_player(index: int) -> list[tuple[int, int]]:
        async with BridgeClient(bridge.base_url) as client:
            name = f"p{index}-{uuid.uuid4().hex[:6]}"
            await client.register(name, "password123")
            async with client.connect() as table:
                calls = [
                    table.call_tool("roll_dice", {"expression": f"1d1+{index * 100 + n} [r{index}-{n}]"})
                    for n in range(10)
                ]
                results = await asyncio.gather(*calls)
                return [(index * 100 + n + 1, result["total"]) for n, result in enumerate(results)]

    with anyio.fail_after(TEST_TIMEOUT * 2):
        answers = await asyncio.gather(*(one_player(i) for i in range(10)))
    pairs = [pair for player in answers for pair in player]
    assert len(pairs) == 100
    assert all(expected == total for expected, total in pairs)


async def test_a_live_connection_can_swap_its_token(client: BridgeClient) -> None:
    """reauthenticate with a refreshed token keeps the session; another user's token is refused."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with client.connect() as table:
            fresh = await client.refresh()
            ack = await table.reauthenticate(fresh.access_token)
            assert ack["type"] == "ack"
            async with BridgeClient(client.base_url) as other:
                await other.register(f"o{uuid.uuid4().hex[:8]}", "password123")
                assert other.tokens is not None
                with pytest.raises(BridgeClientError) as refused:
                    await table.reauthenticate(other.tokens.access_token)
                assert refused.value.code == "forbidden"
            assert (await table.heartbeat())["type"] == "ack"


async def test_health_readiness_docs_and_metrics_are_served(
    bridge: RunningBridge, client: BridgeClient
) -> None:
    """The operations endpoints answer, and /metrics counts what happened."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with client.connect() as table:
            await table.call_tool("roll_dice", {"expression": "1d4"})
            with pytest.raises(BridgeClientError):
                await table.call_tool("no_such_tool", {})
            async with httpx.AsyncClient(base_url=bridge.base_url) as http:
                assert (await http.get("/healthz")).json() == {"status": "ok"}
                ready = (await http.get("/readyz")).json()
                # A bridge with a Redis backplane reports it too (one node of several).
                backplane = {"redis": "ok"} if os.environ.get("TTRPG_REDIS_URL") else {}
                assert ready["checks"] == {"store": "ok", "content_store": "ok", "mcp": "ok"} | backplane
                assert (await http.get("/docs")).status_code == 200
                assert "/api/auth/login" in (await http.get("/openapi.json")).json()["paths"]
                metrics = (await http.get("/metrics")).text
    samples = _samples(metrics)
    assert samples['ws_messages_total{type="tool_call"}'] >= 2
    assert samples['ws_errors_total{error_type="unknown_tool"}'] >= 1
    assert samples["ws_connections_active"] >= 1
    assert samples['mcp_request_duration_seconds_count{method="tools/call"}'] >= 1
    assert samples["mcp_pool_children"] >= 2
    assert "session_duration_seconds_count" in samples


def _samples(text: str) -> dict[str, float]:
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def test_the_bridge_sends_heartbeats_and_closes_idle_connections(data_dir: Path) -> None:
    """A heartbeat arrives every interval; a client silent past the idle timeout is closed."""
    from websockets.asyncio.client import connect

    env = {"TTRPG_HEARTBEAT_INTERVAL": "0.3", "TTRPG_IDLE_TIMEOUT": "1.5"}
    with run_bridge(data_dir, env) as running, anyio.fail_after(TEST_TIMEOUT):
        async with BridgeClient(running.base_url) as client:
            await client.register("idle", "password123")
            assert client.tokens is not None
            # A raw socket that never speaks (the Python client would send heartbeats).
            url = f"ws://127.0.0.1:{running.port}/ws?token={client.tokens.access_token}"
            async with connect(url) as ws:
                created = json.loads(await ws.recv())
                assert created["idle_timeout"] == 1500
                beat = json.loads(await ws.recv())
                assert (beat["type"], beat["session_id"]) == ("heartbeat", created["session_id"])
                await ws.wait_closed()
                assert ws.close_code == 1001
                assert ws.close_reason == "idle timeout"


async def test_a_silent_socket_is_closed_after_the_authentication_window(data_dir: Path) -> None:
    """No token and no 'authenticate' within auth_timeout: 1008."""
    from websockets.asyncio.client import connect

    with run_bridge(data_dir, {"TTRPG_AUTH_TIMEOUT": "0.5"}) as running, anyio.fail_after(TEST_TIMEOUT):
        async with connect(f"ws://127.0.0.1:{running.port}/ws") as ws:
            await ws.wait_closed()
            assert ws.close_code == 1008
            assert ws.close_reason == "authentication timeout"


async def test_shutdown_tells_clients_and_leaves_no_child_behind(data_dir: Path) -> None:
    """SIGTERM: clients get 'disconnect' with a retry hint and 1012; every MCP child exits."""
    with run_bridge(data_dir) as running, anyio.fail_after(TEST_TIMEOUT):
        async with BridgeClient(running.base_url) as client:
            await client.register("leaver", "password123")
            async with client.connect() as table:
                children = running.child_pids()
                assert children
                await anyio.to_thread.run_sync(running.terminate)
                notice = await table.next_event("disconnect")
                assert notice["retry_after"] > 0
                code, _reason = await table.wait_closed()
                assert code == 1012
        import psutil

        alive = [
            pid for pid in children if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
        ]
        assert alive == []
        # uvicorn re-raises the signal after its clean shutdown, so the exit status says SIGTERM.
        assert running.process.returncode in (0, -signal.SIGTERM)
        assert '"event": "bridge_stopped"' in running.log()
