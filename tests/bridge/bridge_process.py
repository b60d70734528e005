"""Start a real ``ttrpg-bridge serve`` on a free port, as a subprocess, for end-to-end tests.

The bridge runs exactly as in production (its CLI, uvicorn, real MCP children), so the tests
see real sockets, real signals and real process trees.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

__all__ = ["RunningBridge", "free_port", "restart", "run_bridge", "wait_ready"]

# A fresh data directory migrates two stores and indexes the compendium before it is ready.
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 45.0
_POLL = 0.1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningBridge:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def child_pids(self) -> list[int]:
        """The pids of every process below the bridge (its MCP children)."""
        try:
            return [child.pid for child in psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def terminate(self) -> int:
        """SIGTERM, then wait for a clean exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"bridge did not stop on SIGTERM; log:\n{self.log()}") from None


def wait_ready(bridge: RunningBridge, *, base_url: str | None = None, verify: Any = True) -> None:
    """Poll /readyz until it answers 200 (at most READY_TIMEOUT seconds of polls)."""
    url = f"{base_url or bridge.base_url}/readyz"
    last = ""
    for _poll in range(int(READY_TIMEOUT / _POLL)):
        if bridge.process.poll() is not None:
            raise AssertionError(f"bridge exited with {bridge.process.returncode}; log:\n{bridge.log()}")
        try:
            response = httpx.get(url, timeout=2, verify=verify)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(_POLL)
    raise AssertionError(f"bridge not ready after {READY_TIMEOUT}s ({last}); log:\n{bridge.log()}")


_STORE_ENV = ("TTRPG_DATABASE_URL", "TTRPG_REDIS_URL", "TTRPG_REDIS_KEY_PREFIX")


def _spawn(
    data_dir: Path, port: int, log_path: Path, env: dict[str, str] | None, open_files: int | None = None
) -> subprocess.Popen[bytes]:
    # The test's own database and Redis keys (a PostgreSQL run of the suite) stay; other
    # TTRPG_* settings go.
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("TTRPG_") or key in _STORE_ENV
    }
    # Test modules seat many people from 127.0.0.1; the registration throttle has its own tests.
    generous = {"TTRPG_REGISTER_PER_MINUTE_IP": "100000"}
    environment |= {"TTRPG_LOG_FORMAT": "json", "TTRPG_LOG_LEVEL": "info"} | generous | (env or {})
    command = [sys.executable, "-m", "ttrpg_mcp.bridge.cli", "--data-dir", str(data_dir)]
    if open_files is not None:  # prlimit sets the limits, then becomes the bridge (same pid)
        command = ["prlimit", f"--nofile={open_files}:{open_files}", "--", *command]
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            [*command, "serve", "--port", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=environment,
        )


def restart(bridge: RunningBridge, env: dict[str, str] | None = None) -> None:
    """Stop the bridge (SIGTERM) and start it again on the same port and data directory."""
    bridge.terminate()
    bridge.process = _spawn(bridge.data_dir, bridge.port, bridge.log_path, env)
    wait_ready(bridge)


@contextmanager
def run_bridge(
    data_dir: Path, env: dict[str, str] | None = None, *, wait: bool = True, open_files: int | None = None
) -> Iterator[RunningBridge]:
    """A running bridge on a free port; stopped (and checked for orphans) on exit.

    ``open_files`` sets its soft and hard limit on open files, which its children inherit."""
    port = free_port()
    log_path = data_dir.parent / f"bridge-{port}.log"
    bridge = RunningBridge(_spawn(data_dir, port, log_path, env, open_files), port, data_dir, log_path)
    try:
        if wait:
            wait_ready(bridge)
        yield bridge
    finally:
        children = bridge.child_pids()
        bridge.terminate()
        leftovers = [
            pid for pid in children if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
        ]
        assert not leftovers, f"MCP children outlived the bridge: {leftovers}"


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for 127.0.0.1 (openssl), for the bridge's own TLS."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
