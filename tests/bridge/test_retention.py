"""Retention settings on a real SQLite store: what the pass removes, keeps, and deletes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge import audit, campaigns, retention
from ttrpg_mcp.bridge.auth import agent_grants, users
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.store import AuditEntry, BridgeStore, CanvasStroke, DiceLogEntry, User, utcnow
from ttrpg_mcp.bridge.store.models import AgentGrant, OAuthClient, OAuthToken

LONG_AGO = timedelta(days=400)


@pytest.fixture
def store(data_dir: Path) -> Iterator[BridgeStore]:
    store = BridgeStore(bridge_store_url(data_dir))
    store.migrate()
    yield store
    store.close()


def _fill(store: BridgeStore) -> None:
    """A GM, a long-disabled account and a recently disabled one; old and new audit, dice and strokes."""
    now = utcnow()
    with store.session() as db:
        gm = users.add_user_with_hash(db, "gm", "not-a-hash")
        gone = users.add_user_with_hash(db, "gone", "not-a-hash")
        resting = users.add_user_with_hash(db, "resting", "not-a-hash")
        gone.disabled = resting.disabled = True
        gone.created_at = now - LONG_AGO
        campaigns.create_campaign(db, "camp_1", "Old table", gm.id)
        for age in (LONG_AGO, timedelta(0)):
            audit.record(db, campaign_id=None, user_id=gm.id, action="sign_in", target=None, result="ok")
            db.flush()
            db.execute(
                AuditEntry.__table__.update()
                .where(AuditEntry.id == db.scalar(select(func.max(AuditEntry.id))))
                .values(created_at=now - age)
            )
            db.add(
                DiceLogEntry(
                    campaign_id="camp_1",
                    user_id=gm.id,
                    player_name="gm",
                    expression="1d20",
                    visibility="public",
                    result={"total": 3},
                    created_at=now - age,
                )
            )
        for index, erased in enumerate((now - LONG_AGO, now, None)):
            db.add(
                CanvasStroke(
                    id=f"stk_{index}", campaign_id="camp_1", ordinal=index, stroke={}, erased_at=erased
                )
            )


def test_a_pass_drops_what_is_older_than_its_setting_and_deletes_long_disabled_accounts(
    store: BridgeStore, data_dir: Path
) -> None:
    """Default settings: old audit, old rolls, long-erased strokes and a long-disabled account go."""
    _fill(store)
    removed = retention.run_pass(store, BridgeSettings(data_dir=data_dir))
    assert removed["audit_entries"] == 1
    assert removed["dice_rolls"] == 1
    assert removed["erased_strokes"] == 1
    assert removed["disabled_accounts"] == 1
    with store.session(readonly=True) as db:
        assert sorted(db.scalars(select(User.name))) == ["gm", "resting"]
        assert sorted(db.scalars(select(CanvasStroke.id))) == ["stk_1", "stk_2"]
        assert db.scalar(select(func.count()).select_from(DiceLogEntry)) == 1
        deleted = db.scalars(select(AuditEntry.detail).where(AuditEntry.action == "account_deleted")).all()
        assert deleted == [{"by": "retention"}]


def _register_clients(store: BridgeStore) -> None:
    """OAuth clients in every state the purge tells apart, each registered long ago but ``fresh``."""
    now = utcnow()
    with store.session() as db:
        owner = users.add_user_with_hash(db, "owner", "not-a-hash")
        campaigns.create_campaign(db, "camp_oauth", "Agents' table", owner.id)
        for name in ("fresh", "idle", "consented", "revoked_long_ago", "revoked_lately", "waiting"):
            agent_grants.register_client(db, {"client_id": name, "client_name": name, "redirect_uris": []})
        db.flush()
        for client in db.scalars(select(OAuthClient).where(OAuthClient.client_id != "fresh")):
            client.created_at = now - LONG_AGO
        for client_id, revoked_at in (
            ("consented", None),
            ("revoked_long_ago", now - LONG_AGO),
            ("revoked_lately", now - timedelta(days=1)),
        ):
            db.add(
                AgentGrant(
                    id=f"grant_{client_id}",
                    client_id=client_id,
                    user_id=owner.id,
                    campaign_id="camp_oauth",
                    role="player",
                    scopes=[],
                    created_at=now - LONG_AGO,
                    revoked_at=revoked_at,
                )
            )
        db.flush()
        db.add(
            OAuthToken(
                token_hash="0" * 64,
                grant_id="grant_revoked_long_ago",
                kind="refresh",
                expires_at=now + timedelta(days=1),
            )
        )
        agent_grants.start_request(
            db,
            client_id="waiting",
            redirect_uri="http://127.0.0.1/callback",
            redirect_uri_explicit=True,
            code_challenge="x" * 43,
            state=None,
            scopes=[],
            resource=None,
        )


def test_oauth_clients_without_a_live_grant_go_after_the_setting(store: BridgeStore, data_dir: Path) -> None:
    """Unused for 400 days (never consented to, or its only grant revoked then): deleted, grants too.

    A live grant, a revocation within the window, a pending consent or a recent registration
    keeps a client.
    """
    _register_clients(store)
    removed = retention.run_pass(store, BridgeSettings(data_dir=data_dir))
    assert removed["oauth_clients"] == 2
    with store.session(readonly=True) as db:
        assert sorted(db.scalars(select(OAuthClient.client_id))) == [
            "consented",
            "fresh",
            "revoked_lately",
            "waiting",
        ]
        assert sorted(db.scalars(select(AgentGrant.id))) == ["grant_consented", "grant_revoked_lately"]
        assert db.scalar(select(func.count()).select_from(OAuthToken)) == 0
    settings = BridgeSettings(data_dir=data_dir, unused_oauth_client_retention_days=0)
    assert "oauth_clients" not in retention.run_pass(store, settings)


def test_zero_keeps_everything_forever(store: BridgeStore, data_dir: Path) -> None:
    """Each setting at 0 turns its part of the pass off."""
    _fill(store)
    settings = BridgeSettings(
        data_dir=data_dir,
        audit_retention_days=0,
        erased_stroke_retention_days=0,
        dice_log_retention_days=0,
        disabled_account_retention_days=0,
        unused_oauth_client_retention_days=0,
    )
    removed = retention.run_pass(store, settings)
    assert {key: removed[key] for key in ("events", "request_replies")} == {"events": 0, "request_replies": 0}
    assert set(removed) == {"events", "request_replies"}


def test_the_prune_command_runs_a_pass_and_prints_what_it_removed(store: BridgeStore, data_dir: Path) -> None:
    """ttrpg-bridge prune applies the settings of its data directory at once."""
    _fill(store)
    store.close()
    done = subprocess.run(
        [sys.executable, "-m", "ttrpg_mcp.bridge.cli", "--data-dir", str(data_dir), "prune"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["dice_rolls"] == 1
