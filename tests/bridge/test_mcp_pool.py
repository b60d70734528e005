"""The MCP pool with real child processes: the real ttrpg-mcp server, and a misbehaving fake."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
import structlog
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.mcp_pool import McpPool
from ttrpg_mcp.bridge.mcp_pool.jsonrpc import with_progress_token
from ttrpg_mcp.bridge.mcp_pool.process import child_environment, read_line
from ttrpg_mcp.bridge.mcp_pool.restarts import CrashHistory
from ttrpg_mcp.bridge.mcp_pool.routing import NotificationRouter
from ttrpg_mcp.bridge.settings import McpSettings
from ttrpg_mcp.server.secrecy import META_KEY, Viewer

pytestmark = pytest.mark.anyio

FAKE_SERVER = Path(__file__).parent / "fake_servers" / "misbehaving_server.py"
# A real server migrates and indexes a fresh data directory before it answers; bound generously.
REAL_SERVER_TEST_TIMEOUT = 90
FAKE_SERVER_TEST_TIMEOUT = 30


def real_server(data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "ttrpg_mcp.server.cli", "--data-dir", str(data_dir), "serve"]


def fake_server(*flags: str) -> list[str]:
    return [sys.executable, str(FAKE_SERVER), *flags]


def settings(**overrides: Any) -> McpSettings:
    """Pool settings for tests: quick restarts, and no health pings unless a test wants them."""
    values: dict[str, Any] = {
        "min_children": 1,
        "max_children": 2,
        "startup_timeout": 30.0,
        "request_timeout": 20.0,
        "restart_backoff": 0.05,
        "restart_backoff_max": 0.2,
        "ping_interval": 60.0,
    }
    return McpSettings(**(values | overrides))


@asynccontextmanager
async def running_pool(
    config: McpSettings, command: list[str], *, env: dict[str, str] | None = None
) -> AsyncIterator[McpPool]:
    pool = McpPool(config, command, env=env)
    try:
        await pool.start()
        yield pool
    finally:
        await pool.close(grace=2.0)


def tool(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def is_gone(pid: int) -> bool:
    """No such process, or a zombie nobody has reaped yet (it runs no code)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll until ``condition`` holds; the test's ``fail_after`` bounds the wait."""
    while not condition():  # noqa: ASYNC110 - processes and files signal no event to wait on
        await anyio.sleep(0.05)


def recorded(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_pool_handshakes_and_relays_a_roll_dice_call(data_dir: Path) -> None:
    """A warm child is initialized and answers tools/call roll_dice with the dice result."""
    with anyio.fail_after(REAL_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(), real_server(data_dir)) as pool:
            assert pool.ready
            assert pool.not_ready_reason is None
            assert pool.size == 1
            assert pool.server_info["serverInfo"]["name"] == "ttrpg-mcp"
            assert pool.server_info["protocolVersion"] in HANDSHAKE_PROTOCOL_VERSIONS
            result = await pool.request(
                "tools/call", tool("roll_dice", expression="1d1+3 [r3]"), session_id="s"
            )
            assert not result["isError"]
            assert result["structuredContent"]["total"] == 4
            assert result["structuredContent"]["label"] == "r3"


async def test_hundred_concurrent_requests_from_ten_sessions_each_get_their_own_answer(
    data_dir: Path,
) -> None:
    """Rewritten ids never cross: every call gets its own roll back, served by both children."""
    with anyio.fail_after(REAL_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(min_children=2, max_children=2), real_server(data_dir)) as pool:

            async def roll(i: int) -> dict[str, Any]:
                params = tool("roll_dice", expression=f"1d1+{i} [r{i}]")
                return await pool.request("tools/call", params, session_id=f"session-{i % 10}")

            results = await asyncio.gather(*(roll(i) for i in range(100)))
            for i, result in enumerate(results):
                assert result["structuredContent"]["total"] == i + 1
                assert result["structuredContent"]["label"] == f"r{i}"
            served = pool.requests_served()
            assert sum(served.values()) == 100
            assert sum(1 for count in served.values() if count > 0) >= 2


async def test_capabilities_list_every_tool_of_the_real_server_and_are_cached(data_dir: Path) -> None:
    """capabilities() gathers tools, templates and prompts once and then answers from its cache."""
    with anyio.fail_after(REAL_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(), real_server(data_dir)) as pool:
            capabilities = await pool.capabilities(session_id="s")
            names = {t["name"] for t in capabilities["tools"]}
            assert len(names) >= 21
            assert {"roll_dice", "search", "create_campaign"} <= names
            assert len(capabilities["resource_templates"]) == 3
            assert {p["name"] for p in capabilities["prompts"]} >= {"session_recap", "npc_generator"}
            assert await pool.capabilities(session_id="other") is capabilities


async def test_close_leaves_no_process_and_is_idempotent(data_dir: Path) -> None:
    """After close() every child pid is gone, a second close() is harmless, requests are refused."""
    with anyio.fail_after(REAL_SERVER_TEST_TIMEOUT):
        pool = McpPool(settings(min_children=2, max_children=2), real_server(data_dir))
        await pool.start()
        pids = pool.pids()
        assert len(pids) == 2
        await pool.request("tools/call", tool("roll_dice", expression="1d6"), session_id="s")
        await pool.close()
        assert all(is_gone(pid) for pid in pids)
        assert pool.pids() == []
        await pool.close()
        with pytest.raises(BridgeError) as refused:
            await pool.request("tools/list", session_id="s")
        assert refused.value.code == "shutting_down"


async def test_requests_before_start_are_refused_as_unavailable() -> None:
    """A pool that was never started says why it is not ready and refuses requests."""
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        pool = McpPool(settings(), fake_server())
        assert not pool.ready
        assert pool.not_ready_reason is not None
        with pytest.raises(BridgeError) as refused:
            await pool.request("tools/list", session_id="s")
        assert refused.value.code == "mcp_unavailable"
        await pool.close()


async def test_closing_fails_in_flight_requests_with_shutting_down() -> None:
    """close() does not wait for slow tools: their callers get shutting_down at once."""
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        pool = McpPool(settings(), fake_server())
        await pool.start()
        pid = pool.pids()[0]
        outcome: list[BridgeError] = []

        async def slow_call() -> None:
            try:
                await pool.request("tools/call", tool("sleep", seconds=60), session_id="s")
            except BridgeError as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(slow_call)
            await wait_until(lambda: pool.busy == 1)
            await pool.close(grace=1.0)
        assert [error.code for error in outcome] == ["shutting_down"]
        assert is_gone(pid)


async def test_killed_child_fails_its_request_at_once_and_a_respawned_child_serves_the_next() -> None:
    """kill -9 mid-request gives mcp_child_crashed naming SIGKILL, then a new child answers."""
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(request_timeout=120.0), fake_server()) as pool:
            victim = pool.pids()[0]
            failures: list[BridgeError] = []

            async def slow_call() -> None:
                try:
                    await pool.request("tools/call", tool("sleep", seconds=600), session_id="s")
                except BridgeError as exc:
                    failures.append(exc)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(slow_call)
                await wait_until(lambda: pool.busy == 1)
                os.kill(victim, signal.SIGKILL)
            assert [error.code for error in failures] == ["mcp_child_crashed"]
            assert "SIGKILL" in failures[0].message
            answer = await pool.request("tools/call", tool("whoami"), session_id="s")
            assert answer["structuredContent"]["pid"] != victim
            assert is_gone(victim)


async def test_timeout_cancels_the_request_in_the_child(tmp_path: Path) -> None:
    """A request with no answer in time raises mcp_timeout and the child gets notifications/cancelled."""
    record = tmp_path / "received.jsonl"
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(), fake_server("--record", str(record))) as pool:
            with pytest.raises(BridgeError) as timed_out:
                await pool.request("tools/call", tool("sleep", seconds=60), session_id="s", timeout=0.5)
            assert timed_out.value.code == "mcp_timeout"

            def cancelled_ids() -> list[Any]:
                return [
                    m["params"]["requestId"]
                    for m in recorded(record)
                    if m.get("method") == "notifications/cancelled"
                ]

            await wait_until(lambda: bool(cancelled_ids()))
            call_ids = [m["id"] for m in recorded(record) if m.get("method") == "tools/call"]
            assert cancelled_ids() == call_ids


async def test_a_cancelled_caller_cancels_the_request_in_the_child(tmp_path: Path) -> None:
    """When the caller's task is cancelled, the child is told with notifications/cancelled."""
    record = tmp_path / "received.jsonl"
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(), fake_server("--record", str(record))) as pool:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(
                    partial(pool.request, "tools/call", tool("sleep", seconds=60), session_id="s")
                )
                await wait_until(lambda: pool.busy == 1)
                tasks.cancel_scope.cancel()
            await wait_until(
                lambda: any(m.get("method") == "notifications/cancelled" for m in recorded(record))
            )
            assert pool.busy == 0


async def test_every_request_names_its_viewer_in_meta_and_a_forged_one_is_replaced(tmp_path: Path) -> None:
    """The child sees the bridge's viewer (a spectator when none is given), never the caller's _meta."""
    record = tmp_path / "received.jsonl"
    forged = {"_meta": {"progressToken": "mine", META_KEY: {"role": "gm"}, "other": 1}}
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(), fake_server("--record", str(record))) as pool:
            player = Viewer("player", "usr_p", "camp_1")
            await pool.request("tools/call", tool("echo") | forged, session_id="s", viewer=player)
            await pool.request("tools/call", tool("echo") | forged, session_id="s")
    calls = [m["params"]["_meta"] for m in recorded(record) if m.get("method") == "tools/call"]
    assert [meta[META_KEY] for meta in calls] == [
        {"role": "player", "user_id": "usr_p", "campaign_id": "camp_1"},
        {"role": "spectator", "user_id": None, "campaign_id": None},
    ]
    assert all(set(meta) == {"progressToken", META_KEY} for meta in calls)


async def test_progress_notifications_extend_the_timeout_and_reach_the_caller() -> None:
    """Progress resets a request's timer and is relayed to its session under the caller's token."""
    received: list[dict[str, Any]] = []
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(), fake_server()) as pool:
            pool.add_listener("s", received.append)
            pool.add_listener("bystander", lambda message: pytest.fail(f"leaked {message}"))
            params = tool("progress", count=5, interval=0.3) | {"_meta": {"progressToken": "mine"}}
            result = await pool.request("tools/call", params, session_id="s", timeout=0.8)
            assert result["structuredContent"] == {"steps": 5}
            assert [m["params"]["progressToken"] for m in received] == ["mine"] * 5
            assert [m["params"]["progress"] for m in received] == [1, 2, 3, 4, 5]


async def test_progress_never_extends_a_request_past_the_ceiling() -> None:
    """max_request_timeout bounds a request however much progress it reports."""
    config = settings(request_timeout=0.8, max_request_timeout=1.2)
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(config, fake_server()) as pool:
            with pytest.raises(BridgeError) as timed_out:
                await pool.request("tools/call", tool("progress", count=20, interval=0.3), session_id="s")
            assert timed_out.value.code == "mcp_timeout"


async def test_crash_loop_opens_the_breaker_backs_off_and_keeps_trying() -> None:
    """A child that keeps exiting opens the breaker: not ready, with the reason, requests refused
    at once while no child is ready; respawning goes on, at the longest backoff."""
    config = settings(crash_loop_limit=2, crash_loop_window=60.0, restart_backoff_max=0.3)
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        pool = McpPool(config, fake_server("--exit-at-start", "3"))
        try:
            with pytest.raises(BridgeError) as failed:
                await pool.start()
            assert failed.value.code == "mcp_unavailable"
            assert "exited with code 3" in failed.value.message
            await wait_until(lambda: "crashed 3 times" in (pool.not_ready_reason or ""))
            assert not pool.ready
            assert pool.breaker.open
            with pytest.raises(BridgeError) as refused:
                await pool.request("tools/list", session_id="s")
            assert refused.value.code == "mcp_unavailable"
            assert "crashed" in refused.value.message
            assert "next restart in" in refused.value.message
            # No full stop: the crashes keep coming, one per backoff period.
            await wait_until(lambda: pool.breaker.recent_crashes >= 5)
            assert pool.breaker.to_dict()["state"] == "open"
        finally:
            await pool.close()


async def test_an_open_breaker_still_serves_from_a_ready_child() -> None:
    """Crashes of a sibling open the breaker, but a ready child keeps answering."""
    config = settings(min_children=2, max_children=2, crash_loop_limit=1, restart_backoff_max=0.2)
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(config, fake_server()) as pool:
            await wait_until(lambda: len(pool.pids()) == 2)
            survivor = pool.pids()[0]
            killed: set[int] = set()
            for _ in range(2):
                await wait_until(lambda: any(p != survivor and p not in killed for p in pool.pids()))
                victim = next(p for p in pool.pids() if p != survivor and p not in killed)
                os.kill(victim, signal.SIGKILL)
                killed.add(victim)
                await wait_until(lambda victim=victim: victim not in pool.pids())  # type: ignore[misc]
            assert pool.breaker.recent_crashes == 2
            assert pool.breaker.open
            assert await whoami(pool, "s") in pool.pids()


async def test_child_that_ignores_pings_is_killed_and_replaced() -> None:
    """An idle child that misses a ping is killed (its whole group) and a new one takes its place."""
    config = settings(ping_interval=0.2, ping_timeout=0.3, crash_loop_limit=100)
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(config, fake_server("--ignore-ping")) as pool:
            first = pool.pids()[0]
            await wait_until(lambda: is_gone(first))
            await wait_until(lambda: any(pid != first for pid in pool.pids()))


async def whoami(pool: McpPool, session_id: str) -> int:
    """The pid of the fake child that serves ``session_id``."""
    result = await pool.request("tools/call", tool("whoami"), session_id=session_id)
    return int(result["structuredContent"]["pid"])


async def test_isolated_sessions_lease_their_own_children_up_to_the_cap() -> None:
    """Isolation gives each session its own child, refuses sessions over the cap, and frees on release."""
    config = settings(isolation=True, min_children=0, max_children=2)
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(config, fake_server()) as pool:
            alice, bob = await asyncio.gather(whoami(pool, "alice"), whoami(pool, "bob"))
            assert alice != bob
            assert await whoami(pool, "alice") == alice
            with pytest.raises(BridgeError) as capped:
                await whoami(pool, "carol")
            assert capped.value.code == "mcp_unavailable"
            assert "cap" in capped.value.message
            await pool.release_session("alice")
            assert is_gone(alice)
            carol = await whoami(pool, "carol")
            assert carol not in {alice, bob}
            assert await whoami(pool, "bob") == bob


async def test_an_isolated_session_gets_the_warm_spare_and_a_new_spare_is_started() -> None:
    """In isolation mode min_children are unleased spares: the first session takes one, it is replaced."""
    config = settings(isolation=True, min_children=1, max_children=3)
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(config, fake_server()) as pool:
            spare = pool.pids()[0]
            assert await whoami(pool, "alice") == spare
            await wait_until(lambda: len(pool.pids()) == 2)
            replacement = next(pid for pid in pool.pids() if pid != spare)
            assert await whoami(pool, "bob") == replacement
            await pool.release_session("alice")
            await pool.release_session("bob")
            assert is_gone(spare)
            assert is_gone(replacement)


async def test_saturated_shared_children_make_the_pool_grow() -> None:
    """When every child has max_in_flight requests, the pool starts another, up to max_children."""
    config = settings(min_children=1, max_children=2, max_in_flight=1)
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(config, fake_server()) as pool, anyio.create_task_group() as tasks:
            tasks.start_soon(partial(pool.request, "tools/call", tool("sleep", seconds=60), session_id="s"))
            await wait_until(lambda: pool.busy == 1)
            await pool.request("tools/call", tool("whoami"), session_id="t")
            await wait_until(lambda: len(pool.pids()) == 2)
            tasks.cancel_scope.cancel()


async def test_json_rpc_errors_become_mcp_error_with_the_code() -> None:
    """A JSON-RPC error from the child is raised as mcp_error with jsonrpc_code and detail."""
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(), fake_server()) as pool:
            with pytest.raises(BridgeError) as failed:
                await pool.request("no/such/method", {}, session_id="s")
            assert failed.value.code == "mcp_error"
            assert failed.value.data is not None
            assert failed.value.data["jsonrpc_code"] == -32601
            assert "detail" in failed.value.data


async def test_requests_from_the_child_get_ping_answered_and_the_rest_refused() -> None:
    """The relay answers a child's ping with {} and roots/list with method-not-found."""
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(), fake_server()) as pool:
            result = await pool.request("tools/call", tool("ask_client"), session_id="s")
            answers = result["structuredContent"]
            assert answers["ping"]["result"] == {}
            assert answers["roots"]["error"]["code"] == -32601


async def test_notifications_reach_only_the_sessions_they_concern() -> None:
    """list_changed reaches everyone; resources/updated only the subscribers of that uri."""
    inbox: dict[str, list[str]] = {"s1": [], "s2": []}
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(), fake_server()) as pool:
            for session_id, messages in inbox.items():
                pool.add_listener(session_id, lambda m, box=messages: box.append(m["method"]))
            await pool.request("resources/subscribe", {"uri": "fake://a"}, session_id="s1")

            async def send(method: str, **params: Any) -> None:
                await pool.request(
                    "tools/call", tool("notify", method=method, params=params), session_id="s2"
                )

            await send("notifications/resources/updated", uri="fake://a")
            await send("notifications/tools/list_changed")
            await send("notifications/message", level="warning", data="logged, not relayed")
            await send("notifications/something/else")
            await wait_until(lambda: len(inbox["s2"]) == 1 and len(inbox["s1"]) == 2)
            assert inbox["s1"] == ["notifications/resources/updated", "notifications/tools/list_changed"]
            assert inbox["s2"] == ["notifications/tools/list_changed"]
            pool.remove_listener("s2")
            await pool.release_session("s1")


async def test_capabilities_follow_pagination_and_refresh_after_list_changed() -> None:
    """tools/list pages are joined, and a list_changed notification empties the cache."""
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(), fake_server()) as pool:
            first = await pool.capabilities(session_id="s")
            assert [t["name"] for t in first["tools"]][:2] == ["whoami", "echo"]
            assert first["tools"][0]["description"] == "listed 1 times"
            assert first["prompts"] == []  # the server does not offer prompts
            params = tool("notify", method="notifications/tools/list_changed", params={})
            # The notification precedes the tool's answer on the child's stdout, so it has been seen.
            await pool.request("tools/call", params, session_id="s")
            second = await pool.capabilities(session_id="s")
            assert second["tools"][0]["description"] == "listed 2 times"


async def test_invalid_stdout_lines_are_skipped_and_stderr_is_logged() -> None:
    """Garbage on stdout is logged and skipped; stderr lines are logged at info with the pid."""
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT), structlog.testing.capture_logs() as logs:
        async with running_pool(settings(), fake_server()) as pool:
            pid = pool.pids()[0]
            result = await pool.request("tools/call", tool("garbage"), session_id="s")
            assert result["structuredContent"] == {"garbage": True}
            await wait_until(
                lambda: any(
                    "complains" in str(e.get("line")) for e in logs if e["event"] == "mcp_child_stderr"
                )
            )
    invalid = [e for e in logs if e["event"] == "mcp_child_invalid_line"]
    assert invalid
    assert "not json" in invalid[0]["line"]
    stderr = [e for e in logs if e["event"] == "mcp_child_stderr" and "complains" in e["line"]]
    assert stderr[0]["log_level"] == "info"
    assert stderr[0]["mcp_child_pid"] == pid


async def test_results_far_larger_than_the_default_stream_limit_pass_through() -> None:
    """A multi-megabyte tool result arrives whole (the 64 KiB readline default is raised)."""
    size = 5 * 1024 * 1024
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(), fake_server()) as pool:
            result = await pool.request("tools/call", tool("big", size=size), session_id="s")
            assert len(result["structuredContent"]["text"]) == size


async def test_an_older_handshake_version_is_accepted_and_an_unknown_one_refused() -> None:
    """The pool speaks any handshake version the SDK knows, and refuses to start on another."""
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(), fake_server("--protocol-version", "2024-11-05")) as pool:
            assert pool.server_info["protocolVersion"] == "2024-11-05"
            await pool.request("tools/call", tool("whoami"), session_id="s")
        pool = McpPool(settings(crash_loop_limit=1), fake_server("--protocol-version", "1999-01-01"))
        try:
            with pytest.raises(BridgeError) as refused:
                await pool.start()
            assert refused.value.code == "mcp_unavailable"
            assert "1999-01-01" in refused.value.message
        finally:
            await pool.close()


async def test_children_get_a_clean_environment_without_bridge_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only an allow-list (and non-secret TTRPG_ variables) reaches a child."""
    monkeypatch.setenv("TTRPG_JWT_SECRET", "do-not-leak")
    monkeypatch.setenv("TTRPG_DATABASE_URL", "postgresql://user:pw@db/bridge")
    monkeypatch.setenv("TTRPG_DATA_DIR", "/srv/ttrpg")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with running_pool(settings(), fake_server()) as pool:
            result = await pool.request("tools/call", tool("env"), session_id="s")
    env = result["structuredContent"]["env"]
    assert env["TTRPG_DATA_DIR"] == "/srv/ttrpg"
    assert "PATH" in env
    assert not {"TTRPG_JWT_SECRET", "TTRPG_DATABASE_URL", "AWS_SECRET_ACCESS_KEY"} & set(env)
    assert child_environment({"TTRPG_REDIS_URL": "x", "TTRPG_LOG_LEVEL": "info"}) == {
        "TTRPG_LOG_LEVEL": "info"
    }


_BRIDGE_SCRIPT = """
import asyncio, json, sys
from ttrpg_mcp.bridge.mcp_pool import McpPool
from ttrpg_mcp.bridge.settings import McpSettings

async def main():
    command = [sys.executable, sys.argv[1], "--ignore-eof"]  # only a signal can stop these children
    pool = McpPool(McpSettings(min_children=2, max_children=2), command)
    await pool.start()
    print("PIDS " + json.dumps(pool.pids()), flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


async def test_children_die_when_the_bridge_is_killed_with_sigkill() -> None:
    """PR_SET_PDEATHSIG: a SIGKILLed bridge leaves no orphan child behind."""
    command = [sys.executable, "-c", _BRIDGE_SCRIPT, str(FAKE_SERVER)]
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        async with await anyio.open_process(command, stderr=subprocess.DEVNULL) as bridge:
            assert bridge.stdout is not None
            lines = BufferedByteReceiveStream(bridge.stdout)
            line = b""
            while not line.startswith(b"PIDS "):
                line = await lines.receive_until(b"\n", 1 << 20)
            pids = json.loads(line[5:])
            assert len(pids) == 2
            assert not any(is_gone(pid) for pid in pids)
            bridge.kill()
            await bridge.wait()
        await wait_until(lambda: all(is_gone(pid) for pid in pids))


def test_crash_history_backs_off_opens_and_closes_by_the_window() -> None:
    """Backoff doubles per recent crash up to the maximum; the breaker opens past the limit and
    closes as crashes age out of the window; respawns never stop."""
    history = CrashHistory(limit=3, window=10.0, backoff=1.0, backoff_max=3.0)
    assert history.respawn_at(100.0) == 100.0
    assert not history.record(100.0, "exited with code 1")
    assert history.respawn_at(100.0) == 101.0
    assert not history.record(101.0, "exited with code 1")
    assert history.respawn_at(101.0) == 103.0
    assert not history.record(102.0, "exited with code 1")
    assert history.respawn_at(102.0) == 105.0  # 4 s capped at 3
    assert history.record(103.0, "exited with code 2")
    reason = history.tripped(104.0)
    assert reason is not None
    assert "4 times" in reason
    assert "exited with code 2" in reason
    assert history.respawn_at(104.0) == 106.0  # a restart every backoff_max, not a full stop
    assert history.status(104.0).open
    assert history.tripped(111.0) is None  # two crashes left in the window: closed again
    assert history.count(113.0) == 0
    assert history.respawn_at(113.0) == 113.0


def test_a_spawn_short_of_resources_delays_but_is_no_crash() -> None:
    history = CrashHistory(limit=1, window=10.0, backoff=1.0, backoff_max=3.0)
    for attempt in range(5):
        history.record_shortage(100.0 + attempt, "could not be started: too many open files")
    assert history.count(105.0) == 0
    assert history.tripped(105.0) is None
    assert history.respawn_at(104.5) == 105.0


async def test_an_oversized_line_is_skipped_whole() -> None:
    """read_line drops a line over the reader's limit and returns the next one intact."""
    reader = asyncio.StreamReader(limit=16)
    reader.feed_data(b'{"a":1}\n' + b"x" * 100 + b"\n" + b'{"b":2}\n' + b"tail")
    reader.feed_eof()
    dropped: list[int] = []
    with anyio.fail_after(5):
        lines = [await read_line(reader, dropped.append) for _ in range(4)]
    assert lines == [b'{"a":1}\n', b'{"b":2}\n', b"tail", None]
    assert dropped == [101]


def test_progress_tokens_are_replaced_without_touching_the_callers_params() -> None:
    """The child sees the pool's token; the caller's dicts and token are kept."""
    params = {"name": "x", "_meta": {"progressToken": "mine", "other": 1}}
    rewritten, original = with_progress_token(params, 7)
    assert rewritten == {"name": "x", "_meta": {"progressToken": 7, "other": 1}}
    assert original == "mine"
    assert params["_meta"] == {"progressToken": "mine", "other": 1}
    assert with_progress_token(None, 8) == ({"_meta": {"progressToken": 8}}, None)


def test_router_sends_resource_updates_to_subscribers_and_everything_to_a_lease_holder() -> None:
    """Routing rules: subscribers by uri, everyone for list_changed, the holder for a leased child."""
    router = NotificationRouter()
    for session_id in ("a", "b"):
        router.add_listener(session_id, lambda _m: None)
    router.subscribe("a", "campaign://1")
    updated = {"method": "notifications/resources/updated", "params": {"uri": "campaign://1"}}
    assert router.targets(updated) == ["a"]
    assert sorted(router.targets({"method": "notifications/prompts/list_changed"})) == ["a", "b"]
    assert router.targets({"method": "notifications/custom"}) == []
    assert router.targets({"method": "notifications/custom"}, leased_to="b") == ["b"]
    router.forget("a")
    assert router.subscriptions("a") == set()
    assert router.targets(updated) == []  # a uri someone subscribed to never falls back to everyone
    unknown = {"method": "notifications/resources/updated", "params": {"uri": "campaign://2"}}
    assert sorted(router.targets(unknown)) == ["a", "b"]


async def test_children_run_under_the_configured_resource_limits() -> None:
    """Memory, CPU time and open files are capped in every child, as configured."""
    with anyio.fail_after(FAKE_SERVER_TEST_TIMEOUT):
        pool = McpPool(
            settings(memory_limit_mb=512, cpu_limit_seconds=600, open_files_limit=256), fake_server()
        )
        await pool.start()
        try:
            (pid,) = pool.pids()
            child = psutil.Process(pid)
            assert child.rlimit(psutil.RLIMIT_AS) == (512 * 1024 * 1024, 512 * 1024 * 1024)
            assert child.rlimit(psutil.RLIMIT_CPU) == (600, 605)
            assert child.rlimit(psutil.RLIMIT_NOFILE) == (256, 256)
            answer = await pool.request("tools/call", {"name": "whoami", "arguments": {}}, session_id="s")
            assert answer["structuredContent"]["pid"] == pid
        finally:
            await pool.close()
