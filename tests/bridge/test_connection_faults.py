"""A flood of idle and half-sent connections against a real bridge: connections over the
per-address cap are refused at once with 503 ``too_many_connections``, the admitted ones are
closed once ``header_timeout`` passes without complete headers, and meanwhile the bridge keeps
answering other addresses, keeps its MCP children and can respawn them."""

from __future__ import annotations

import json
import os
import resource
import selectors
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bridge_process import RunningBridge, run_bridge
from waiting import wait_until

FLOOD = 600
PER_ADDRESS = 300
HEADER_TIMEOUT = 2.0
# Every admitted socket must be closed by then: the timeout plus a loaded machine's slack.
CLOSE_DEADLINE = HEADER_TIMEOUT + 30.0
OTHER_ADDRESS = "127.0.0.2"  # the whole 127/8 is loopback on Linux: another client address


@pytest.fixture
def bridge(data_dir: Path) -> Iterator[RunningBridge]:
    env = {
        "TTRPG_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "TTRPG_MAX_CONNECTIONS_PER_ADDRESS": str(PER_ADDRESS),
    }
    with run_bridge(data_dir, env) as running:
        yield running


def _other_address(bridge: RunningBridge) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=OTHER_ADDRESS)
    return httpx.Client(base_url=bridge.base_url, transport=transport, timeout=10)


def _read_until_closed(sockets: list[socket.socket]) -> tuple[dict[socket.socket, bytes], float]:
    """What each socket received before the bridge closed it; seconds until the last closed."""
    started = time.monotonic()
    received = dict.fromkeys(sockets, b"")
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        open_count = len(sockets)
        while open_count:
            assert time.monotonic() - started < CLOSE_DEADLINE, f"{open_count} sockets still open"
            for key, _events in selector.select(timeout=0.5):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    received[sock] += chunk
                    continue
                selector.unregister(sock)
                open_count -= 1
    return received, time.monotonic() - started


def test_an_idle_socket_flood_is_capped_timed_out_and_harmless(bridge: RunningBridge) -> None:
    sockets: list[socket.socket] = []
    try:
        for index in range(FLOOD):
            sock = socket.create_connection(("127.0.0.1", bridge.port), timeout=10)
            if index % 2:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bridge\r\nX-Partial: ")  # never finished
            sockets.append(sock)
        # The flood holds its address's every slot: another address is served all the same.
        with _other_address(bridge) as other:
            assert other.get("/healthz").status_code == 200
            assert other.get("/readyz").status_code == 200
        received, closed_after = _read_until_closed(sockets)
    finally:
        for sock in sockets:
            sock.close()
    refused = [data for data in received.values() if data.startswith(b"HTTP/1.1 503")]
    assert len(refused) == FLOOD - PER_ADDRESS
    body = json.loads(refused[0].split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "too_many_connections"
    timed_out = [data for data in received.values() if not data]
    assert len(timed_out) == PER_ADDRESS
    print(f"\nflood: {FLOOD} sockets, {len(refused)} refused, the rest closed after {closed_after:.1f} s")

    # Afterwards: the address is served again, and a killed MCP child is replaced.
    with httpx.Client(base_url=bridge.base_url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        victim = bridge.child_pids()[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: (
                victim not in bridge.child_pids()
                and client.get("/readyz").json()["mcp_children"]["ready"] >= 2
            ),
            "the killed MCP child replaced",
        )


LOW_OPEN_FILES = 1100  # just above the bridge's minimum of 1024
FD_RESERVE = 256


def test_under_a_low_open_files_limit_the_cap_refuses_and_the_reserve_keeps_the_bridge_whole(
    data_dir: Path,
) -> None:
    """Soft and hard RLIMIT_NOFILE at 1,100: connections beyond the limit less the reserve are
    refused with 503, while a connection already admitted still gets /healthz and /readyz, a
    killed MCP child is respawned (its pipes come from the reserve) and only that kill counts
    as a crash."""
    cap = LOW_OPEN_FILES - FD_RESERVE
    env = {"TTRPG_HEADER_TIMEOUT": "600", "TTRPG_MAX_CONNECTIONS_PER_ADDRESS": "100000"}
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this test's own sockets
    sockets: list[socket.socket] = []
    with (
        run_bridge(data_dir, env, open_files=LOW_OPEN_FILES) as bridge,
        httpx.Client(base_url=bridge.base_url, timeout=30) as admitted,
    ):
        assert admitted.get("/healthz").status_code == 200  # one admitted keep-alive connection
        try:
            flood = cap + 100
            for _index in range(flood):
                sockets.append(socket.create_connection(("127.0.0.1", bridge.port), timeout=10))
            answers = _Answers(sockets)
            refused = wait_until(
                lambda: answers.at_least(flood - (cap - 1)), f"{flood - (cap - 1)} connections refused"
            )
            assert admitted.get("/healthz").json() == {"status": "ok"}
            assert admitted.get("/readyz").status_code == 200
            victim = bridge.child_pids()[0]
            os.kill(victim, signal.SIGKILL)
            wait_until(
                lambda: (
                    victim not in bridge.child_pids()
                    and admitted.get("/readyz").json()["mcp_children"]["ready"] >= 2
                ),
                "the killed MCP child replaced under the low limit",
            )
            ready = admitted.get("/readyz").json()
            # Nothing arrived on the admitted sockets meanwhile: no further refusals.
            assert answers.poll() == 0
        finally:
            for sock in sockets:
                sock.close()
    body = json.loads(refused[0].split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "too_many_connections"
    assert ready["mcp_breaker"]["recent_crashes"] == 1, ready  # the kill, and no failed spawn
    assert ready["mcp_breaker"]["state"] == "closed"
    assert all(answer.startswith(b"HTTP/1.1 503") for answer in refused), refused[:3]
    assert str(cap) in body["error"]["message"]
    print(f"\nlow open-files limit: cap {cap}, {len(refused)} refused, child respawned")


class _Answers:
    """What the bridge wrote to each of many idle sockets; each is read once it has something."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        self.sockets = sockets
        self.received: dict[socket.socket, bytes] = {}

    def poll(self) -> int:
        """Read every socket that has something now; returns how many answered since the last poll."""
        before = len(self.received)
        with selectors.DefaultSelector() as selector:
            for sock in self.sockets:
                if sock not in self.received:
                    selector.register(sock, selectors.EVENT_READ)
            if selector.get_map():
                for key, _events in selector.select(timeout=0):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    self.received[sock] = sock.recv(65536)
        return len(self.received) - before

    def at_least(self, count: int) -> list[bytes] | None:
        self.poll()
        return list(self.received.values()) if len(self.received) >= count else None
