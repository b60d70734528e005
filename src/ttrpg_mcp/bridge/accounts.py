"""A person's data: everything held about them, as one document, and their account's deletion.

**Export** gathers what the bridge's store and the content store hold about or by a user: the
account (never its password hash), memberships, API keys (never their hashes), sign-in
sessions, dice rolls, canvas strokes, audit entries by or about them, the characters they own
and the notes they wrote.

**Deletion** removes the account, its keys and tokens, and every trace that names the person,
while what they made at shared tables stays for the table:

* their rolls, strokes, notes and characters stay, shown as by :data:`DELETED_USER`;
* in each campaign where they were the last GM, the GM role passes to the longest-seated other
  member, or, with nobody left, the campaign is archived; the answer says which, per campaign;
* audit entries by them lose their user and their detail (which holds addresses); entries about
  them lose the target. The deletion itself is audited without naming anyone;
* the event log, stored replies, the shared state and the content store's version snapshots are scrubbed of
  their id, login name and display name.

The SQLite connections run with ``secure_delete=FAST`` (``ttrpg_mcp.sqlite``), so the rows
rewritten here are zeroed where they stood (whole freed pages are not: see that module). Pure
database work over units of work the caller opens (one on each store); the content-store part
takes the content session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge import revocations
from ttrpg_mcp.bridge.audit import entries_about
from ttrpg_mcp.bridge.audit import record as audit_record
from ttrpg_mcp.bridge.auth import agent_grants, api_keys
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.store.models import (
    ApiKey,
    AuditEntry,
    Campaign,
    CampaignEvent,
    CampaignInvite,
    CanvasStroke,
    DiceLogEntry,
    Membership,
    RefreshToken,
    RegistrationInvite,
    RequestReply,
    SharedStateRow,
    User,
    utcnow,
)
from ttrpg_mcp.server.store import models as content
from ttrpg_mcp.server.store.database import Database as ContentDatabase
from ttrpg_mcp.server.store.database import content_store_exists

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.store import BridgeStore

__all__ = [
    "DELETED_USER",
    "DELETED_USER_ID",
    "CampaignOutcome",
    "Deletion",
    "content_database_path",
    "delete_account",
    "delete_everywhere",
    "export_bridge_data",
    "export_content_data",
    "export_everywhere",
    "scrub_content",
]

# What a deleted person's contributions show instead of their name, and of their id.
DELETED_USER = "deleted user"
DELETED_USER_ID = "usr_deleted"


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def export_bridge_data(db: Session, user_id: str) -> dict[str, Any]:
    """What the bridge's store holds about ``user_id``, as JSON-ready data (no hash, no secret)."""
    user = db.get(User, user_id)
    if user is None:
        raise BridgeError("not_found", "no such account")
    memberships = db.execute(
        select(Membership, Campaign.name)
        .join(Campaign, Campaign.id == Membership.campaign_id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.joined_at)
    )
    sessions = db.scalars(
        select(RefreshToken).where(RefreshToken.user_id == user_id).order_by(RefreshToken.issued_at)
    )
    rolls = db.scalars(select(DiceLogEntry).where(DiceLogEntry.user_id == user_id).order_by(DiceLogEntry.id))
    strokes = db.scalars(
        select(CanvasStroke).where(CanvasStroke.user_id == user_id).order_by(CanvasStroke.created_at)
    )
    return {
        "account": {
            "id": user.id,
            "username": user.name,
            "display_name": user.display_name,
            "is_admin": user.is_admin,
            "disabled": user.disabled,
            "created_at": _when(user.created_at),
            "last_login_at": _when(user.last_login_at),
        },
        "memberships": [
            {
                "campaign_id": m.campaign_id,
                "campaign_name": name,
                "role": m.role,
                "joined_at": _when(m.joined_at),
            }
            for m, name in memberships
        ],
        "api_keys": [api_keys.key_view(row) for row in api_keys.list_keys(db, user_id)],
        # The agents (OAuth clients) the person has authorized and not revoked.
        "authorized_agents": [
            {
                "id": grant.id,
                "client_name": grant.client_name,
                "campaign_id": grant.campaign_id,
                "role": grant.role,
                "created_at": _when(grant.created_at),
            }
            for grant in agent_grants.grants_of_user(db, user_id)
        ],
        # One entry per issued refresh token: when, in which sign-in family, and its state.
        "sign_in_sessions": [
            {
                "family_id": row.family_id,
                "issued_at": _when(row.issued_at),
                "expires_at": _when(row.expires_at),
                "used_at": _when(row.used_at),
                "revoked_at": _when(row.revoked_at),
            }
            for row in sessions
        ],
        "dice_rolls": [
            {
                "campaign_id": row.campaign_id,
                "expression": row.expression,
                "purpose": row.purpose,
                "visibility": row.visibility,
                "result": row.result,
                "created_at": _when(row.created_at),
            }
            for row in rolls
        ],
        "canvas_strokes": [
            {
                "id": row.id,
                "campaign_id": row.campaign_id,
                "stroke": row.stroke,
                "created_at": _when(row.created_at),
                "erased_at": _when(row.erased_at),
            }
            for row in strokes
        ],
        "audit_entries": entries_about(db, user_id),
    }


def export_content_data(db: Session, user_id: str) -> dict[str, Any]:
    """The characters ``user_id`` plays and the notes they wrote, from the content store.

    A character's ``gm_notes`` are the GM's, not the player's, and stay out.
    """
    characters = db.scalars(
        select(content.Character).where(content.Character.owner == user_id).order_by(content.Character.id)
    )
    notes = db.scalars(
        select(content.Note).where(content.Note.author == user_id).order_by(content.Note.created_at)
    )
    return {
        "characters": [
            {
                column.key: _json(getattr(row, column.key))
                for column in content.Character.__table__.columns
                if column.key != "gm_notes"
            }
            for row in characters
        ],
        "notes": [
            {column.key: _json(getattr(row, column.key)) for column in content.Note.__table__.columns}
            for row in notes
        ],
    }


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class CampaignOutcome:
    """What became of one campaign the deleted person was in."""

    campaign_id: str
    outcome: str  # "left", "gm_passed" or "archived"
    new_gm: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "outcome": self.outcome, "new_gm": self.new_gm}


@dataclass
class Deletion:
    """The answer of a deletion: what became of each campaign, and the words to scrub elsewhere."""

    user_id: str
    campaigns: list[CampaignOutcome] = field(default_factory=list)
    # The person's id, login name and display name: scrubbed from the content store too.
    identifiers: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"deleted": True, "campaigns": [outcome.to_dict() for outcome in self.campaigns]}


def _hand_over(db: Session, membership: Membership) -> CampaignOutcome:
    """Leave a campaign; the GM role passes on, or the campaign is archived, if they were its last GM."""
    campaign_id = membership.campaign_id
    others = list(
        db.scalars(
            select(Membership)
            .where(Membership.campaign_id == campaign_id, Membership.user_id != membership.user_id)
            .order_by(Membership.joined_at, Membership.user_id)
        )
    )
    db.delete(membership)
    if membership.role != "gm" or any(other.role == "gm" for other in others):
        return CampaignOutcome(campaign_id, "left")
    if others:
        heir = others[0]
        heir.role = "gm"
        subject = revocations.member_subject(campaign_id, heir.user_id)  # the heir's seats, everywhere
        revocations.record(db, subject, revocations.MEMBERSHIP_CHANGED)
        return CampaignOutcome(campaign_id, "gm_passed", heir.user_id)
    db.execute(update(Campaign).where(Campaign.id == campaign_id).values(archived=True))
    return CampaignOutcome(campaign_id, "archived")


def _scrub(value: Any, replacements: dict[str, str]) -> Any:
    """``value`` with the person's identifiers replaced, recursively.

    A string that *is* a name is replaced whole; inside longer text only the (random, so
    unambiguous) user id is: a short name like "Al" would otherwise mangle every "Always".
    """
    if isinstance(value, str):
        if value in replacements:
            return replacements[value]
        for old, new in replacements.items():
            if new == DELETED_USER_ID and old in value:
                value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_scrub(item, replacements) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item, replacements) for key, item in value.items()}
    return value


def _replacements(identifiers: tuple[str, ...], user_id: str) -> dict[str, str]:
    # Longest first, so a display name containing the login name is replaced whole.
    ordered = sorted({word for word in identifiers if word}, key=len, reverse=True)
    return {word: DELETED_USER_ID if word == user_id else DELETED_USER for word in ordered}


def delete_account(db: Session, user_id: str) -> Deletion:
    """Delete an account and scrub the bridge's store of it; see the module docstring."""
    user = db.get(User, user_id)
    if user is None:
        raise BridgeError("not_found", "no such account")
    identifiers = (user.id, user.name, user.display_name)
    deletion = Deletion(user_id, identifiers=identifiers)
    words = _replacements(identifiers, user_id)
    for membership in list(db.scalars(select(Membership).where(Membership.user_id == user_id))):
        deletion.campaigns.append(_hand_over(db, membership))
    db.flush()
    db.execute(
        update(DiceLogEntry)
        .where(DiceLogEntry.user_id == user_id)
        .values(user_id=None, player_name=DELETED_USER)
    )
    for stroke in db.scalars(select(CanvasStroke).where(CanvasStroke.user_id == user_id)):
        stroke.user_id = None
        stroke.stroke = _scrub(stroke.stroke, words)
    # Audit entries by them keep what was done, not by whom nor from where.
    db.execute(update(AuditEntry).where(AuditEntry.user_id == user_id).values(user_id=None, detail=None))
    db.execute(update(AuditEntry).where(AuditEntry.target == user_id).values(target=DELETED_USER_ID))
    db.execute(delete(RequestReply).where(RequestReply.user_id == user_id))
    _scrub_json_rows(db, words)
    for model in (Campaign, CampaignInvite, RegistrationInvite):
        db.execute(update(model).where(model.created_by == user_id).values(created_by=None))
    db.execute(delete(ApiKey).where(ApiKey.user_id == user_id))
    db.execute(delete(RefreshToken).where(RefreshToken.user_id == user_id))
    db.delete(user)
    revocations.record(db, revocations.user_subject(user_id), revocations.ACCOUNT_DELETED)
    db.flush()
    return deletion


def _scrub_json_rows(db: Session, words: dict[str, str]) -> None:
    """Rewrite the event log, stored replies and shared states wherever they mention the person."""
    # A full pass: deletions are rare and the event log is kept short by the retention pass.
    for event in db.scalars(select(CampaignEvent)):
        payload = _scrub(event.payload, words)
        audience = _scrub(event.audience, words)
        if payload != event.payload:
            event.payload = payload
        if audience != event.audience:
            event.audience = audience
    for reply in db.scalars(select(RequestReply)):  # others' replies can show them too (a character)
        scrubbed = _scrub(reply.reply, words)
        if scrubbed != reply.reply:
            reply.reply = scrubbed
    for row in db.scalars(select(SharedStateRow)):
        document, history = _scrub(row.document, words), _scrub(row.history, words)
        if document != row.document:
            row.document = document
        if history != row.history:
            row.history = history


def scrub_content(db: Session, deletion: Deletion) -> dict[str, int]:
    """Turn a deleted person's characters and notes in the content store into a deleted user's."""
    user_id = deletion.user_id
    words = _replacements(deletion.identifiers, user_id)
    characters = list(db.scalars(select(content.Character).where(content.Character.owner == user_id)))
    for character in characters:
        character.owner = DELETED_USER_ID
        if character.player_name in deletion.identifiers:
            character.player_name = DELETED_USER
    notes = list(
        db.scalars(
            select(content.Note).where(
                or_(content.Note.author == user_id, content.Note.visibility == user_id)
            )
        )
    )
    for note in notes:
        if note.author == user_id:
            note.author = DELETED_USER_ID
        if note.visibility == user_id:  # a note shared with them alone: back to the GM's
            note.visibility = "gm"
    for version in db.scalars(select(content.CampaignVersion)):
        snapshot = _scrub(version.snapshot, words)
        if snapshot != version.snapshot:
            version.snapshot = snapshot
    # Who made each change and each tool roll: kept for the table, as a deleted user's. Bulk
    # updates, so the scrub itself records no change of these rows in the change log.
    for model in (content.ContentChange, content.RollLogEntry):
        db.execute(update(model).where(model.actor == user_id).values(actor=DELETED_USER_ID))
    db.flush()
    return {"characters": len(characters), "notes": len(notes)}


def content_database_path(location: Path | str) -> Path | str | None:
    """The content store (a settings' ``content_store``), unless no MCP server has made it yet."""
    if isinstance(location, str):  # the shared PostgreSQL database
        return location if content_store_exists(location) else None
    return location if location.is_file() else None


def export_everywhere(store: BridgeStore, content_path: Path | str | None, user_id: str) -> dict[str, Any]:
    """The whole export document, from both stores (blocking: run it in a worker thread)."""
    with store.session(readonly=True) as db:
        document: dict[str, Any] = {"format": "ttrpg-bridge-export/1", "exported_at": utcnow().isoformat()}
        document.update(export_bridge_data(db, user_id))
    if content_path is None:
        document["content"] = {"characters": [], "notes": [], "note": "no content store beside the bridge"}
        return document
    database = ContentDatabase(content_path)
    try:
        with database.read() as db:
            document["content"] = export_content_data(db, user_id)
    finally:
        database.close()
    return document


def delete_everywhere(store: BridgeStore, content_path: Path | str | None, user_id: str) -> Deletion:
    """Delete the account in the bridge's store, then scrub the content store (blocking)."""
    with store.session() as db:
        deletion = delete_account(db, user_id)
        audit_record(
            db,
            campaign_id=None,
            user_id=None,
            action="account_deleted",
            target=None,
            result="ok",
            detail={"campaigns": len(deletion.campaigns)},
        )
    if content_path is not None:
        database = ContentDatabase(content_path)
        try:
            with database.write() as db:
                scrub_content(db, deletion)
        finally:
            database.close()
    return deletion
