"""The stdio wire served on the event loop (``server/pipes.py``), through a real child over pipes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 60

SERVER = textwrap.dedent(
    """
    import threading

    from mcp.server.mcpserver import MCPServer

    from ttrpg_mcp.server.pipes import serve_stdio

    server = MCPServer("pipes")


    @server.tool()
    async def threads() -> int:
        return threading.active_count()


    @server.tool()
    async def noisy() -> str:
        print("stray output")  # must not reach the protocol stream
        return "ok"


    serve_stdio(server)
    """
)


class _Wire:
    """JSON-RPC lines to and from a child's stdin and stdout."""

    def __init__(self, process: Process) -> None:
        self._process = process
        self._buffer = b""
        self._ids = 0

    async def send(self, message: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        await self._process.stdin.send(json.dumps(message).encode() + b"\n")

    async def receive(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        while b"\n" not in self._buffer:
            self._buffer += await self._process.stdout.receive()
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)  # type: ignore[no-any-return]

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._ids += 1
        await self.send({"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params})
        reply = await self.receive()
        assert reply["id"] == self._ids
        return reply

    async def initialize(self) -> None:
        client = {"name": "test", "version": "1"}
        params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client}
        assert "result" in await self.request("initialize", params)
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def call(self, tool: str) -> Any:
        reply = await self.request("tools/call", {"name": tool, "arguments": {}})
        return reply["result"]["structuredContent"]["result"]


async def _serve(tmp_path: Path) -> Process:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    return await anyio.open_process(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


async def test_calls_over_pipes_start_no_worker_thread(tmp_path: Path) -> None:
    """Lines are read and replies written on the event loop: the SDK's file wrappers need threads."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with await _serve(tmp_path) as process:
            wire = _Wire(process)
            await wire.initialize()
            for _ in range(5):
                assert await wire.call("threads") == 1


async def test_stray_output_goes_to_stderr_not_the_wire(tmp_path: Path) -> None:
    """A tool that prints to stdout does not corrupt the protocol stream; the print lands on stderr."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with await _serve(tmp_path) as process:
            wire = _Wire(process)
            await wire.initialize()
            assert await wire.call("noisy") == "ok"
            assert await wire.call("threads") == 1  # the next reply is intact too
            assert process.stdin is not None
            assert process.stderr is not None
            await process.stdin.aclose()  # end of input: the server exits
            stderr = b""
            async for chunk in process.stderr:
                stderr += chunk
            assert await process.wait() == 0
    assert b"stray output" in stderr
