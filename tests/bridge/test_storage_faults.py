"""Storage failures against a real bridge: every route and message answers ``storage_unavailable``,
``/readyz`` turns 503, nothing acknowledged is lost, and it all comes back by itself.

The fault is a file-size limit of 0 bytes (``RLIMIT_FSIZE``) put on the running bridge and its
MCP children from outside, as ``prlimit`` does: from then on every write to a file fails, as on
a full disk, while reads and sockets still work. Lifting the limit is space returning. The
bridge's log goes through a pipe here, since a log file could not be written either.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import anyio
import httpx
import psutil
import pytest
from bridge_process import RunningBridge, free_port, restart, run_bridge, wait_ready
from waiting import wait_until

from ttrpg_mcp.client import BridgeClient, BridgeClientError

# The faults are on the SQLite files (a file-size limit, content.db's write lock): SQLite always.
pytestmark = [pytest.mark.anyio, pytest.mark.sqlite]

RECOVERY_TIMEOUT = 60.0


def _copy(source: object, log_path: Path) -> None:
    with log_path.open("ab") as sink:
        for line in iter(source.readline, b""):  # type: ignore[attr-defined]
            sink.write(line)
            sink.flush()


@contextmanager
def _bridge_logging_to_a_pipe(data_dir: Path) -> Iterator[RunningBridge]:
    port = free_port()
    log_path = data_dir.parent / f"bridge-{port}.log"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TTRPG_")}
    environment |= {"TTRPG_LOG_FORMAT": "json", "TTRPG_LOG_LEVEL": "info"}
    command = [sys.executable, "-m", "ttrpg_mcp.bridge.cli", "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=environment,
    )
    copier = threading.Thread(target=_copy, args=(process.stdout, log_path), daemon=True)
    copier.start()
    bridge = RunningBridge(process, port, data_dir, log_path)
    try:
        wait_ready(bridge)
        yield bridge
    finally:
        _set_file_size_limit(bridge, resource.RLIM_INFINITY)
        bridge.terminate()
        copier.join(RECOVERY_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()


def _set_file_size_limit(bridge: RunningBridge, limit: int) -> None:
    """``prlimit --fsize`` on the bridge and every MCP child it runs."""
    for pid in [bridge.process.pid, *bridge.child_pids()]:
        with suppress(psutil.NoSuchProcess):
            psutil.Process(pid).rlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def _readyz(bridge: RunningBridge) -> httpx.Response:
    return httpx.get(f"{bridge.base_url}/readyz", timeout=10)


def _wait_until_ready(bridge: RunningBridge) -> float:
    """Seconds until /readyz answers 200 again."""
    started = time.monotonic()
    wait_until(lambda: _readyz(bridge).status_code == 200, "/readyz 200 again", RECOVERY_TIMEOUT)
    return time.monotonic() - started


async def test_a_store_that_cannot_write_says_so_everywhere_and_recovers_losing_nothing(
    data_dir: Path,
) -> None:
    with _bridge_logging_to_a_pipe(data_dir) as bridge:
        gm_name = f"gm-{uuid.uuid4().hex[:6]}"
        async with BridgeClient(bridge.base_url) as gm:
            await gm.register(gm_name, "password123")
            campaign_id = (await gm.create_campaign("Full disk"))["id"]
            async with gm.connect() as table:
                await table.join(campaign_id)
                await table.update_state(["custom", "before"], 1)
                hero = await table.call_tool(
                    "create_character", {"campaign_id": campaign_id, "name": "Acknowledged"}
                )

                _set_file_size_limit(bridge, 0)

                async with httpx.AsyncClient(base_url=bridge.base_url, timeout=10) as http:
                    refused = await http.post(
                        "/api/auth/register",
                        json={"name": f"late-{uuid.uuid4().hex[:6]}", "password": "password123"},
                    )
                    not_ready = await http.get("/readyz")
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"]["code"] == "storage_unavailable"
                for attempt in (
                    table.update_state(["custom", "during"], 1),
                    table.roll_dice("1d20", "lost?"),
                    table.call_tool("create_character", {"campaign_id": campaign_id, "name": "Never"}),
                ):
                    with pytest.raises(BridgeClientError) as failure:
                        await attempt
                    assert failure.value.code == "storage_unavailable", failure.value
                assert not_ready.status_code == 503
                assert not_ready.json()["checks"]["store"].startswith("writes failing")
                after_tool = (await anyio.to_thread.run_sync(_readyz, bridge)).json()["checks"]
                assert after_tool["content_store"].startswith("writes failing"), after_tool
                assert (await table.heartbeat())["type"] == "ack"  # the connection carries on

                _set_file_size_limit(bridge, resource.RLIM_INFINITY)
                recovered_in = await anyio.to_thread.run_sync(_wait_until_ready, bridge)
                print(f"\nstorage: ready again {recovered_in:.2f} s after space returned")
                await table.update_state(["custom", "after"], 1)
                await gm.register(f"late-{uuid.uuid4().hex[:6]}", "password123")

        await anyio.to_thread.run_sync(restart, bridge)
        async with BridgeClient(bridge.base_url) as checker:
            await checker.login(gm_name, "password123")
            async with checker.connect() as table:
                snapshot = await table.join(campaign_id)
                names = await table.call_tool("get_character", {"character_id": hero["id"]})
    assert snapshot["state"]["custom"] == {"before": 1, "after": 1}
    assert names["name"] == "Acknowledged"


async def test_a_locked_content_store_turns_readiness_503_until_a_content_write_succeeds(
    data_dir: Path,
) -> None:
    """Only the MCP content store fails (another process holds its write lock past the busy
    timeout): the tool call answers storage_unavailable, /readyz says which store and why, the
    bridge's own store keeps working, and readiness comes back alone when the lock is released."""
    with run_bridge(data_dir) as bridge:
        async with BridgeClient(bridge.base_url) as gm:
            await gm.register(f"gm-{uuid.uuid4().hex[:6]}", "password123")
            campaign_id = (await gm.create_campaign("Locked content"))["id"]
            async with gm.connect() as table:
                await table.join(campaign_id)
                holder = sqlite3.connect(data_dir / "content.db", isolation_level=None)
                try:
                    holder.execute("BEGIN IMMEDIATE")  # the write lock, held until released below
                    with pytest.raises(BridgeClientError) as failure:
                        await table.call_tool(
                            "create_character", {"campaign_id": campaign_id, "name": "Never"}
                        )
                    assert failure.value.code == "storage_unavailable", failure.value
                    not_ready = await anyio.to_thread.run_sync(_readyz, bridge)
                    assert not_ready.status_code == 503, not_ready.text
                    checks = not_ready.json()["checks"]
                    assert checks["content_store"] == "writes failing: database is locked", checks
                    assert checks["store"] == "ok", checks
                    await table.update_state(["custom", "bridge store"], 1)  # the bridge's own store saves
                    still = await anyio.to_thread.run_sync(_readyz, bridge)
                    assert still.status_code == 503, still.text  # held lock: the probe fails too
                finally:
                    holder.execute("ROLLBACK")
                    holder.close()
                recovered_in = await anyio.to_thread.run_sync(_wait_until_ready, bridge)
                print(f"\ncontent store: ready again {recovered_in:.2f} s after the lock was released")
                hero = await table.call_tool(
                    "create_character", {"campaign_id": campaign_id, "name": "Later"}
                )
                assert hero["name"] == "Later"
                assert _readyz(bridge).json()["checks"]["content_store"] == "ok"
