"""Campaign rooms in the bridge's store: members and invites, table state, canvas, dice log, event log.

The campaign's content (its description, characters, NPCs...) lives in the MCP server's store
(ARCHITECTURE decision 5); what this module keeps is the collaboration around it. Each function
takes the unit of work (a SQLAlchemy ``Session``) as its first argument and does no I/O of its
own, as in ``bridge/auth/users.py``: the async callers wrap it in ``BridgeStore.run``, tests
and admin commands call it in ``BridgeStore.session``. Refusals are
:class:`~ttrpg_mcp.bridge.errors.BridgeError`\\ s; results are small frozen pydantic models or
plain JSON dicts, never ORM objects, so nothing lazy escapes a unit of work.

Two writes must be serialised per campaign even with several bridge nodes on PostgreSQL:

* the event log's ``seq`` is allocated by ``UPDATE campaigns SET last_seq = last_seq + 1 ...
  RETURNING``, in the transaction that inserts the event, so numbers are gap-free and in commit
  order (the row lock holds concurrent appenders until commit; SQLite's ``BEGIN IMMEDIATE`` does
  the same for the whole file);
* membership changes that could remove the last GM, and canvas ordinals, lock the campaign row
  first (``SELECT ... FOR UPDATE``, a no-op on SQLite where the write lock is already held).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table, Text, delete, func, insert, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from ttrpg_mcp.bridge import revocations
from ttrpg_mcp.bridge.auth.digests import secret_digest
from ttrpg_mcp.bridge.backplane.base import LoggedEvent
from ttrpg_mcp.bridge.canvas import Stroke
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.permissions import ROLES, VISIBILITIES, Role, Visibility, roll_visible_to
from ttrpg_mcp.bridge.state import SharedState
from ttrpg_mcp.bridge.store.database import affected_rows
from ttrpg_mcp.bridge.store.models import (
    Campaign,
    CampaignEvent,
    CampaignInvite,
    CanvasStroke,
    DiceLogEntry,
    Membership,
    SharedStateRow,
    User,
    utcnow,
)
from ttrpg_mcp.bridge.store.table_writes import table_writes, trim_rolls

__all__ = [
    "DEFAULT_INVITE_TTL_SECONDS",
    "EVENT_SCOPES",
    "MAX_EVENTS_PER_READ",
    "MAX_INVITE_TTL_SECONDS",
    "MAX_INVITE_USES",
    "MAX_LIVE_STROKES",
    "MIN_INVITE_TTL_SECONDS",
    "ROLL_LOG_LIMIT",
    "CampaignRecord",
    "CampaignSummary",
    "EventRecord",
    "EventScope",
    "InviteView",
    "MemberView",
    "add_roll",
    "add_stroke",
    "append_event",
    "campaign_epoch_and_seq",
    "canvas",
    "clear_canvas",
    "create_campaign",
    "create_invite",
    "erase_stroke",
    "events_since",
    "get_campaign",
    "get_role",
    "join_with_code",
    "list_campaigns_for",
    "load_state",
    "log_event",
    "logged_since",
    "members",
    "prune_events",
    "recent_rolls",
    "remove_member",
    "require_role",
    "save_state",
    "set_role",
]

# The "last 50 rolls": enough to scroll back through an evening's fights.
ROLL_LOG_LIMIT = 50
DEFAULT_INVITE_TTL_SECONDS = 7 * 86_400
# At least a minute (time to paste the link), at most a month (an old link is a leaked link).
MIN_INVITE_TTL_SECONDS = 60
MAX_INVITE_TTL_SECONDS = 30 * 86_400
MAX_INVITE_USES = 100
# 18 random bytes: 24 URL-safe characters, beyond guessing.
_INVITE_CODE_BYTES = 18
# Strokes on one canvas at once: a busy battle map is a few hundred; this bounds what a late
# joiner has to download.
MAX_LIVE_STROKES = 5000
MAX_EVENTS_PER_READ = 10_000

EventScope = Literal["user", "session", "campaign", "global"]
EVENT_SCOPES: tuple[EventScope, ...] = get_args(EventScope)
_AUDIENCE_KEYS = frozenset({"roles", "users"})


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class CampaignRecord(_Record):
    """The bridge's record of a campaign."""

    id: str
    name: str
    created_by: str | None
    created_at: datetime
    archived: bool
    epoch: str


class CampaignSummary(_Record):
    """A campaign as one of its members sees it in a list."""

    id: str
    name: str
    role: Role
    member_count: int
    created_at: datetime
    archived: bool
    system: str = Field(default="", description="The game system, from the campaign's content.")
    online: int = Field(
        default=0, description="Seats at its table right now (people and agents, on any node)."
    )


class MemberView(_Record):
    """One member of a campaign."""

    user_id: str
    name: str
    display_name: str
    role: Role
    joined_at: datetime


class InviteView(_Record):
    """An invite code to a campaign; the code is a credential, shown once to its creator."""

    code: str
    campaign_id: str
    role: Role
    expires_at: datetime
    uses_left: int


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event of a campaign's durable log.

    A plain record, not a pydantic model like the others here: a replay builds up to
    ``replay_limit`` of them at once from columns whose types are already these.
    """

    id: int
    campaign_id: str
    seq: int
    epoch: str
    type: str
    scope: str
    audience: dict[str, Any] | None
    payload: dict[str, Any]
    created_at: datetime


def _check_role(role: str) -> Role:
    if role not in ROLES:
        raise BridgeError("invalid_params", f"a role is one of {', '.join(ROLES)}", {"role": role})
    return role


def _campaign_not_found(campaign_id: str) -> BridgeError:
    return BridgeError("not_found", f"no campaign {campaign_id!r}", {"campaign_id": campaign_id})


def _lock_campaign(db: Session, campaign_id: str) -> Campaign:
    """The campaign's row, locked until the unit of work ends (PostgreSQL; SQLite holds the file)."""
    campaign = db.scalars(select(Campaign).where(Campaign.id == campaign_id).with_for_update()).one_or_none()
    if campaign is None:
        raise _campaign_not_found(campaign_id)
    return campaign


def _record(campaign: Campaign) -> CampaignRecord:
    return CampaignRecord(
        id=campaign.id,
        name=campaign.name,
        created_by=campaign.created_by,
        created_at=campaign.created_at,
        archived=campaign.archived,
        epoch=campaign.epoch,
    )


# ---------------------------------------------------------------------------------------------
# Campaigns and members


def create_campaign(db: Session, campaign_id: str, name: str, creator_id: str) -> CampaignRecord:
    """Record a campaign the MCP server has created, with its creator as GM and an empty table."""
    if db.get(User, creator_id) is None:
        raise BridgeError("not_found", f"no user {creator_id!r}", {"user_id": creator_id})
    if db.get(Campaign, campaign_id) is not None:
        raise BridgeError("conflict", f"campaign {campaign_id!r} exists", {"campaign_id": campaign_id})
    now = utcnow()
    campaign = Campaign(
        id=campaign_id,
        name=name,
        created_by=creator_id,
        created_at=now,
        archived=False,
        epoch=secrets.token_hex(8),
        last_seq=0,
    )
    db.add(campaign)
    state = SharedState.new(campaign_id, now=now)
    db.add(Membership(campaign_id=campaign_id, user_id=creator_id, role="gm", joined_at=now))
    db.add(
        SharedStateRow(
            campaign_id=campaign_id, document=state.document, version=0, last_update=now, history=[]
        )
    )
    try:
        db.flush()
    except IntegrityError:  # the same id recorded concurrently, between the check and the insert
        raise BridgeError(
            "conflict", f"campaign {campaign_id!r} exists", {"campaign_id": campaign_id}
        ) from None
    return _record(campaign)


def get_campaign(db: Session, campaign_id: str) -> CampaignRecord:
    """The campaign's record, or ``not_found``."""
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        raise _campaign_not_found(campaign_id)
    return _record(campaign)


def _summaries(db: Session, user_id: str, campaign_id: str | None = None) -> list[CampaignSummary]:
    others = aliased(Membership)
    member_count = (
        select(func.count()).select_from(others).where(others.campaign_id == Campaign.id).scalar_subquery()
    )
    query = (
        select(Campaign, Membership.role, member_count)
        .join(Membership, Membership.campaign_id == Campaign.id)
        .where(Membership.user_id == user_id)
        .order_by(Campaign.created_at.desc(), Campaign.id)
    )
    if campaign_id is not None:
        query = query.where(Campaign.id == campaign_id)
    return [
        CampaignSummary(
            id=campaign.id,
            name=campaign.name,
            role=_check_role(role),
            member_count=count,
            created_at=campaign.created_at,
            archived=campaign.archived,
        )
        for campaign, role, count in db.execute(query)
    ]


def list_campaigns_for(db: Session, user_id: str) -> list[CampaignSummary]:
    """The campaigns ``user_id`` is a member of, newest first, each with their role in it."""
    return _summaries(db, user_id)


def get_role(db: Session, campaign_id: str, user_id: str) -> Role | None:
    """The member's role, or ``None`` when they are not a member (or there is no such campaign)."""
    role = db.scalar(
        select(Membership.role).where(Membership.campaign_id == campaign_id, Membership.user_id == user_id)
    )
    return None if role is None else _check_role(role)


def require_role(db: Session, campaign_id: str, user_id: str) -> Role:
    """The member's role; ``forbidden`` for anyone else (without telling whether the campaign exists)."""
    role = get_role(db, campaign_id, user_id)
    if role is None:
        raise BridgeError("forbidden", "not a member of this campaign", {"campaign_id": campaign_id})
    return role


def members(db: Session, campaign_id: str) -> list[MemberView]:
    """Everyone in the campaign, in the order they joined."""
    rows = db.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.campaign_id == campaign_id)
        .order_by(Membership.joined_at, User.name_key)
    )
    return [
        MemberView(
            user_id=user.id,
            name=user.name,
            display_name=user.display_name,
            role=_check_role(membership.role),
            joined_at=membership.joined_at,
        )
        for membership, user in rows
    ]


def create_invite(
    db: Session,
    campaign_id: str,
    role: str,
    created_by: str,
    *,
    uses: int = 1,
    ttl_seconds: int = DEFAULT_INVITE_TTL_SECONDS,
) -> InviteView:
    """A new invite code that seats ``uses`` people with ``role`` for ``ttl_seconds``."""
    checked = _check_role(role)
    if not 1 <= uses <= MAX_INVITE_USES:
        raise BridgeError("invalid_params", f"an invite has 1 to {MAX_INVITE_USES} uses", {"uses": uses})
    if not MIN_INVITE_TTL_SECONDS <= ttl_seconds <= MAX_INVITE_TTL_SECONDS:
        raise BridgeError(
            "invalid_params",
            f"an invite lasts {MIN_INVITE_TTL_SECONDS} to {MAX_INVITE_TTL_SECONDS} seconds",
            {"ttl_seconds": ttl_seconds},
        )
    if db.get(Campaign, campaign_id) is None:
        raise _campaign_not_found(campaign_id)
    now = utcnow()
    code = secrets.token_urlsafe(_INVITE_CODE_BYTES)
    invite = CampaignInvite(
        code_hash=secret_digest(code),
        campaign_id=campaign_id,
        role=checked,
        created_by=created_by,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
        uses_left=uses,
    )
    db.add(invite)
    db.flush()
    return InviteView(
        code=code, campaign_id=campaign_id, role=checked, expires_at=invite.expires_at, uses_left=uses
    )


def join_with_code(db: Session, code: str, user_id: str) -> tuple[CampaignSummary, Role]:
    """Seat ``user_id`` with the invite's role and spend one use; a member keeps their role."""
    # The store keeps only the code's hash: one primary-key read finds it.
    code_hash = secret_digest(code)
    invite = db.get(CampaignInvite, code_hash) if len(code) <= 64 else None
    if invite is None:
        raise BridgeError("not_found", "no such invite code")
    campaign_id = invite.campaign_id
    existing = get_role(db, campaign_id, user_id)
    if existing is not None:
        # Idempotent: following the link twice, or a GM testing their own link, changes nothing.
        return _summaries(db, user_id, campaign_id)[0], existing
    if invite.expires_at <= utcnow():
        raise BridgeError("forbidden", "this invite has expired; ask for a new one", {"reason": "expired"})
    # Atomic on PostgreSQL too: two people racing for the last use cannot both get it.
    spent = db.execute(
        update(CampaignInvite)
        .where(CampaignInvite.code_hash == code_hash, CampaignInvite.uses_left > 0)
        .values(uses_left=CampaignInvite.uses_left - 1)
    )
    if affected_rows(spent) == 0:
        raise BridgeError(
            "forbidden", "this invite has been used up; ask for a new one", {"reason": "used_up"}
        )
    role = _check_role(invite.role)
    db.add(Membership(campaign_id=campaign_id, user_id=user_id, role=role, joined_at=utcnow()))
    try:
        db.flush()
    except IntegrityError:  # unknown user, or joined concurrently through another invite
        raise BridgeError("conflict", "could not join; try again", {"campaign_id": campaign_id}) from None
    return _summaries(db, user_id, campaign_id)[0], role


def _membership(db: Session, campaign_id: str, user_id: str) -> Membership:
    membership = db.get(Membership, (campaign_id, user_id))
    if membership is None:
        raise BridgeError(
            "not_found",
            f"{user_id!r} is not a member of this campaign",
            {"campaign_id": campaign_id, "user_id": user_id},
        )
    return membership


def _keep_a_gm(db: Session, membership: Membership, new_role: Role | None) -> None:
    if membership.role != "gm" or new_role == "gm":
        return
    gms = db.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.campaign_id == membership.campaign_id, Membership.role == "gm")
    )
    if (gms or 0) <= 1:
        raise BridgeError(
            "conflict",
            "a campaign needs a GM: make someone else GM first",
            {"campaign_id": membership.campaign_id, "user_id": membership.user_id},
        )


def set_role(db: Session, campaign_id: str, user_id: str, role: str) -> MemberView:
    """Change a member's role; ``conflict`` if that would leave the campaign without a GM.

    The ledger row gives the member's seats on every node the new role at once.
    """
    checked = _check_role(role)
    _lock_campaign(db, campaign_id)
    membership = _membership(db, campaign_id, user_id)
    _keep_a_gm(db, membership, checked)
    membership.role = checked
    revocations.record(db, revocations.member_subject(campaign_id, user_id), revocations.MEMBERSHIP_CHANGED)
    db.flush()
    return next(member for member in members(db, campaign_id) if member.user_id == user_id)


def remove_member(db: Session, campaign_id: str, user_id: str) -> None:
    """Remove a member; ``conflict`` if they are the campaign's last GM.

    The ledger row takes the member's seats (their agents' too) from the table on every node.
    """
    _lock_campaign(db, campaign_id)
    membership = _membership(db, campaign_id, user_id)
    _keep_a_gm(db, membership, None)
    db.delete(membership)
    revocations.record(db, revocations.member_subject(campaign_id, user_id), revocations.MEMBERSHIP_CHANGED)
    db.flush()


# ---------------------------------------------------------------------------------------------
# Shared table state


def load_state(db: Session, campaign_id: str) -> SharedState:
    """The campaign's shared state as last saved (a fresh one if none was), or ``not_found``."""
    row = db.get(SharedStateRow, campaign_id)
    if row is None:
        if db.get(Campaign, campaign_id) is None:
            raise _campaign_not_found(campaign_id)
        return SharedState.new(campaign_id)
    return SharedState.from_json(
        campaign_id,
        {
            "document": row.document,
            "version": row.version,
            "last_update": row.last_update,
            "history": row.history,
        },
    )


def save_state(db: Session, state: SharedState) -> None:
    """Store ``state``; ``conflict`` rather than overwrite a newer version saved by someone else."""
    row = db.get(SharedStateRow, state.campaign_id, with_for_update=True)
    data = state.to_json()
    if row is None:
        if db.get(Campaign, state.campaign_id) is None:
            raise _campaign_not_found(state.campaign_id)
        row = SharedStateRow(campaign_id=state.campaign_id)
        db.add(row)
    elif row.version > state.version:
        raise BridgeError(
            "conflict",
            f"the stored state is at version {row.version}, newer than {state.version}",
            {"current_version": row.version},
        )
    row.document = data["document"]
    row.version = state.version
    row.last_update = state.last_update
    row.history = data["history"]
    db.flush()


# ---------------------------------------------------------------------------------------------
# Canvas


def _stroke_view(row: CanvasStroke) -> dict[str, Any]:
    return {**row.stroke, "id": row.id, "user_id": row.user_id, "created_at": row.created_at.isoformat()}


def add_stroke(db: Session, campaign_id: str, user_id: str, stroke: Stroke) -> dict[str, Any]:
    """Store a stroke on top of the canvas with a new ``stk_`` id; the stored stroke as JSON."""
    _lock_campaign(db, campaign_id)  # ordinals are allocated one writer at a time
    live = db.scalar(
        select(func.count())
        .select_from(CanvasStroke)
        .where(CanvasStroke.campaign_id == campaign_id, CanvasStroke.erased_at.is_(None))
    )
    if (live or 0) >= MAX_LIVE_STROKES:
        raise BridgeError(
            "invalid_params",
            f"the canvas holds {MAX_LIVE_STROKES} strokes, its limit; erase some or clear it",
            {"limit": MAX_LIVE_STROKES},
        )
    last = db.scalar(select(func.max(CanvasStroke.ordinal)).where(CanvasStroke.campaign_id == campaign_id))
    row = CanvasStroke(
        id=f"stk_{secrets.token_hex(8)}",
        campaign_id=campaign_id,
        ordinal=(last or 0) + 1,
        user_id=user_id,
        stroke=stroke.model_dump(mode="json", exclude={"id"}),
        created_at=utcnow(),
    )
    db.add(row)
    db.flush()
    return _stroke_view(row)


def erase_stroke(db: Session, campaign_id: str, stroke_id: str, user_id: str, *, any_owner: bool) -> None:
    """Erase one stroke: one's own, or anyone's with ``any_owner`` (a GM)."""
    row = db.get(CanvasStroke, stroke_id)
    if row is None or row.campaign_id != campaign_id or row.erased_at is not None:
        raise BridgeError("not_found", f"no stroke {stroke_id!r} on this canvas", {"stroke_id": stroke_id})
    if not any_owner and row.user_id != user_id:
        raise BridgeError("forbidden", "only a GM may erase someone else's stroke", {"stroke_id": stroke_id})
    erased = db.execute(
        update(CanvasStroke)
        .where(CanvasStroke.id == stroke_id, CanvasStroke.erased_at.is_(None))
        .values(erased_at=utcnow())
    )
    if affected_rows(erased) == 0:  # erased by someone else in the meantime
        raise BridgeError("not_found", f"no stroke {stroke_id!r} on this canvas", {"stroke_id": stroke_id})


def clear_canvas(db: Session, campaign_id: str) -> int:
    """Remove every stroke of the campaign's canvas; how many there were (erased ones included)."""
    campaign = _lock_campaign(db, campaign_id)
    removed = affected_rows(db.execute(delete(CanvasStroke).where(CanvasStroke.campaign_id == campaign_id)))
    campaign.canvas_cleared_at = utcnow()
    db.flush()
    return removed


def canvas(db: Session, campaign_id: str) -> list[dict[str, Any]]:
    """The canvas as it is: the strokes not erased, in the order they were drawn."""
    rows = db.scalars(
        select(CanvasStroke)
        .where(CanvasStroke.campaign_id == campaign_id, CanvasStroke.erased_at.is_(None))
        .order_by(CanvasStroke.ordinal)
    )
    return [_stroke_view(row) for row in rows]


# ---------------------------------------------------------------------------------------------
# Dice log


# Built once (SQLAlchemy caches their compiled form); plain Core, none of the ORM's DML steps.
_DICE_LOG = cast("Table", DiceLogEntry.__table__)
_INSERT_ROLL = insert(_DICE_LOG).returning(_DICE_LOG.c.id)
_EVENTS = cast("Table", CampaignEvent.__table__)
_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)


def _roll_view(entry: DiceLogEntry) -> dict[str, Any]:
    return {
        **entry.result,
        "id": entry.id,
        "player_id": entry.user_id,
        "player_name": entry.player_name,
        "expression": entry.expression,
        "purpose": entry.purpose,
        "visibility": entry.visibility,
        "created_at": entry.created_at.isoformat(),
    }


def add_roll(
    db: Session,
    campaign_id: str,
    user_id: str | None,  # None: a roll made outside the bridge (Claude over stdio)
    player_name: str,
    roll_payload: dict[str, Any],
    visibility: str,
) -> dict[str, Any]:
    """Log a roll (``roll_payload`` holds ``expression``, ``purpose`` and the result) and keep the
    newest :data:`ROLL_LOG_LIMIT`; the logged roll as JSON."""
    if visibility not in VISIBILITIES:
        raise BridgeError(
            "invalid_params", f"visibility is one of {', '.join(VISIBILITIES)}", {"visibility": visibility}
        )
    purpose = roll_payload.get("purpose")
    values: dict[str, Any] = {
        "campaign_id": campaign_id,
        "user_id": user_id,
        "player_name": player_name[:100],
        "expression": str(roll_payload.get("expression", ""))[:500],
        "purpose": None if purpose is None else str(purpose)[:500],
        "visibility": visibility,
        "result": roll_payload,
        "created_at": utcnow(),
    }
    writes = table_writes(db)
    if writes is not None:
        # In a group commit: written with the batch's other rolls, the log trimmed once.
        entry_id = writes.roll(values, keep=ROLL_LOG_LIMIT)
        return {  # as _roll_view would show the row, without building an ORM object for it
            **roll_payload,
            "id": entry_id,
            "player_id": user_id,
            "player_name": values["player_name"],
            "expression": values["expression"],
            "purpose": values["purpose"],
            "visibility": visibility,
            "created_at": values["created_at"].isoformat(),
        }
    # One prepared INSERT ... RETURNING, not the ORM's unit of work: a table rolls many times a second.
    entry_id = db.execute(_INSERT_ROLL, values).scalar_one()
    entry = DiceLogEntry(id=entry_id, **values)  # not added: a view of the row just written
    trim_rolls(db, campaign_id, ROLL_LOG_LIMIT)
    return _roll_view(entry)


def recent_rolls(
    db: Session, campaign_id: str, *, viewer_id: str, reveal_hidden: bool, limit: int = ROLL_LOG_LIMIT
) -> list[dict[str, Any]]:
    """The newest ``limit`` rolls this viewer may see, oldest first (see ``roll_visible_to``)."""
    entries = db.scalars(
        select(DiceLogEntry)
        .where(DiceLogEntry.campaign_id == campaign_id)
        .order_by(DiceLogEntry.id.desc())
        .limit(ROLL_LOG_LIMIT)
    )
    visible = [
        _roll_view(entry)
        for entry in entries
        if roll_visible_to(
            cast("Visibility", entry.visibility),
            roller_id=entry.user_id,
            viewer_id=viewer_id,
            reveal_hidden=reveal_hidden,
        )
    ]
    return visible[:limit][::-1]


# ---------------------------------------------------------------------------------------------
# Event log


def _check_audience(audience: dict[str, Any] | None) -> None:
    if audience is None:
        return
    if not audience or not set(audience) <= _AUDIENCE_KEYS:
        raise ValueError(f"an audience has 'roles' and/or 'users', not {sorted(audience)}")
    roles = audience.get("roles", [])
    users = audience.get("users", [])
    if not isinstance(roles, list) or not set(roles) <= set(ROLES):
        raise ValueError(f"audience roles are a list of {ROLES}")
    if not isinstance(users, list) or not all(isinstance(user, str) for user in users):
        raise ValueError("audience users are a list of user ids")


def _event(row: CampaignEvent) -> EventRecord:
    return EventRecord(
        id=row.id,
        campaign_id=row.campaign_id,
        seq=row.seq,
        epoch=row.epoch,
        type=row.type,
        scope=row.scope,
        audience=row.audience,
        payload=row.payload,
        created_at=row.created_at,
    )


def append_event(
    db: Session,
    campaign_id: str,
    type: str,  # the protocol's name for it
    payload: dict[str, Any],
    *,
    scope: str = "campaign",
    audience: dict[str, Any] | None = None,
) -> EventRecord:
    """Append an event to the campaign's log with the next ``seq``; visible once the unit commits."""
    if scope not in EVENT_SCOPES:
        raise ValueError(f"scope is one of {EVENT_SCOPES}, not {scope!r}")
    _check_audience(audience)
    allocated = db.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(last_seq=Campaign.last_seq + 1)
        .returning(Campaign.last_seq, Campaign.epoch)
    ).one_or_none()
    if allocated is None:
        raise _campaign_not_found(campaign_id)
    seq, epoch = allocated
    values: dict[str, Any] = {
        "campaign_id": campaign_id,
        "seq": seq,
        "epoch": epoch,
        "type": type,
        "scope": scope,
        "audience": audience,
        "payload": payload,
        "created_at": utcnow(),
    }
    # One prepared INSERT ... RETURNING, not the ORM's unit of work: every change at a table logs one.
    row_id = db.execute(_INSERT_EVENT, values).scalar_one()
    return EventRecord(id=row_id, **values)


def log_event(db: Session, campaign_id: str, type: str, payload: dict[str, Any]) -> tuple[int, str]:
    """Log a campaign-scoped event; its ``seq`` and the log's epoch.

    In a group commit the event is written with the batch's others (one statement), its
    ``seq`` taken from the range the batch gives out; else as :func:`append_event`.
    """
    writes = table_writes(db)
    if writes is None:
        record = append_event(db, campaign_id, type, payload)
        return record.seq, record.epoch
    values = {
        "campaign_id": campaign_id,
        "type": type,
        "scope": "campaign",
        "audience": None,
        "payload": payload,
        "created_at": utcnow(),
    }
    logged = writes.event(values)
    if logged is None:
        raise _campaign_not_found(campaign_id)
    return logged


def events_since(
    db: Session, campaign_id: str, seq: int, *, limit: int = MAX_EVENTS_PER_READ
) -> list[EventRecord]:
    """The campaign's events after ``seq``, oldest first, at most ``limit`` of them.

    A replay reads up to ``replay_limit`` (10,000) rows at once, so this reads plain rows, not
    ORM objects, and decodes the payload with orjson: loading ORM instances and validating each
    record cost most of a 1,000-event resume.
    """
    rows = db.execute(
        select(
            CampaignEvent.id,
            CampaignEvent.seq,
            CampaignEvent.epoch,
            CampaignEvent.type,
            CampaignEvent.scope,
            CampaignEvent.audience,
            sql_cast(CampaignEvent.payload, Text),
            CampaignEvent.created_at,
        )
        .where(CampaignEvent.campaign_id == campaign_id, CampaignEvent.seq > seq)
        .order_by(CampaignEvent.seq)
        .limit(limit)
    )
    return [
        EventRecord(
            id=row_id,
            campaign_id=campaign_id,
            seq=row_seq,
            epoch=epoch,
            type=kind,
            scope=scope,
            audience=audience,
            payload=orjson.loads(payload),
            created_at=created_at,
        )
        for row_id, row_seq, epoch, kind, scope, audience, payload, created_at in rows
    ]


def logged_since(
    db: Session, campaign_id: str, seq: int, *, limit: int = MAX_EVENTS_PER_READ
) -> list[LoggedEvent]:
    """The campaign's events after ``seq`` as a replay needs them: ``seq``, type and payload only.

    A replay (or a follower's backfill) reads up to ``replay_limit`` rows at once and needs
    nothing else of them: three columns, the payload decoded by orjson, no timestamps to parse.
    """
    rows = db.execute(
        select(CampaignEvent.seq, CampaignEvent.type, sql_cast(CampaignEvent.payload, Text))
        .where(CampaignEvent.campaign_id == campaign_id, CampaignEvent.seq > seq)
        .order_by(CampaignEvent.seq)
        .limit(limit)
    )
    return [LoggedEvent(row_seq, kind, orjson.loads(payload)) for row_seq, kind, payload in rows]


def prune_events(db: Session, campaign_id: str, *, keep: int) -> int:
    """Delete all but the newest ``keep`` events of the campaign; how many went."""
    _epoch, last_seq = campaign_epoch_and_seq(db, campaign_id)
    return affected_rows(
        db.execute(
            delete(CampaignEvent).where(
                CampaignEvent.campaign_id == campaign_id, CampaignEvent.seq <= last_seq - keep
            )
        )
    )


def campaign_epoch_and_seq(db: Session, campaign_id: str) -> tuple[str, int]:
    """The campaign's epoch and the ``seq`` of its newest event (0 before the first)."""
    row = db.execute(
        select(Campaign.epoch, Campaign.last_seq).where(Campaign.id == campaign_id)
    ).one_or_none()
    if row is None:
        raise _campaign_not_found(campaign_id)
    return row[0], row[1]
