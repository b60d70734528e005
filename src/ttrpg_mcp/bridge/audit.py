"""The audit log: who changed what or called which tool, when, and how it ended.

One entry per change and per MCP operation, written after the message is handled, with the
outcome (``ok`` or the error code). Entries name their target (a tool, a path, a resource, an
expression) but never carry parameters wholesale, tokens or passwords. A campaign's GM reads
its entries through the HTTP API. Pure database work; the caller runs it in the store's threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge.store import AuditEntry, utcnow
from ttrpg_mcp.bridge.store.table_writes import table_writes

if TYPE_CHECKING:
    from sqlalchemy import Table

__all__ = [
    "AUDITED",
    "PendingEntry",
    "account_entries",
    "entries",
    "entries_about",
    "record",
    "record_entry",
    "target_of",
]

# Message types that change something or reach the MCP server.
AUDITED = frozenset(
    {
        "tool_call",
        "resource_get",
        "prompt_get",
        "dice_roll",
        "state_update",
        "initiative_update",
        "canvas_draw",
        "campaign_update",
        "character_update",
        "session_create",
        "session_attach",
    }
)
_MAX_TARGET = 200


def target_of(message: Any) -> str | None:
    """What a message acts on, in a few words: the tool, prompt, uri, path, expression or action."""
    for attribute in ("method", "campaign_id"):
        value = getattr(message, attribute, None)
        if isinstance(value, str):
            return value[:_MAX_TARGET]
    uri = getattr(getattr(message, "params", None), "uri", None)
    if isinstance(uri, str):
        return uri[:_MAX_TARGET]
    data = getattr(message, "data", None)
    for attribute in ("path", "expression", "action", "character_id"):
        value = getattr(data, attribute, None)
        if value is not None:
            text = ".".join(str(part) for part in value) if isinstance(value, list) else str(value)
            return text[:_MAX_TARGET]
    return None


@dataclass(frozen=True)
class PendingEntry:
    """An entry known before the change is made, written with it once it succeeds."""

    campaign_id: str | None
    action: str
    target: str | None


def record_entry(db: Session, entry: PendingEntry, *, user_id: str | None, result: str) -> None:
    record(
        db,
        campaign_id=entry.campaign_id,
        user_id=user_id,
        action=entry.action,
        target=entry.target,
        result=result,
    )


# One prepared Core insert (the columns' defaults, created_at among them, still apply): an
# ORM add and flush per entry (the unit of work) cost several times the insert itself.
_INSERT_ENTRY = insert(cast("Table", AuditEntry.__table__))


def record(
    db: Session,
    *,
    campaign_id: str | None,
    user_id: str | None,
    action: str,
    target: str | None,
    result: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an entry; in a group commit, written with the batch's other entries (one statement)."""
    values = {
        "campaign_id": campaign_id,
        "user_id": user_id,
        "action": action,
        "target": target,
        "result": result,
        "detail": detail,
    }
    writes = table_writes(db)
    if writes is not None:
        writes.audit_entry(values | {"created_at": utcnow()})
        return
    db.execute(_INSERT_ENTRY, values)


def entries(
    db: Session, campaign_id: str, *, limit: int = 100, before: int | None = None
) -> list[dict[str, Any]]:
    """A campaign's entries, newest first; ``before`` pages back past an entry id."""
    query = select(AuditEntry).where(AuditEntry.campaign_id == campaign_id)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = db.scalars(query.order_by(AuditEntry.id.desc()).limit(limit))
    return [
        {
            "id": row.id,
            "user_id": row.user_id,
            "action": row.action,
            "target": row.target,
            "result": row.result,
            "detail": row.detail,
            "created_at": row.created_at.isoformat(),
        }
        for row in rows
    ]


def account_entries(
    db: Session, *, limit: int = 100, before: int | None = None, user_id: str | None = None
) -> list[dict[str, Any]]:
    """Account events (entries outside any campaign: sign-ins, keys, exports, deletions), newest first."""
    query = select(AuditEntry).where(AuditEntry.campaign_id.is_(None))
    if user_id is not None:
        query = query.where(AuditEntry.user_id == user_id)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    return [_view(row) for row in db.scalars(query.order_by(AuditEntry.id.desc()).limit(limit))]


def entries_about(db: Session, user_id: str) -> list[dict[str, Any]]:
    """Every entry by or about ``user_id``, oldest first: what an export of their data includes."""
    query = select(AuditEntry).where((AuditEntry.user_id == user_id) | (AuditEntry.target == user_id))
    return [_view(row) for row in db.scalars(query.order_by(AuditEntry.id))]


def _view(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "campaign_id": row.campaign_id,
        "user_id": row.user_id,
        "action": row.action,
        "target": row.target,
        "result": row.result,
        "detail": row.detail,
        "created_at": row.created_at.isoformat(),
    }
