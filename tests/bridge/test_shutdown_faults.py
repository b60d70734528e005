"""SIGTERM with a tool call still running: the call is answered ``shutting_down`` before the
socket closes with 1012, and the bridge exits with status 0 after its drain."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import anyio
import pytest
from bridge_process import run_bridge

from ttrpg_mcp.client import BridgeClient, BridgeClientError

pytestmark = pytest.mark.anyio

FAKE_SERVER = Path(__file__).parent / "fake_servers" / "misbehaving_server.py"
TEST_TIMEOUT = 90.0
SLOW = 600  # far longer than any wait here: an answer means the bridge gave up on it


async def wait_until_received(record: Path, tool: str) -> None:
    """Until the MCP child has received a call of ``tool`` (the fake server records each message)."""
    while True:
        if await anyio.Path(record).exists():
            for line in (await anyio.Path(record).read_text()).splitlines():
                message = json.loads(line)
                if message.get("method") == "tools/call" and message["params"]["name"] == tool:
                    return
        await anyio.sleep(0.05)


async def test_a_call_running_at_shutdown_is_answered_shutting_down_and_the_exit_is_clean(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    record = tmp_path / "received.jsonl"
    env = {
        "TTRPG_MCP__COMMAND": json.dumps([sys.executable, str(FAKE_SERVER), "--record", str(record)]),
        "TTRPG_LOBBY_TOOLS": '["*"]',
        "TTRPG_SHUTDOWN_GRACE": "1",
    }
    with run_bridge(data_dir, env) as bridge, anyio.fail_after(TEST_TIMEOUT):
        async with BridgeClient(bridge.base_url) as client:
            await client.register(f"s{os.urandom(4).hex()}", "password123")
            async with client.connect() as table:
                failure: list[BridgeClientError] = []

                async def slow_call() -> None:
                    with pytest.raises(BridgeClientError) as refused:
                        await table.call_tool("sleep", {"seconds": SLOW}, timeout=SLOW)
                    failure.append(refused.value)

                async with anyio.create_task_group() as group:
                    group.start_soon(slow_call)
                    await wait_until_received(record, "sleep")
                    bridge.process.send_signal(signal.SIGTERM)
                assert failure[0].code == "shutting_down", failure[0]
                close_code, _reason = await table.wait_closed()
                assert close_code == 1012
        status = await anyio.to_thread.run_sync(bridge.process.wait)
        assert status == 0, bridge.log()
