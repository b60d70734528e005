"""A migrated bridge store holding a GM, players and one campaign, for tests that drive the store."""

from __future__ import annotations

from pathlib import Path

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge import campaigns
from ttrpg_mcp.bridge.store import BridgeStore, User

__all__ = ["CAMPAIGN", "seeded_store"]

CAMPAIGN = "camp_0123456789ab"
_NOT_A_HASH = "not-an-argon2-hash"  # never checked: these tests sign nobody in


def seeded_store(data_dir: Path, players: tuple[str, ...] = ("ann",)) -> BridgeStore:
    """A store where ``usr_gm`` runs :data:`CAMPAIGN` and each of ``players`` plays in it.

    The caller closes it.
    """
    store = BridgeStore(bridge_store_url(data_dir))
    store.migrate()
    with store.session() as db:
        for name in ("gm", *players):
            db.add(
                User(
                    id=f"usr_{name}",
                    name=name,
                    name_key=name,
                    display_name=name.title(),
                    password_hash=_NOT_A_HASH,
                )
            )
        db.flush()
        campaigns.create_campaign(db, CAMPAIGN, "Ashes", "usr_gm")
        for name in players:
            invite = campaigns.create_invite(db, CAMPAIGN, "player", "usr_gm")
            campaigns.join_with_code(db, invite.code, f"usr_{name}")
    return store
