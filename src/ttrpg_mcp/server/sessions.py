"""Finding a campaign's play sessions: the lookups that notes and the combat tracker share.

They live below both :mod:`ttrpg_mcp.server.entities` (a note taken during a session belongs
to it) and :mod:`ttrpg_mcp.server.play` (which runs sessions and their combat), so neither
module imports the other for them.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ttrpg_mcp.server.errors import NotFoundError
from ttrpg_mcp.server.store.models import PlaySession

__all__ = ["active_session", "load_session"]


def load_session(db: Session, session_id: str) -> PlaySession:
    """The play session with this id, or ``NotFoundError``."""
    session = db.get(PlaySession, session_id)
    if session is None:
        raise NotFoundError(f"no session with id {session_id!r}")
    return session


def active_session(db: Session, campaign_id: str) -> PlaySession | None:
    """The campaign's running session (at most one runs at a time), if any."""
    return db.scalar(
        select(PlaySession).where(PlaySession.campaign_id == campaign_id, PlaySession.ended_at.is_(None))
    )
