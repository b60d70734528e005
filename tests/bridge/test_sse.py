"""What only the SSE fallback has: HTTP refusals, SSE ids, Last-Event-ID, POST routing, keep-alive.

Most tests use a real bridge process. Two run the app in this process on uvicorn (a free port,
real sockets) because they reach inside: a keep-alive interval short enough to wait for, and a
queue overflowed on purpose.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from bridge_process import RunningBridge, free_port, run_bridge
from fastapi import FastAPI
from httpx_sse import aconnect_sse
from tables import drain, until

from ttrpg_mcp.bridge import protocol
from ttrpg_mcp.bridge.app import create_app
from ttrpg_mcp.bridge.settings import BridgeSettings, McpSettings
from ttrpg_mcp.bridge.transports import sse
from ttrpg_mcp.client import BridgeClient, BridgeClientError

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 60.0
FAKE_SERVER = Path(__file__).parent / "fake_servers" / "misbehaving_server.py"


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("sse") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


@pytest.fixture
async def client(bridge: RunningBridge) -> AsyncIterator[BridgeClient]:
    """A client logged in as a fresh user."""
    async with BridgeClient(bridge.base_url) as client:
        await client.register(f"u{uuid.uuid4().hex[:10]}", "password123")
        yield client


def _token(client: BridgeClient) -> str:
    assert client.tokens is not None
    return client.tokens.access_token


@asynccontextmanager
async def gm_and_player(base_url: str) -> AsyncIterator[tuple[str, BridgeClient, BridgeClient]]:
    """A campaign with a GM and a player (logged in, not connected)."""
    async with BridgeClient(base_url) as gm, BridgeClient(base_url) as player:
        await gm.register(f"gm-{uuid.uuid4().hex[:8]}", "password123")
        await player.register(f"pl-{uuid.uuid4().hex[:8]}", "password123")
        campaign_id = (await gm.create_campaign(f"Table {uuid.uuid4().hex[:6]}"))["id"]
        await player.join_campaign((await gm.create_invite(campaign_id, role="player"))["code"])
        yield campaign_id, gm, player


async def test_a_stream_without_a_token_or_with_a_bad_one_is_refused_with_401(bridge: RunningBridge) -> None:
    """No stream starts: 401 with the API's JSON error body, whichever way the token came."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with httpx.AsyncClient(base_url=bridge.base_url) as http:
            missing = await http.get("/api/events")
            forged = await http.get("/api/events", params={"token": "not-a-jwt"})
            bearer = await http.get("/api/events", headers={"Authorization": "Bearer e30.e30.e30"})
            cookie = await http.get("/api/events", headers={"Cookie": f"{sse.ACCESS_COOKIE}=not-a-jwt"})
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "unauthenticated"
        assert missing.headers["www-authenticate"] == "Bearer"
        for response in (forged, bearer, cookie):
            assert response.status_code == 401
            assert response.headers["content-type"] == "application/json"
            assert response.json()["error"]["code"] == "invalid_token"
        async with BridgeClient(bridge.base_url) as client:
            with pytest.raises(BridgeClientError) as refused:
                async with client.connect(transport="sse", token="not-a-jwt"):  # noqa: S106
                    pass
        assert refused.value.code == "invalid_token"


async def test_both_routes_are_in_the_openapi_document(bridge: RunningBridge) -> None:
    """GET /api/events and POST /api/messages are described with their answers."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with httpx.AsyncClient(base_url=bridge.base_url) as http:
            paths = (await http.get("/openapi.json")).json()["paths"]
    events = paths["/api/events"]["get"]
    assert events["summary"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert {"200", "401"} <= set(events["responses"])
    messages = paths["/api/messages"]["post"]
    assert messages["summary"]
    assert "application/json" in messages["requestBody"]["content"]
    assert {"200", "202", "400", "401", "403", "404", "413", "422"} <= set(messages["responses"])


async def test_campaign_events_carry_their_seq_as_the_sse_id(bridge: RunningBridge) -> None:
    """id: is the seq (so EventSource resumes by itself), retry: comes once, no event: names."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            gm_and_player(bridge.base_url) as (campaign_id, gm, player),
            gm.connect(campaign_id=campaign_id) as gm_table,
            httpx.AsyncClient(base_url=bridge.base_url, timeout=httpx.Timeout(10, read=None)) as http,
        ):
            params = {"token": _token(player), "campaign_id": campaign_id}
            async with aconnect_sse(http, "GET", "/api/events", params=params) as source:
                assert source.response.status_code == 200
                events = source.aiter_sse()
                created = await anext(events)
                assert (created.event, created.retry, created.id) == ("message", sse.RECONNECT_DELAY_MS, "")
                assert created.json()["type"] == "session_created"
                snapshot = await anext(events)
                assert snapshot.json()["type"] == "campaign_snapshot"
                assert snapshot.retry is None
                roll = await gm_table.roll_dice("1d20", purpose="perception")
                async for event in events:
                    message = event.json()
                    assert event.event == "message"
                    if "seq" in message:
                        assert event.id == str(message["seq"])
                    if message["type"] == "dice_roll":
                        assert message["data"]["total"] == roll["total"]
                        break


async def test_a_reconnect_with_last_event_id_replays_the_missed_events_in_order(
    bridge: RunningBridge,
) -> None:
    """recovered: true, then exactly the events missed while away: in order, none twice."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            gm_and_player(bridge.base_url) as (campaign_id, gm, player),
            gm.connect(campaign_id=campaign_id) as gm_table,
        ):
            async with player.connect(transport="sse", campaign_id=campaign_id) as first:
                await drain(first)
                last_seq, epoch = first.last_seq, first.epoch
            assert last_seq is not None
            assert epoch is not None
            # The player's stream has ended: the GM hears them leave before anything is missed.
            await until(gm_table, lambda event: event["type"] == "participant_left")
            for n in range(3):
                await gm_table.roll_dice(f"1d6+{n}", purpose=f"missed {n}")
            await gm_table.update_state(["shared_notes"], "Written while you were away.")
            missed = [e for e in await drain(gm_table) if "seq" in e]
            assert [e["type"] for e in missed] == ["dice_roll"] * 3 + ["state_update"]

            async with player.connect(
                transport="sse", campaign_id=campaign_id, last_seq=last_seq, epoch=epoch
            ) as second:
                snapshot = await second.next_event("campaign_snapshot")
                assert snapshot["data"]["recovered"] is True
                replayed = [e for e in await drain(second) if e.get("seq", 0) <= missed[-1]["seq"]]
        seqs = [event["seq"] for event in replayed]
        assert seqs == list(range(last_seq + 1, missed[-1]["seq"] + 1))
        assert [(e["type"], e["data"]) for e in replayed if e["seq"] >= missed[0]["seq"]] == [
            (e["type"], e["data"]) for e in missed
        ]


async def test_a_replay_longer_than_the_queue_arrives_whole(data_dir: Path) -> None:
    """Missed events replayed on resume do not count against the slow-reader bound."""
    with run_bridge(data_dir, {"TTRPG_OUTBOX_LIMIT": "8"}) as running, anyio.fail_after(TEST_TIMEOUT):
        async with (
            gm_and_player(running.base_url) as (campaign_id, gm, player),
            gm.connect(campaign_id=campaign_id) as gm_table,
        ):
            async with player.connect(transport="sse", campaign_id=campaign_id) as first:
                await drain(first)
                last_seq, epoch = first.last_seq, first.epoch
            assert last_seq is not None
            for n in range(20):
                await gm_table.roll_dice("1d4", purpose=f"missed {n}")
            final = [e for e in await drain(gm_table) if e["type"] == "dice_roll"][-1]["seq"]
            async with player.connect(
                transport="sse", campaign_id=campaign_id, last_seq=last_seq, epoch=epoch
            ) as second:
                assert (await second.next_event("campaign_snapshot"))["data"]["recovered"] is True
                replayed = [e["seq"] for e in await drain(second) if e.get("seq", 0) <= final]
                assert second.close_reason == ""
        assert replayed == list(range(last_seq + 1, final + 1))
        assert "slow_consumer_disconnected" not in running.log()


async def test_a_post_is_routed_by_its_session_id(bridge: RunningBridge, client: BridgeClient) -> None:
    """Own live session: its table applies; another user's: 403; a gone one: 404 (reconnect)."""
    with anyio.fail_after(TEST_TIMEOUT):
        campaign = await client.create_campaign("Routing")
        async with (
            client.connect(transport="sse", campaign_id=campaign["id"]) as table,
            BridgeClient(bridge.base_url) as stranger,
            httpx.AsyncClient(base_url=bridge.base_url) as http,
        ):
            await stranger.register(f"s{uuid.uuid4().hex[:8]}", "password123")
            roll = {"id": "r1", "type": "dice_roll", "data": {"expression": "1d4"}}

            mine = await http.post(
                "/api/messages",
                json=roll | {"session_id": table.session_id},
                headers={"Authorization": f"Bearer {_token(client)}"},
            )
            assert mine.status_code == 200
            assert mine.json()["type"] == "dice_roll_result"
            assert (await table.next_event("dice_roll"))["data"]["total"] == mine.json()["result"]["total"]

            theirs = await http.post(
                "/api/messages",
                json=roll | {"id": "r2", "session_id": table.session_id},
                headers={"Authorization": f"Bearer {_token(stranger)}"},
            )
            assert theirs.status_code == 403
            assert (theirs.json()["type"], theirs.json()["error"]["code"]) == ("error", "forbidden")

            gone = await http.post(
                "/api/messages",
                json=roll | {"id": "r3", "session_id": "ses_gone"},
                headers={"Authorization": f"Bearer {_token(client)}"},
            )
            assert gone.status_code == 404
            assert gone.json()["error"]["data"] == {"session_id": "ses_gone"}
            assert gone.json()["request_id"] == "r3"


async def test_a_post_without_a_session_runs_alone_and_one_without_a_reply_gets_202(
    bridge: RunningBridge, client: BridgeClient
) -> None:
    """No session_id: a lobby tool works; a message with no reply: 202 ack; oversize: 413."""
    with anyio.fail_after(TEST_TIMEOUT):
        campaign = await client.create_campaign("Posts")
        headers = {"Authorization": f"Bearer {_token(client)}"}
        async with (
            httpx.AsyncClient(base_url=bridge.base_url, headers=headers) as http,
            client.connect(transport="sse", campaign_id=campaign["id"]) as table,
        ):
            call = {"id": "c1", "type": "tool_call", "method": "roll_dice", "params": {"expression": "1d1+4"}}
            alone = await http.post("/api/messages", json=call)
            assert alone.status_code == 200
            assert alone.json()["result"]["structuredContent"]["total"] == 5
            assert alone.json()["session_id"] != table.session_id

            unknown = await http.post("/api/messages", json=call | {"id": "c2", "method": "summon"})
            assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_tool")

            move = {"id": "m1", "type": "cursor_move", "data": {"position": {"x": 1, "y": 2}}}
            moved = await http.post("/api/messages", json=move | {"session_id": table.session_id})
            assert moved.status_code == 202
            assert (moved.json()["type"], moved.json()["request_id"]) == ("ack", "m1")

            huge = await http.post(
                "/api/messages", json={"id": "h1", "type": "heartbeat", "pad": "x" * 200_000}
            )
            assert huge.status_code == 413
            assert (huge.json()["error"]["code"], huge.json()["request_id"]) == ("message_too_large", "h1")
            assert (await table.heartbeat())["type"] == "ack"


async def test_a_post_with_the_cookie_must_be_json(bridge: RunningBridge, client: BridgeClient) -> None:
    """The cookie works for POSTs only as application/json, which a cross-site form cannot send."""
    with anyio.fail_after(TEST_TIMEOUT):
        cookie = {"Cookie": f"{sse.ACCESS_COOKIE}={_token(client)}"}
        async with httpx.AsyncClient(base_url=bridge.base_url, headers=cookie) as http:
            as_json = await http.post("/api/messages", json={"id": "h1", "type": "heartbeat"})
            as_text = await http.post(
                "/api/messages",
                content='{"id": "h2", "type": "heartbeat"}',
                headers={"Content-Type": "text/plain"},
            )
        assert (as_json.status_code, as_json.json()["type"]) == (200, "ack")
        assert (as_text.status_code, as_text.json()["error"]["code"]) == (403, "forbidden")


async def test_shutdown_sends_disconnect_then_ends_the_stream(data_dir: Path) -> None:
    """SIGTERM: the SSE client gets 'disconnect' with a retry hint, then its stream ends."""
    with run_bridge(data_dir) as running, anyio.fail_after(TEST_TIMEOUT):
        async with BridgeClient(running.base_url) as client:
            await client.register("leaver", "password123")
            async with client.connect(transport="sse") as table:
                await anyio.to_thread.run_sync(running.terminate)
                notice = await table.next_event("disconnect")
                assert notice["retry_after"] > 0
                code, reason = await table.wait_closed()
                assert (code, reason) == (None, "server shutting down")
                assert [e async for e in table.events()] == []
        assert '"event": "sse_closed"' in running.log()


# -- in this process ---------------------------------------------------------------------------


@asynccontextmanager
async def serve_here(data_dir: Path, **settings: Any) -> AsyncIterator[tuple[str, FastAPI]]:
    """The bridge app on uvicorn in this process, relaying to the small fake MCP server."""
    app = create_app(
        BridgeSettings(
            data_dir=data_dir, mcp=McpSettings(command=[sys.executable, str(FAKE_SERVER)]), **settings
        )
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, ws="websockets-sansio")
    )
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve)
        while not server.started:  # noqa: ASYNC110  # uvicorn offers no event to wait on
            await anyio.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}", app
        finally:
            server.should_exit = True


async def test_keepalive_comments_arrive_on_a_quiet_stream(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A comment line (invisible to EventSource) comes every KEEPALIVE_INTERVAL."""
    monkeypatch.setattr(sse, "KEEPALIVE_INTERVAL", 0.1)
    with anyio.fail_after(TEST_TIMEOUT):
        async with serve_here(data_dir) as (base_url, _app), AsyncExitStack() as stack:
            client = await stack.enter_async_context(BridgeClient(base_url))
            await client.register("quiet", "password123")
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=None))
            )
            params = {"token": _token(client)}
            async with http.stream("GET", "/api/events", params=params) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                comments = 0
                async for line in response.aiter_lines():
                    if line.startswith(":"):
                        comments += 1
                    if comments == 2:
                        break


async def test_a_client_that_falls_behind_has_its_stream_ended(data_dir: Path) -> None:
    """Past outbox_limit queued messages the stream is cut, and the session released."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with serve_here(data_dir, outbox_limit=8) as (base_url, app), AsyncExitStack() as stack:
            client = await stack.enter_async_context(BridgeClient(base_url))
            await client.register("slow", "password123")
            table = await stack.enter_async_context(client.connect(transport="sse"))
            sessions: sse.SseSessions = app.state.sse_sessions
            stream = sessions.get(table.session_id)
            assert stream is not None
            # No checkpoint in between, so nothing drains: one message goes to the waiting
            # reader, eight fill the queue, the next overflows it.
            for _ in range(10):
                await stream.send(protocol.envelope("heartbeat", session_id=table.session_id))
            _code, reason = await table.wait_closed()
            assert reason.startswith("the stream failed")
            while len(sessions) or stream in app.state.bridge.connections:  # noqa: ASYNC110
                await anyio.sleep(0.02)
            with pytest.raises(BridgeClientError) as closed:
                await table.heartbeat()
            assert closed.value.code == "connection_closed"


async def test_many_queued_messages_arrive_in_order_in_few_writes(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What is queued at once goes out together (WRITE_BATCH a write), whole and in order."""
    writes: list[bytes] = []
    events = sse.SseStream.events

    async def counted(stream: sse.SseStream) -> AsyncIterator[bytes]:
        async for chunk in events(stream):
            writes.append(chunk)
            yield chunk

    monkeypatch.setattr(sse.SseStream, "events", counted)
    count = 5 * sse.WRITE_BATCH + 3
    with anyio.fail_after(TEST_TIMEOUT):
        async with serve_here(data_dir) as (base_url, app), AsyncExitStack() as stack:
            client = await stack.enter_async_context(BridgeClient(base_url))
            await client.register("burst", "password123")
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=None))
            )
            source = await stack.enter_async_context(
                aconnect_sse(http, "GET", "/api/events", params={"token": _token(client)})
            )
            received = source.aiter_sse()
            session_id = (await anext(received)).json()["session_id"]
            stream = app.state.sse_sessions.get(session_id)
            assert stream is not None
            before = len(writes)
            # No checkpoint in between: all of them are queued before the response takes any.
            for n in range(count):
                await stream.send(protocol.envelope("mcp_notification", session_id=session_id, data={"n": n}))
            numbers = []
            async for event in received:
                message = event.json()
                if message["type"] == "mcp_notification":
                    numbers.append(message["data"]["n"])
                    if len(numbers) == count:
                        break
            assert numbers == list(range(count))
            assert len(writes) - before <= count // sse.WRITE_BATCH + 2
