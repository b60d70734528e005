"""Outside kills of MCP children (the OOM killer, say) against a real bridge: with two warm
children by default, /readyz never drops and tool calls keep being answered; past the crash
limit the breaker opens, is reported in /readyz and /metrics, and respawning goes on."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from bridge_process import RunningBridge, run_bridge

from ttrpg_mcp.client import BridgeClient

pytestmark = pytest.mark.anyio

KILLS = 6  # one more than the default crash_loop_limit of 5
TEST_TIMEOUT = 240.0
ENV = {"TTRPG_MCP__RESTART_BACKOFF_MAX": "2"}


@pytest.fixture
def bridge(data_dir: Path) -> Iterator[RunningBridge]:
    with run_bridge(data_dir, ENV) as running:
        yield running


async def _readyz(http: httpx.AsyncClient) -> httpx.Response:
    return await http.get("/readyz")


async def _wait_for_two_ready(http: httpx.AsyncClient) -> None:
    while (await _readyz(http)).json()["mcp_children"]["ready"] < 2:  # noqa: ASYNC110  # polled over HTTP
        await anyio.sleep(0.05)


async def test_outside_kills_leave_a_warm_child_and_open_a_reported_breaker(bridge: RunningBridge) -> None:
    not_ready: list[str] = []
    stop = anyio.Event()

    async def watch_readiness(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            response = await _readyz(http)
            if response.status_code != 200:
                not_ready.append(response.text)
            await anyio.sleep(0.02)

    async with (
        BridgeClient(bridge.base_url) as client,
        httpx.AsyncClient(base_url=bridge.base_url, timeout=10) as http,
    ):
        await client.register(f"k{uuid.uuid4().hex[:6]}", "password123")
        async with client.connect() as table, anyio.create_task_group() as group:
            with anyio.fail_after(TEST_TIMEOUT):
                await _wait_for_two_ready(http)
                group.start_soon(watch_readiness, http)
                started = time.monotonic()
                for _ in range(KILLS):
                    await _wait_for_two_ready(http)
                    victim = bridge.child_pids()[0]
                    os.kill(victim, signal.SIGKILL)
                    while victim in bridge.child_pids():  # noqa: ASYNC110  # until the bridge reaps it
                        await anyio.sleep(0.02)
                    # Answered while the victim is being replaced.
                    rolled = await table.call_tool("roll_dice", {"expression": "1d6"})
                    assert 1 <= rolled["total"] <= 6
                breaker = (await _readyz(http)).json()["mcp_breaker"]
                elapsed = time.monotonic() - started
                metrics = (await http.get("/metrics")).text
                await _wait_for_two_ready(http)  # and still restarting: no full stop
                stop.set()
    assert elapsed < 60, "the kills must fall in one crash-loop window"
    assert breaker["state"] == "open", breaker
    assert breaker["recent_crashes"] >= KILLS
    assert "mcp_breaker_open 1.0" in metrics
    assert not_ready == []
    print(f"\ncrashes: {KILLS} kills in {elapsed:.1f} s, /readyz not ready {len(not_ready)} times")
