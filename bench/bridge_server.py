"""Start a real ``ttrpg-bridge serve`` on a free port for a benchmark, and stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

__all__ = ["bridge_process", "cpu_seconds", "running_bridge"]

# A fresh data directory migrates two stores and indexes the compendium before it is ready.
READY_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bridge_process() -> psutil.Process:
    """The bridge this process started (for its CPU time or memory)."""
    for child in psutil.Process().children():
        if "ttrpg_mcp.bridge.cli" in " ".join(child.cmdline()):
            return child
    raise SystemExit("no bridge process found")


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU of ``process`` so far (not its children's)."""
    times = process.cpu_times()
    return float(times.user + times.system)


@contextmanager
def running_bridge(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """The base URL of a ready bridge on ``data_dir``; SIGTERM and wait on exit."""
    port = _free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TTRPG_")}
    # Benchmarks measure the bridge at full speed, not its abuse limits.
    unthrottled = {
        "TTRPG_RATE_MESSAGES_PER_SECOND": "100000",
        "TTRPG_RATE_MESSAGES_BURST": "100000",
        "TTRPG_REGISTER_PER_MINUTE_IP": "100000",
    }
    environment |= {"TTRPG_LOG_LEVEL": "warning"} | unthrottled | (env or {})
    command = [sys.executable, "-m", "ttrpg_mcp.bridge.cli", "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port)], env=environment, stderr=subprocess.DEVNULL
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the bridge did not become ready")
            time.sleep(0.2)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
