"""Start-up faults: each ends the bridge at once, non-zero, with one sentence naming what to fix.

And one bridge per data directory: a second one on the same directory refuses to start (naming
the running one's pid and port) until the first is gone, even when it died of ``kill -9``.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psutil
import pytest
from bridge_process import free_port, run_bridge, wait_ready

# Start-up checks run before any child or migration: a refusal comes within seconds, but the
# machine is shared, so the bound is generous.
REFUSAL_TIMEOUT = 60.0


def _start(
    data_dir: Path, port: int, *, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TTRPG_")}
    environment |= {"TTRPG_LOG_FORMAT": "json"}
    command = [sys.executable, "-m", "ttrpg_mcp.bridge.cli", "--data-dir", str(data_dir), "serve"]
    return subprocess.run(  # our own CLI
        [*command, "--port", str(port)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=REFUSAL_TIMEOUT,
        preexec_fn=preexec,  # only sets a resource limit
        check=False,
    )


def _one_sentence(result: subprocess.CompletedProcess[str]) -> str:
    """The refusal: non-zero, one line on stderr, no traceback."""
    assert result.returncode != 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@contextmanager
def _listening() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_busy_port_is_named_and_checked_before_anything_else(data_dir: Path) -> None:
    """The port comes first: even a garbage store is not reached (nor is anything migrated)."""
    (data_dir / "bridge.db").write_bytes(b"garbage " * 100)
    with _listening() as port:
        message = _one_sentence(_start(data_dir, port))
    assert f"port {port} on 127.0.0.1 is already in use" in message
    assert "--port" in message
    assert sorted(p.name for p in data_dir.iterdir()) == ["bridge.db"]


@pytest.mark.parametrize("name", ["bridge.db", "content.db"])
def test_a_garbage_database_file_is_named(data_dir: Path, name: str) -> None:
    (data_dir / name).write_bytes(b"this is not a database " * 200)
    message = _one_sentence(_start(data_dir, free_port()))
    assert f"{data_dir / name} is not a usable SQLite database" in message
    assert "backup" in message


def test_a_data_directory_that_is_a_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_text("a file")
    message = _one_sentence(_start(path, free_port()))
    assert f"data directory {path} is a file, not a directory" in message


def test_a_data_directory_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    path = tmp_path / "blocker" / "data"
    message = _one_sentence(_start(path, free_port()))
    assert f"data directory {path} does not exist and cannot be created" in message


@contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """``path`` made read-only: by its mode for a user, by a read-only mount for root."""
    if os.geteuid() != 0:
        path.chmod(0o500)
        try:
            yield
        finally:
            path.chmod(0o700)
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_read_only_data_directory_is_named(data_dir: Path) -> None:
    with _read_only(data_dir):
        message = _one_sentence(_start(data_dir, free_port()))
    assert f"data directory {data_dir} is not writable" in message


def test_a_hard_open_files_limit_under_1024_is_named(data_dir: Path) -> None:
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))

    message = _one_sentence(_start(data_dir, free_port(), preexec=low_limit))
    assert "the hard limit on open files is 512, below the 1024" in message


@pytest.mark.sqlite  # one self-contained bridge's exclusive lock; nodes share theirs by design
def test_a_second_bridge_on_one_data_directory_refuses_until_the_first_is_gone(data_dir: Path) -> None:
    """Named with the running bridge's pid and port; kill -9 frees the lock; SIGTERM exits 0."""
    with run_bridge(data_dir) as first:
        message = _one_sentence(_start(data_dir, free_port()))
        assert f"data directory {data_dir} is in use by another ttrpg-bridge" in message
        assert f"pid {first.process.pid}, port {first.port}" in message
        children = first.child_pids()
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        for pid in children:  # a bridge killed with -9 cannot stop its children; they follow
            with suppress(psutil.NoSuchProcess):
                psutil.Process(pid).wait(REFUSAL_TIMEOUT)
        with run_bridge(data_dir) as second:
            assert httpx.get(f"{second.base_url}/readyz", timeout=10).status_code == 200
            assert second.terminate() == 0


def test_two_bridges_on_two_data_directories_both_run(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with run_bridge(tmp_path / "a") as first, run_bridge(tmp_path / "b") as second:
        wait_ready(first)
        wait_ready(second)
