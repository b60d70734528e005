"""Retention: how long the bridge keeps what it no longer needs, and the pass that applies it.

What is kept, and for how long (each a setting, ``0`` meaning forever; see
``docs/configuration.md``):

* audit entries: ``audit_retention_days`` (365);
* erased canvas strokes, which nobody sees any more: ``erased_stroke_retention_days`` (30);
* the dice log: ``dice_log_retention_days`` (180);
* disabled accounts that nobody has signed in to for ``disabled_account_retention_days`` (365):
  deleted as ``DELETE /api/me`` would (``bridge/accounts.py``), their contributions kept as a
  deleted user's;
* registered OAuth clients with no live grant and no use (registration, a grant's revocation)
  for ``unused_oauth_client_retention_days`` (30): deleted with their revoked grants, since
  anyone may register one (``bridge/auth/agent_grants.py``);
* stored request replies: ``dedupe_window_seconds`` (a day), and the event log:
  ``event_retention_count``/``event_retention_seconds``, both applied by the event pass in
  ``bridge/events.py`` as before and by ``ttrpg-bridge prune`` here.

The bridge runs :func:`run_pass` once at start and then every ``retention_interval`` seconds (a
day); ``ttrpg-bridge prune`` runs it at once. Blocking: async callers use a worker thread.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge import accounts, audit, events
from ttrpg_mcp.bridge.auth import agent_grants
from ttrpg_mcp.bridge.store.database import affected_rows
from ttrpg_mcp.bridge.store.models import AuditEntry, CanvasStroke, DiceLogEntry, User, utcnow
from ttrpg_mcp.server.store.database import Database as ContentDatabase

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.settings import BridgeSettings
    from ttrpg_mcp.bridge.store import BridgeStore

__all__ = ["prune_bridge_store", "run_pass"]


def _cutoff(days: int) -> timedelta | None:
    return None if days <= 0 else timedelta(days=days)


def prune_bridge_store(
    db: Session, settings: BridgeSettings
) -> tuple[dict[str, int], list[accounts.Deletion]]:
    """Apply every retention setting to the bridge's store; counts removed, and the accounts deleted."""
    now = utcnow()
    removed: dict[str, int] = {}
    if (age := _cutoff(settings.audit_retention_days)) is not None:
        removed["audit_entries"] = affected_rows(
            db.execute(delete(AuditEntry).where(AuditEntry.created_at < now - age))
        )
    if (age := _cutoff(settings.erased_stroke_retention_days)) is not None:
        removed["erased_strokes"] = affected_rows(
            db.execute(delete(CanvasStroke).where(CanvasStroke.erased_at < now - age))
        )
    if (age := _cutoff(settings.dice_log_retention_days)) is not None:
        removed["dice_rolls"] = affected_rows(
            db.execute(delete(DiceLogEntry).where(DiceLogEntry.created_at < now - age))
        )
    deletions: list[accounts.Deletion] = []
    if (age := _cutoff(settings.disabled_account_retention_days)) is not None:
        last_seen = func.coalesce(User.last_login_at, User.created_at)
        stale = db.scalars(select(User.id).where(User.disabled.is_(True), last_seen < now - age)).all()
        deletions = [accounts.delete_account(db, user_id) for user_id in stale]
        for _deletion in deletions:  # audited without naming anyone, like DELETE /api/me
            audit.record(
                db,
                campaign_id=None,
                user_id=None,
                action="account_deleted",
                target=None,
                result="ok",
                detail={"by": "retention"},
            )
        removed["disabled_accounts"] = len(deletions)
    if (age := _cutoff(settings.unused_oauth_client_retention_days)) is not None:
        removed["oauth_clients"] = agent_grants.purge_unused_clients(db, age)
    logged = events.prune(
        db,
        keep=settings.event_retention_count,
        max_age=timedelta(seconds=settings.event_retention_seconds),
        dedupe_window=timedelta(seconds=settings.dedupe_window_seconds),
    )
    removed["events"] = logged["events"]
    removed["request_replies"] = logged["request_replies"]
    return removed, deletions


def run_pass(
    store: BridgeStore, settings: BridgeSettings, content_path: Path | str | None = None
) -> dict[str, int]:
    """One retention pass over the bridge's store, and the content store for deleted accounts."""
    with store.session() as db:
        removed, deletions = prune_bridge_store(db, settings)
    if deletions and content_path is not None:
        database = ContentDatabase(content_path)
        try:
            with database.write() as db:
                for deletion in deletions:
                    accounts.scrub_content(db, deletion)
        finally:
            database.close()
    return removed
