"""Withdrawals from the command line reach a running bridge's live connections.

A real bridge serves a data directory while the real ``ttrpg-bridge`` command revokes a key,
disables or deletes an account on the same store: the bridge follows the revocation ledger and
closes that key's or user's WebSockets and SSE streams with 1008, as an HTTP revoke does, while
other people's connections carry on.
"""

from __future__ import annotations

import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from bridge_process import RunningBridge, run_bridge

from ttrpg_mcp.bridge import revocations
from ttrpg_mcp.bridge.store import BridgeStore
from ttrpg_mcp.client import BridgeClient, ConnectionClosed

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 60.0
PASSWORD = "password123"  # noqa: S105  # the test accounts' password


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("revocations") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


@pytest.fixture
async def person(bridge: RunningBridge) -> AsyncIterator[BridgeClient]:
    async with BridgeClient(bridge.base_url) as client:
        await client.register(f"p{uuid.uuid4().hex[:10]}", PASSWORD)
        yield client


async def _cli(bridge: RunningBridge, *arguments: str) -> str:
    command = [sys.executable, "-m", "ttrpg_mcp.bridge.cli", "--data-dir", str(bridge.data_dir)]
    done = await anyio.run_process([*command, *arguments], check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def _name(client: BridgeClient) -> str:
    assert client.tokens is not None
    return str(client.tokens.user["name"])


async def test_apikey_revoke_on_the_command_line_closes_the_keys_sockets_and_streams(
    bridge: RunningBridge, person: BridgeClient
) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        campaign = await person.create_campaign("CLI revoke")
        key = (await _cli(bridge, "apikey", "create", _name(person))).strip()
        key_id = next(
            line.split()[0] for line in (await _cli(bridge, "apikey", "list", _name(person))).splitlines()
        )
        async with httpx.AsyncClient(base_url=bridge.base_url) as http:
            pair = (await http.post("/api/auth/login", json={"apiKey": key})).json()
        async with BridgeClient(bridge.base_url) as other:
            await other.register(f"o{uuid.uuid4().hex[:10]}", PASSWORD)
            async with (
                person.connect(token=key, transport="websocket") as by_key,
                person.connect(token=pair["access_token"], transport="sse") as by_token,
                person.connect(transport="websocket") as by_password,
                other.connect(transport="websocket") as bystander,
            ):
                await by_key.join(campaign["id"])
                await _cli(bridge, "apikey", "revoke", key_id)
                assert await by_key.wait_closed() == (1008, revocations.KEY_REVOKED)
                assert (await by_token.wait_closed())[0] is None  # the stream ends (SSE has no code)
                assert (await by_password.heartbeat())["type"] == "ack"  # the person's own session
                assert (await bystander.heartbeat())["type"] == "ack"
        with pytest.raises(ConnectionClosed) as refused:
            async with person.connect(token=key, transport="websocket"):
                pass
    assert refused.value.close_code == 1008


@pytest.mark.parametrize(
    ("command", "reason"),
    [(("user", "disable"), revocations.ACCOUNT_DISABLED), (("user", "delete"), revocations.ACCOUNT_DELETED)],
)
async def test_user_disable_and_delete_on_the_command_line_close_every_connection_of_the_user(
    bridge: RunningBridge, person: BridgeClient, command: tuple[str, str], reason: str
) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        campaign = await person.create_campaign("CLI account")
        async with BridgeClient(bridge.base_url) as other:
            await other.register(f"o{uuid.uuid4().hex[:10]}", PASSWORD)
            async with (
                person.connect(transport="websocket") as socket,
                person.connect(transport="sse") as stream,
                other.connect(transport="websocket") as bystander,
            ):
                await socket.join(campaign["id"])
                extra = ("--yes",) if command[1] == "delete" else ()
                await _cli(bridge, *command, _name(person), *extra)
                assert await socket.wait_closed() == (1008, reason)
                assert (await stream.wait_closed())[0] is None  # the stream ends (SSE has no code)
                assert (await bystander.heartbeat())["type"] == "ack"


@pytest.mark.sqlite  # reads the bytes of bridge.db and its WAL
def test_the_ledger_keeps_no_plain_id_and_forgets_old_rows(tmp_path: Path) -> None:
    """Rows hold a digest of the subject, never its id, and the retention pass drops old ones."""
    path = tmp_path / "bridge.db"
    store = BridgeStore(f"sqlite:///{path}")
    store.migrate()
    try:
        with store.session() as db:
            subject = revocations.user_subject("usr_plainIdentifier1")
            revocations.record(db, subject, revocations.ACCOUNT_DELETED)
        assert b"usr_plainIdentifier1" not in path.read_bytes() + path.with_name("bridge.db-wal").read_bytes()
        with store.session() as db:
            assert revocations.prune(db) == 0  # recent: kept for nodes still to see it
            assert revocations.prune(db, keep_for=revocations.KEEP_FOR * 0) == 1
    finally:
        store.close()
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM revocations").fetchone()
    assert rows == (0,)
