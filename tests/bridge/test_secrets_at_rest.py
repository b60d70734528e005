"""Invite codes and API keys are kept only as hashes, and an older store is converted in place."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from importlib import resources
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from ttrpg_mcp.bridge import campaigns
from ttrpg_mcp.bridge.auth import users
from ttrpg_mcp.bridge.auth.digests import secret_digest
from ttrpg_mcp.bridge.store import BridgeStore, utcnow


def _upgrade(url: str, revision: str) -> None:
    engine = create_engine(url)
    with resources.as_file(resources.files("ttrpg_mcp.bridge.store") / "migrations") as script_dir:
        config = Config()
        config.set_main_option("script_location", str(script_dir))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    engine.dispose()


@pytest.mark.sqlite  # reads the bytes of bridge.db and its WAL
def test_invite_codes_from_before_hashing_still_work_and_are_no_longer_in_the_file(data_dir: Path) -> None:
    """Migrating an older store replaces each plaintext code by its digest; the code still seats."""
    path = data_dir / "bridge.db"
    url = f"sqlite:///{path}"
    _upgrade(url, "0005_admin_users")
    later = (utcnow() + timedelta(days=1)).replace(tzinfo=None).isoformat(sep=" ")
    now = utcnow().replace(tzinfo=None).isoformat(sep=" ")
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO users (id, name, name_key, display_name, password_hash, disabled, created_at,"
            " is_admin) VALUES ('usr_gm', 'gm', 'gm', 'gm', 'x', 0, ?, 1), "
            "('usr_ann', 'ann', 'ann', 'ann', 'x', 0, ?, 0)",
            (now, now),
        )
        connection.execute(
            "INSERT INTO campaigns (id, name, created_at, archived, epoch, last_seq)"
            " VALUES ('camp_1', 'Old', ?, 0, 'e1', 0)",
            (now,),
        )
        connection.execute(
            "INSERT INTO campaign_invites (code, campaign_id, role, created_at, expires_at, uses_left)"
            " VALUES ('old-campaign-code-1234', 'camp_1', 'player', ?, ?, 1)",
            (now, later),
        )
        connection.execute(
            "INSERT INTO registration_invites (code, created_at, expires_at, uses_left)"
            " VALUES ('old-registration-code-1234', ?, ?, 1)",
            (now, later),
        )
    connection.close()
    store = BridgeStore(url)
    try:
        store.migrate()
        with store.session() as db:
            _summary, role = campaigns.join_with_code(db, "old-campaign-code-1234", "usr_ann")
            users.consume_invite(db, "old-registration-code-1234")
        assert role == "player"
    finally:
        store.close()
    with sqlite3.connect(path) as connection:
        stored = connection.execute("SELECT code_hash FROM campaign_invites").fetchall()
    connection.close()
    assert stored == [(secret_digest("old-campaign-code-1234"),)]
    raw = path.read_bytes() + (
        path.with_name("bridge.db-wal").read_bytes() if path.with_name("bridge.db-wal").exists() else b""
    )
    assert b"old-campaign-code-1234" not in raw
