"""Several nodes: 100-seat dice fan-out on 1 node vs 2 nodes, and how fast a killed node's seats resume.

Run with ``make bench`` (or ``python bench/multinode.py``). Every node is a real ``ttrpg-bridge
serve``; the several-node runs share a fresh PostgreSQL database (127.0.0.1:5432) and a
``redis-server`` this script starts on a free port.

Fan-out: as ``table_fanout.py`` (a GM and 99 players at one table, 20 of them rolling public
dice at rising rates, each seat timing send to receipt), in three set-ups: one self-contained
node (SQLite, in-process fan-out), one node on PostgreSQL + Redis, and two nodes on PostgreSQL
+ Redis with the seats split between them (even seats on the first, odd on the second).

Failover: two nodes, a GM rolling on the first and 20 players seated on the second. The second
is killed with SIGKILL while rolls go on; each player reconnects to the first with
``session_attach`` and its last ``seq``. Measured: the time from the kill to each player's
resumed seat, and, once the GM rolls a last marker, events lost (a seq the GM saw that a player
never got) and doubled (a seq a player got twice). Writes ``bench/results/multinode.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "bridge"))
from cluster import cluster_env, postgres_database, redis_server

from table_fanout import P99_BOUND_MS, Collector, _children_cpu, _cuts, _steps
from timing import close_seats, machine_info
from ttrpg_mcp.client import BridgeClient

RESULTS = Path(__file__).parent / "results" / "multinode.json"
READY_TIMEOUT = 120.0
UNTHROTTLED = {
    "TTRPG_RATE_MESSAGES_PER_SECOND": "100000",
    "TTRPG_RATE_MESSAGES_BURST": "100000",
    "TTRPG_REGISTER_PER_MINUTE_IP": "100000",
    "TTRPG_LOGIN_PER_MINUTE_IP": "100000",
    "TTRPG_MAX_PARTICIPANTS_PER_CAMPAIGN": "200",
}


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def node(data_dir: Path, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A ready node's base URL and process; SIGTERM on exit (if still alive)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TTRPG_")}
    environment |= {"TTRPG_LOG_LEVEL": "warning"} | UNTHROTTLED | env
    command = [sys.executable, "-m", "ttrpg_mcp.bridge.cli", "--data-dir", str(data_dir), "serve"]
    process = subprocess.Popen([*command, "--port", str(port)], env=environment, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("a node did not become ready")
            time.sleep(0.2)
        yield base_url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _seat_everyone(urls: list[str], seats: int) -> tuple[str, list[BridgeClient]]:
    """Register ``seats`` people through the first node; the first is the GM of a new table."""
    clients = []
    for index in range(seats):
        client = BridgeClient(urls[0])
        await client.register(f"seat{index}-{uuid.uuid4().hex[:6]}", "benchmark-password")
        clients.append(client)
    gm = clients[0]
    campaign_id = (await gm.create_campaign("Fan-out"))["id"]
    for client in clients[1:]:
        await client.join_campaign((await gm.create_invite(campaign_id, role="player"))["code"])
    return campaign_id, clients


async def fanout(urls: list[str], seats: int, senders: int, seconds: float) -> list[Any]:
    """The dice fan-out steps with seat ``i`` on node ``i % len(urls)``."""
    collector = Collector()
    campaign_id, clients = await _seat_everyone(urls, seats)
    sockets = [await _open(urls[i % len(urls)], client, campaign_id) for i, client in enumerate(clients)]

    async def receive(ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "dice_roll":
                    collector.seen(str(message["data"].get("purpose", "")))

    readers = [asyncio.create_task(receive(ws)) for ws in sockets]
    await asyncio.sleep(2.0)  # the joins' own fan-out settles

    async def send(index: int, purpose: str) -> None:
        data = {"expression": "1d20+5", "purpose": purpose}
        await sockets[index].send(json.dumps({"type": "dice_roll", "id": uuid.uuid4().hex, "data": data}))

    try:
        return await _steps(send, senders, collector, seconds, _children_cpu)
    finally:
        await close_seats(readers, sockets)
        await asyncio.gather(*(client.aclose() for client in clients))


async def _open(base_url: str, client: BridgeClient, campaign_id: str | None) -> Any:
    """A raw WebSocket seat (token and table in the query), past its first message."""
    assert client.tokens is not None
    url = f"{base_url.replace('http://', 'ws://')}/ws?token={client.tokens.access_token}"
    ws = await websockets.connect(url + (f"&campaign_id={campaign_id}" if campaign_id else ""), max_size=None)
    await ws.recv()
    return ws


async def _read(ws: Any, into: list[int], until: str | None = None) -> None:
    """Record the seq of every event until the socket ends (or a roll whose purpose is ``until``)."""
    with contextlib.suppress(websockets.ConnectionClosed):
        async for raw in ws:
            message = json.loads(raw)
            if isinstance(message.get("seq"), int):
                into.append(message["seq"])
            if until and message.get("type") == "dice_roll" and message["data"].get("purpose") == until:
                return


async def _resume(
    survivor: str, client: BridgeClient, campaign_id: str, seen: list[int], killed: float
) -> tuple[float, Any]:
    """Reconnect to the survivor and attach with the last seq seen; ms from the kill, and the socket."""
    ws = await _open(survivor, client, None)
    attach = {
        "type": "session_attach",
        "id": "attach",
        "campaign_id": campaign_id,
        "last_seq": max(seen, default=0),
    }
    await ws.send(json.dumps(attach))
    while True:
        message = json.loads(await ws.recv())
        if isinstance(message.get("seq"), int):
            seen.append(message["seq"])
        if message.get("request_id") == "attach":
            return (time.perf_counter() - killed) * 1000, ws


async def failover(
    survivor: str, doomed: str, process: subprocess.Popen[bytes], players: int
) -> dict[str, Any]:
    """Kill the node under ``players`` seats mid-play; time their resumption on the survivor."""
    campaign_id, clients = await _seat_everyone([survivor], players + 1)
    gm_ws = await _open(survivor, clients[0], campaign_id)
    seen: list[list[int]] = [[] for _ in range(players)]
    gm_seqs: list[int] = []
    sockets = [await _open(doomed, client, campaign_id) for client in clients[1:]]
    readers = [asyncio.create_task(_read(ws, seen[index])) for index, ws in enumerate(sockets)]
    gm_reader = asyncio.create_task(_read(gm_ws, gm_seqs, until="end"))
    rolling = asyncio.Event()
    rolling.set()

    async def roll() -> None:
        count = 0
        while rolling.is_set():
            data = {"expression": "1d20", "purpose": f"r{count}"}
            await gm_ws.send(json.dumps({"type": "dice_roll", "id": uuid.uuid4().hex, "data": data}))
            count += 1
            await asyncio.sleep(0.02)  # 50 rolls a second

    roller = asyncio.create_task(roll())
    await asyncio.sleep(2.0)
    killed = time.perf_counter()
    process.send_signal(signal.SIGKILL)
    await asyncio.gather(*readers, return_exceptions=True)
    resumed = await asyncio.gather(
        *(_resume(survivor, clients[i + 1], campaign_id, seen[i], killed) for i in range(players))
    )
    await asyncio.sleep(1.0)
    rolling.clear()
    await roller
    marker = {"type": "dice_roll", "id": "end", "data": {"expression": "1d4", "purpose": "end"}}
    await gm_ws.send(json.dumps(marker))
    await gm_reader
    await asyncio.gather(*(_read(ws, seen[index], until="end") for index, (_, ws) in enumerate(resumed)))
    for ws in [gm_ws, *(ws for _, ws in resumed)]:
        await ws.close()
    await asyncio.gather(*(client.aclose() for client in clients))
    # Each player is owed every event from the first it got (it sat down later than some).
    owed = [{seq for seq in gm_seqs if seq >= min(s)} if s else set(gm_seqs) for s in seen]
    times = [ms for ms, _ in resumed]
    return {
        "players_on_killed_node": players,
        "events_during_run": len(gm_seqs),
        "lost": sum(len(due - set(s)) for due, s in zip(owed, seen, strict=True)),
        "doubled": sum(len(s) - len(set(s)) for s in seen),
        "resume_ms": _cuts(times) | {"max_ms": round(max(times), 1)},
    }


async def _run(seats: int, senders: int, seconds: float, players: int, *, fanout_too: bool) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ttrpg-multinode-") as scratch:
        folder = Path(scratch)
        if fanout_too:
            await _fanouts(folder, rows, seats, senders, seconds)
        with postgres_database() as database_url, redis_server(folder) as redis:
            env = cluster_env(database_url, redis.url)
            with (
                node(folder / "survivor", env) as (survivor, _),
                node(folder / "doomed", env) as (doomed, process),
            ):
                print("failover", flush=True)
                failed_over = await failover(survivor, doomed, process, players)
    return {
        "benchmark": "multinode",
        "seats": seats,
        "senders": senders,
        "seconds_per_step": seconds,
        "p99_bound_ms": P99_BOUND_MS,
        "load_average": os.getloadavg(),
        **machine_info(),
        "rows": rows,
        "failover": failed_over,
    }


async def _fanouts(folder: Path, rows: dict[str, Any], seats: int, senders: int, seconds: float) -> None:
    """The fan-out steps on 1 node alone, 1 node on PostgreSQL + Redis, and 2 nodes."""
    with node(folder / "alone", {}) as (url, _process):
        print("1 node, SQLite, in-process fan-out", flush=True)
        rows["1 node (SQLite, in-process)"] = await fanout([url], seats, senders, seconds)
    for count in (1, 2):
        with postgres_database() as database_url, redis_server(folder) as redis:
            env = cluster_env(database_url, redis.url)
            with contextlib.ExitStack() as stack:
                urls = [stack.enter_context(node(folder / f"n{count}-{i}", env))[0] for i in range(count)]
                print(f"{count} node(s), PostgreSQL + Redis", flush=True)
                rows[f"{count} node(s) (PostgreSQL + Redis)"] = await fanout(urls, seats, senders, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seats", type=int, default=100)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--players", type=int, default=20, help="seats on the node that is killed")
    parser.add_argument("--failover-only", action="store_true", help="keep the fan-out rows already written")
    args = parser.parse_args()
    report = asyncio.run(
        _run(args.seats, args.senders, args.seconds, args.players, fanout_too=not args.failover_only)
    )
    if args.failover_only and RESULTS.exists():
        report["rows"] = json.loads(RESULTS.read_text())["rows"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    for name, rows in report["rows"].items():
        best = max(
            (r for r in rows if r["p99_ms"] <= P99_BOUND_MS),
            key=lambda r: r["deliveries_per_second"],
            default=None,
        )
        print(f"{name}: best under p99 {P99_BOUND_MS} ms: {best}")
    print(f"failover: {report['failover']}")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
