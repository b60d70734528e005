"""The gateway when the MCP side fails: a child killed mid-request, a request that times out.

The bridge relays to a deliberately misbehaving stdio server here (tests/bridge/fake_servers),
which proves too that any stdio MCP server can be bridged.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
from bridge_process import RunningBridge, run_bridge

from ttrpg_mcp.client import BridgeClient, BridgeClientError, BridgeConnection

pytestmark = pytest.mark.anyio

FAKE_SERVER = Path(__file__).parent / "fake_servers" / "misbehaving_server.py"
TEST_TIMEOUT = 60.0
# The slow tool sleeps far longer than any test waits: an answer means the bridge gave up.
SLOW = 600


def _calls_of(recorded: str, tool: str) -> int:
    """How many ``tools/call`` of ``tool`` the fake server has recorded."""
    messages = [json.loads(line) for line in recorded.splitlines() if line.strip()]
    return sum(1 for m in messages if m.get("method") == "tools/call" and m["params"]["name"] == tool)


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("record") / "received.jsonl"


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory, record: Path) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("failures") / "data"
    data_dir.mkdir()
    command = [sys.executable, str(FAKE_SERVER), "--record", str(record)]
    env = {
        "TTRPG_MCP__COMMAND": json.dumps(command),
        "TTRPG_MCP__RESTART_BACKOFF": "0.1",
        "TTRPG_LOBBY_TOOLS": '["*"]',  # another MCP server's tools, open to every session
    }
    with run_bridge(data_dir, env) as running:
        yield running


@pytest.fixture
async def table(bridge: RunningBridge) -> AsyncIterator[BridgeConnection]:
    async with BridgeClient(bridge.base_url) as client:
        await client.register(f"f{os.urandom(4).hex()}", "password123")
        async with client.connect() as connection:
            yield connection


async def test_a_child_killed_mid_request_fails_that_request_at_once_and_the_next_succeeds(
    table: BridgeConnection, record: Path
) -> None:
    """kill -9 of the serving child: mcp_child_crashed now, not after a timeout; then a new child."""
    with anyio.fail_after(TEST_TIMEOUT):
        first_pid = (await table.call_tool("whoami"))["pid"]
        async with anyio.create_task_group() as group:
            failure: list[BridgeClientError] = []

            async def slow_call() -> None:
                with pytest.raises(BridgeClientError) as crashed:
                    await table.call_tool("sleep", {"seconds": SLOW}, timeout=SLOW)
                failure.append(crashed.value)

            calls_before = _calls_of(await anyio.Path(record).read_text(), "sleep")
            group.start_soon(slow_call)
            # The kill must land while the call runs in the child: wait until the child has it.
            while _calls_of(await anyio.Path(record).read_text(), "sleep") == calls_before:  # noqa: ASYNC110
                await anyio.sleep(0.02)
            os.kill(first_pid, signal.SIGKILL)
        assert failure[0].code == "mcp_child_crashed"
        second_pid = (await table.call_tool("whoami"))["pid"]
        assert second_pid != first_pid


async def test_a_timed_out_request_is_cancelled_in_the_child(table: BridgeConnection, record: Path) -> None:
    """metadata.timeout elapses: the client gets mcp_timeout and the child notifications/cancelled."""
    with anyio.fail_after(TEST_TIMEOUT):
        with pytest.raises(BridgeClientError) as timed_out:
            await table.call_tool("sleep", {"seconds": SLOW}, timeout=0.5)
        assert timed_out.value.code == "mcp_timeout"
        for _ in range(100):
            text = await anyio.Path(record).read_text()
            received = [json.loads(line) for line in text.splitlines()]
            cancels = [m for m in received if m.get("method") == "notifications/cancelled"]
            if cancels:
                break
            await anyio.sleep(0.05)
        assert cancels, "the child never heard of the cancellation"
        slow_ids = {
            m["id"] for m in received if m.get("method") == "tools/call" and m["params"]["name"] == "sleep"
        }
        assert cancels[-1]["params"]["requestId"] in slow_ids
        # The connection and the child both still work.
        assert (await table.call_tool("echo", {"n": 1}))["arguments"] == {"n": 1}
