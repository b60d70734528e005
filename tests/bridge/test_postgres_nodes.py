"""Bridges sharing one PostgreSQL database: one signing key, the data-directory lock, the feed.

Every test here runs on a real PostgreSQL database of its own, whatever the rest of the suite
runs on; Redis is named (``redis_url``) where a setting needs it, never connected to.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from sqlalchemy import func, select

from pg_databases import DEFAULT_SERVER, fresh_database, server_url
from ttrpg_mcp.bridge.auth.service import AuthService
from ttrpg_mcp.bridge.content_notify import PostgresChangeListener
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.startup import StartupError, prepare
from ttrpg_mcp.bridge.store import BridgeStore
from ttrpg_mcp.bridge.store.models import SigningKey
from ttrpg_mcp.server import campaigns
from ttrpg_mcp.server.store.database import Database

pytestmark = pytest.mark.anyio

REDIS = "redis://127.0.0.1:6379/0"
WAIT = 30.0


@pytest.fixture(autouse=True)
def _urls_from_the_test_only(database_url: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each node here is given its URLs by its test; none may come from the environment that a
    run on PostgreSQL + Redis sets for every test (``database_url``, which this one follows)."""
    for name in ("TTRPG_DATABASE_URL", "TTRPG_REDIS_URL", "TTRPG_REDIS_KEY_PREFIX"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, whichever database the rest of the suite runs on."""
    with fresh_database(server_url() or DEFAULT_SERVER) as url:
        yield url


def _node(tmp_path: Path, name: str, **settings: object) -> BridgeSettings:
    data_dir = tmp_path / name
    data_dir.mkdir(exist_ok=True)
    return BridgeSettings(data_dir=data_dir, port=0, **settings)  # type: ignore[arg-type]


async def test_a_token_issued_by_one_node_is_accepted_by_another(postgres_url: str, tmp_path: Path) -> None:
    """Two nodes on one database, no jwt_secret: one key, kept in the database, no key file."""
    first = _node(tmp_path, "a", database_url=postgres_url)
    second = _node(tmp_path, "b", database_url=postgres_url)
    store_a, store_b = BridgeStore(first.resolved_database_url), BridgeStore(second.resolved_database_url)
    try:
        node_a = AuthService.from_settings(first, store_a)
        node_b = AuthService.from_settings(second, store_b)
        pair = await node_a.register("mira", "password123")
        user = await node_b.verify_access(pair.access_token)
        assert user.name == "mira"
        renewed = await node_b.refresh(pair.refresh_token)  # rotation on the other node
        assert (await node_a.verify_access(renewed.access_token)).name == "mira"
        keys = await store_a.run(
            lambda db: db.scalar(select(func.count()).select_from(SigningKey)), readonly=True
        )
        assert keys == 1
        assert not (first.resolved_data_dir / "jwt-secret").exists()
        assert not (second.resolved_data_dir / "jwt-secret").exists()
    finally:
        store_a.close()
        store_b.close()


def test_the_url_may_be_given_as_plain_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """postgresql:// in TTRPG_DATABASE_URL is read as psycopg 3; the content store shares it."""
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    settings = _node(tmp_path, "a", database_url=plain)
    assert settings.database_url == postgres_url
    assert settings.content_store == postgres_url
    assert settings.mcp_environment == {"TTRPG_DATABASE_URL": postgres_url}
    third_party = _node(tmp_path, "b", database_url=plain, mcp={"command": ["some-mcp-server"]})
    assert third_party.mcp_environment == {}  # never handed to a server we did not write
    alone = _node(tmp_path, "c")
    assert alone.content_store == alone.resolved_data_dir / "content.db"


def test_nodes_with_postgresql_and_redis_share_a_data_directory(postgres_url: str, tmp_path: Path) -> None:
    """Both URLs: many nodes start on one data directory; a self-contained bridge then refuses."""
    node = _node(tmp_path, "shared", database_url=postgres_url, redis_url=REDIS)
    first, second = prepare(node), prepare(node)
    try:
        for missing in ({"database_url": postgres_url}, {"redis_url": REDIS}, {}):
            with pytest.raises(StartupError, match="in use by other ttrpg-bridge nodes"):
                prepare(_node(tmp_path, "shared", **missing)).close()
    finally:
        first.close()
        second.close()
    alone = prepare(_node(tmp_path, "shared"))
    try:
        with pytest.raises(StartupError, match=r"in use by another ttrpg-bridge \(pid"):
            prepare(node).close()
    finally:
        alone.close()


async def test_the_change_listener_wakes_when_a_change_commits(postgres_url: str, data_dir: Path) -> None:
    """LISTEN/NOTIFY with no polling: a committed change wakes the feed at its id."""
    content = Database.open(data_dir, postgres_url)
    listener = PostgresChangeListener(postgres_url, safety_poll=3600)  # no poll: only NOTIFY wakes it
    try:
        newest = await listener.newest()

        def rolled_back() -> None:
            with content.write() as db:
                campaigns.create_campaign(db, name="Never")
                db.flush()
                raise RuntimeError("undo")

        def committed() -> None:
            with content.write() as db:
                campaigns.create_campaign(db, name="Kept")

        with pytest.raises(RuntimeError):
            await anyio.to_thread.run_sync(rolled_back)
        woke: list[int] = []
        done = anyio.Event()

        async def wait() -> None:
            woke.append(await listener.wait_past(newest))
            done.set()

        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await anyio.to_thread.run_sync(committed)
            with anyio.fail_after(WAIT):
                await done.wait()
        assert woke[0] > newest
        assert woke[0] == await listener.newest()
    finally:
        listener.close()
        content.close()
