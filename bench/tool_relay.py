"""The tool-call relay side by side: ``roll_dice`` through four paths, in one run.

Run with ``make bench`` (or ``python bench/tool_relay.py --calls 1000 --seconds 5``). Every path
ends at this project's own ``ttrpg-mcp`` child on a scratch data directory:

1. direct stdio with the official SDK client (what Claude Desktop does): the floor;
2. ``ttrpg-bridge`` with ``tool_call`` messages over one WebSocket (the project's Python client);
3. supergateway (npm; stdio to WebSocket, one shared child), installed under
   ``bench/peers/supergateway`` on first use, driven by a minimal JSON-RPC WebSocket client;
4. mcp-proxy (PyPI; stdio to streamable HTTP) in its own venv under ``bench/peers`` (it pins an
   older ``mcp``), driven by the SDK's streamable HTTP client.

For each path: sequential calls (p50, p99), then a fixed number of calls kept in flight (1, 8,
32, 128) for a fixed time: calls/s, p50/p99, and the CPU the relay's processes used (the bridge
or peer and its children, read from ``/proc`` through psutil; the load client is not counted),
in cores. The load client shares the machine's cores with the path under test, so ratios
between rows of one run say more than absolute numbers. A peer that cannot be installed (no
network) is reported as skipped. Prints a table and writes ``bench/results/tool_relay.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from bridge_server import running_bridge
from timing import machine_info, percentiles
from ttrpg_mcp.client import BridgeClient
from ttrpg_mcp.server.launch import connect, server_parameters

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "tool_relay.json"
PEERS = HERE / "peers"
SUPERGATEWAY = PEERS / "supergateway" / "node_modules" / ".bin" / "supergateway"
MCP_PROXY = PEERS / "mcp-proxy-venv" / "bin" / "mcp-proxy"
ARGUMENTS = {"expression": "1d20+5"}
LEVELS = (1, 8, 32, 128)

Call = Callable[[], Awaitable[Any]]


def ensure_peers() -> dict[str, str]:
    """Install the peers on first use; a peer that cannot be installed is skipped, with why."""
    problems: dict[str, str] = {}
    if not SUPERGATEWAY.exists():
        npm = shutil.which("npm")
        if npm is None:
            problems["supergateway"] = "npm is not installed"
        else:
            command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(SUPERGATEWAY.parents[2])]
            if subprocess.run([*command, "supergateway@4"], check=False).returncode != 0:
                problems["supergateway"] = "npm install supergateway failed"
    if not MCP_PROXY.exists():
        venv = MCP_PROXY.parents[1]
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], check=False).returncode == 0
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "mcp-proxy"]
        if not made or subprocess.run(pip, check=False).returncode != 0:
            problems["mcp-proxy"] = "pip install mcp-proxy failed"
    return problems


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def relay_cpu_seconds() -> float:
    """CPU used so far by every process this benchmark started (the path under test)."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system
    return total


def _server_command(data_dir: Path) -> list[str]:
    parameters = server_parameters(data_dir)
    return [parameters.command, *parameters.args]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the peer exited before it listened")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError("the peer did not listen in time")


@contextlib.contextmanager
def _peer_process(command: list[str], port: int) -> Any:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class JsonRpcWebSocket:
    """A minimal MCP client over a WebSocket (one JSON-RPC message per frame), for supergateway."""

    def __init__(self, socket_: Any) -> None:
        self._socket = socket_
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self._socket:
            message = json.loads(raw)
            future = self._pending.pop(message.get("id"), None) if "id" in message else None
            if future is not None and not future.done():
                future.set_result(message)

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        await self._socket.send(
            json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        )
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    async def initialize(self) -> None:
        await self.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        )
        await self._socket.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))

    async def aclose(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def direct_path(data_dir: Path) -> AsyncIterator[Call]:
    async with connect(data_dir) as session:
        yield lambda: session.call_tool("roll_dice", ARGUMENTS)


@contextlib.asynccontextmanager
async def bridge_path(data_dir: Path) -> AsyncIterator[Call]:
    with running_bridge(data_dir) as base_url:
        async with BridgeClient(base_url) as client:
            await client.register("bench", "benchmark-password")
            async with client.connect() as table:
                yield lambda: table.call_tool("roll_dice", ARGUMENTS)


@contextlib.asynccontextmanager
async def supergateway_path(data_dir: Path) -> AsyncIterator[Call]:
    port = _free_port()
    stdio = " ".join(_server_command(data_dir))
    command = [str(SUPERGATEWAY), "--stdio", stdio, "--outputTransport", "ws", "--port", str(port)]
    with _peer_process([*command, "--logLevel", "none"], port):
        async with websockets.connect(f"ws://127.0.0.1:{port}/message", max_size=None) as socket_:
            client = JsonRpcWebSocket(socket_)
            await client.initialize()
            try:
                yield lambda: client.request("tools/call", {"name": "roll_dice", "arguments": ARGUMENTS})
            finally:
                await client.aclose()


@contextlib.asynccontextmanager
async def mcp_proxy_path(data_dir: Path) -> AsyncIterator[Call]:
    port = _free_port()
    command = [str(MCP_PROXY), "--port", str(port), "--pass-environment", "--", *_server_command(data_dir)]
    with _peer_process(command, port):
        async with (
            httpx.AsyncClient(timeout=30) as http,
            streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http) as (read, write, *_),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield lambda: session.call_tool("roll_dice", ARGUMENTS)


PATHS: dict[str, Callable[[Path], contextlib.AbstractAsyncContextManager[Call]]] = {
    "direct stdio (SDK client)": direct_path,
    "ttrpg-bridge tool_call (one WebSocket)": bridge_path,
    "supergateway (stdio to WebSocket)": supergateway_path,
    "mcp-proxy (stdio to streamable HTTP)": mcp_proxy_path,
}


async def sequential(call: Call, calls: int) -> dict[str, Any]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return percentiles(samples)


async def in_flight(call: Call, level: int, seconds: float) -> dict[str, Any]:
    """``level`` callers, each calling again as soon as its reply arrives, for ``seconds``."""
    samples: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds

    async def caller() -> None:
        nonlocal failures
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                await call()
            except Exception:
                failures += 1
                continue
            samples.append((time.perf_counter() - start) * 1000)

    cpu_before, started = relay_cpu_seconds(), time.monotonic()
    await asyncio.gather(*(caller() for _ in range(level)))
    elapsed = time.monotonic() - started
    cpu = relay_cpu_seconds() - cpu_before
    return percentiles(samples) | {
        "calls_per_second": round(len(samples) / elapsed, 1),
        "relay_cores": round(cpu / elapsed, 3),
        "relay_cpu_ms_per_call": round(cpu / max(len(samples), 1) * 1000, 3),
        "failures": failures,
    }


async def _run(calls: int, seconds: float, warmup: int, only: list[str] | None) -> dict[str, Any]:
    skipped = ensure_peers()
    rows: dict[str, Any] = {}
    for name, path in PATHS.items():
        if only and not any(word in name for word in only):
            continue
        peer = "supergateway" if "supergateway" in name else "mcp-proxy" if "mcp-proxy" in name else None
        if peer in skipped:
            rows[name] = {"skipped": skipped[peer]}
            continue
        with tempfile.TemporaryDirectory(prefix="ttrpg-bench-") as scratch:
            async with path(Path(scratch)) as call:
                for _ in range(warmup):
                    await call()
                row: dict[str, Any] = {"sequential": await sequential(call, calls)}
                for level in LEVELS:
                    row[f"in_flight_{level}"] = await in_flight(call, level, seconds)
                rows[name] = row
        print(
            f"{name}: seq p50 {row['sequential']['p50_ms']} ms, 32 in flight "
            f"{row['in_flight_32']['calls_per_second']}/s",
            flush=True,
        )
    return {
        "benchmark": "tool_relay",
        "tool": "roll_dice",
        "arguments": ARGUMENTS,
        "sequential_calls": calls,
        "seconds_per_level": seconds,
        "load_average": os.getloadavg(),
        **machine_info(),
        "rows": rows,
    }


def print_table(report: dict[str, Any]) -> None:
    header = f"{'path':<42}{'seq p50':>9}{'seq p99':>9}" + "".join(f"{f'{n} calls/s':>14}" for n in LEVELS)
    print(header + f"{'p99@32':>9}{'cores@32':>9}{'cpu ms/call@32':>15}")
    for name, row in report["rows"].items():
        if "skipped" in row:
            print(f"{name:<42}skipped: {row['skipped']}")
            continue
        line = f"{name:<42}{row['sequential']['p50_ms']:>9.2f}{row['sequential']['p99_ms']:>9.2f}"
        line += "".join(f"{row[f'in_flight_{n}']['calls_per_second']:>14.0f}" for n in LEVELS)
        at_32 = row["in_flight_32"]
        line += f"{at_32['p99_ms']:>9.1f}{at_32['relay_cores']:>9.2f}"
        print(line + f"{at_32['relay_cpu_ms_per_call']:>15.2f}")
    print(f"load average at the end: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=1_000, help="sequential calls per path")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per in-flight level")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--only", nargs="*", help="run only the paths whose name holds one of these words")
    args = parser.parse_args()
    report = asyncio.run(_run(args.calls, args.seconds, args.warmup, args.only))
    print_table(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
