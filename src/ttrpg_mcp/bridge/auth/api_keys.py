"""API keys: long-lived credentials for bots, scripts and agents, kept only as their hash.

A key reads ``ttk_`` followed by 43 random URL-safe characters (256 bits). It is shown once, when
it is made; the store keeps its SHA-256 (:mod:`.digests`), so the row of a presented key is one
unique-index read away and a copy of the store holds nothing that authenticates, plus its
first :data:`PREFIX_LENGTH` characters so a listing can tell keys apart.

A key may be *scoped*: to one campaign (it cannot act in, create, join or claim any other) and
to a role, never higher than its owner's in that campaign when it is made. Whatever the owner's
role becomes later, a session authenticated by the key acts with at most the key's role
(:func:`scoped_role`). Scope travels in :class:`KeyScope`, which the access tokens issued by
``POST /api/auth/login {"apiKey"}`` carry as claims too, so a token got from a key is exactly as
narrow as the key, and stops working when the key is revoked or expires.

Every function takes the unit of work first and does no I/O of its own.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge import revocations
from ttrpg_mcp.bridge.auth.digests import secret_digest
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.permissions import ROLES, Role
from ttrpg_mcp.bridge.store.models import ApiKey, Membership, User, utcnow

__all__ = [
    "KEY_MARK",
    "LAST_USED_RESOLUTION",
    "MAX_KEYS_PER_USER",
    "PREFIX_LENGTH",
    "KeyScope",
    "authenticate_key",
    "create_key",
    "is_api_key",
    "key_view",
    "list_keys",
    "live_key",
    "revoke_key",
    "scoped_role",
    "touch_key",
]

KEY_MARK = "ttk_"
# "ttk_" and eight characters: enough to tell a user's keys apart, nothing to guess from.
PREFIX_LENGTH = 12
# Keys a user may hold at once: a bound on rows, far above what bots and scripts need.
MAX_KEYS_PER_USER = 50
# last_used_at is written at most this often per key, so a bot opening many connections does
# not take the store's write lock for each.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_RANK: dict[str, int] = {"spectator": 0, "player": 1, "gm": 2}
_NAME_LIMIT = 100


@dataclass(frozen=True, slots=True)
class KeyScope:
    """What a key (and every token issued for it) is limited to; ``None`` fields are unlimited."""

    key_id: str
    campaign_id: str | None = None
    role: Role | None = None


def is_api_key(token: str) -> bool:
    """Whether a presented credential is an API key (rather than a JWT)."""
    return token.startswith(KEY_MARK)


def scoped_role(scope: KeyScope | None, campaign_id: str, role: Role) -> Role:
    """The role a session acts with in ``campaign_id``: the member's, capped by the key's scope.

    ``forbidden`` when the key is limited to another campaign.
    """
    if scope is None:
        return role
    if scope.campaign_id is not None and scope.campaign_id != campaign_id:
        raise BridgeError(
            "forbidden", "this API key is limited to another campaign", {"campaign_id": campaign_id}
        )
    if scope.role is not None and _RANK[scope.role] < _RANK[role]:
        return scope.role
    return role


def _check_role(role: str | None) -> Role | None:
    if role is None:
        return None
    if role not in ROLES:
        raise BridgeError("invalid_message", f"no role {role!r}", {"field": "role"})
    return role


def create_key(
    db: Session,
    user_id: str,
    name: str,
    *,
    campaign_id: str | None = None,
    role: str | None = None,
    ttl_seconds: int | None = None,
) -> tuple[ApiKey, str]:
    """A new key of ``user_id``: its row and the key itself, which is never seen again.

    A role needs no campaign (it caps every campaign), but with a campaign it may not exceed
    the user's role there, and the user must be a member.
    """
    checked = _check_role(role)
    shown = name.strip()
    if not shown or len(shown) > _NAME_LIMIT or not shown.isprintable():
        raise BridgeError("invalid_message", "a key's name is 1-100 printable characters", {"field": "name"})
    if ttl_seconds is not None and ttl_seconds < 1:
        raise BridgeError("invalid_message", "a key's lifetime must be positive", {"field": "expires"})
    if campaign_id is not None:
        member_role = db.scalar(
            select(Membership.role).where(
                Membership.campaign_id == campaign_id, Membership.user_id == user_id
            )
        )
        if member_role is None:
            raise BridgeError("forbidden", "not a member of this campaign", {"campaign_id": campaign_id})
        if checked is not None and _RANK[checked] > _RANK[member_role]:
            raise BridgeError(
                "forbidden",
                f"a key's role may not exceed yours ({member_role})",
                {"role": checked, "your_role": member_role},
            )
    held = db.scalars(select(ApiKey.id).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))).all()
    if len(held) >= MAX_KEYS_PER_USER:
        raise BridgeError(
            "limit_reached",
            f"at most {MAX_KEYS_PER_USER} live keys per account; revoke one first",
            {"limit": MAX_KEYS_PER_USER, "kind": "api_keys"},
        )
    key = KEY_MARK + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiKey(
        id=f"key_{secrets.token_urlsafe(12)}",
        user_id=user_id,
        name=shown,
        prefix=key[:PREFIX_LENGTH],
        key_hash=secret_digest(key),
        campaign_id=campaign_id,
        role=checked,
        created_at=now,
        expires_at=None if ttl_seconds is None else now + timedelta(seconds=ttl_seconds),
    )
    db.add(row)
    db.flush()
    return row, key


def key_view(row: ApiKey) -> dict[str, object]:
    """What a listing shows of a key: everything but its hash."""

    def when(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "campaign_id": row.campaign_id,
        "role": row.role,
        "created_at": when(row.created_at),
        "expires_at": when(row.expires_at),
        "last_used_at": when(row.last_used_at),
        "revoked_at": when(row.revoked_at),
    }


def list_keys(db: Session, user_id: str) -> list[ApiKey]:
    """A user's keys, newest first, revoked ones included (so they can see what was revoked)."""
    return list(
        db.scalars(select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at.desc()))
    )


def revoke_key(
    db: Session, user_id: str | None, key_id: str, reason: str = revocations.KEY_REVOKED
) -> ApiKey:
    """Revoke a key of ``user_id`` (any user's when ``None``: the administrator's command line).

    The ledger row (with ``reason``, what its sessions are told) closes them on every node.
    """
    row = db.get(ApiKey, key_id)
    if row is None or (user_id is not None and row.user_id != user_id):
        raise BridgeError("not_found", "no such API key", {"key_id": key_id})
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        revocations.record(db, revocations.key_subject(row.id), reason)
    return row


def _usable(row: ApiKey | None, now: datetime) -> ApiKey:
    if row is None or row.revoked_at is not None:
        raise BridgeError("invalid_token", "unknown or revoked API key")
    if row.expires_at is not None and row.expires_at <= now:
        raise BridgeError("token_expired", "the API key has expired")
    return row


def _scope(row: ApiKey) -> KeyScope:
    return KeyScope(row.id, row.campaign_id, _check_role(row.role))


def authenticate_key(db: Session, key: str, *, touch: bool = True) -> tuple[User, KeyScope, datetime | None]:
    """The owner of a presented key, the key's scope and its expiry; refuses revoked and expired keys."""
    now = utcnow()
    row = _usable(db.scalar(select(ApiKey).where(ApiKey.key_hash == secret_digest(key))), now)
    user = db.get(User, row.user_id)
    if user is None or user.disabled:
        raise BridgeError("invalid_token", "the key's account is disabled or gone")
    if touch and (row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION):
        row.last_used_at = now
    return user, _scope(row), row.expires_at


def touch_key(db: Session, key_id: str) -> None:
    """Note that a key was just used (``last_used_at``)."""
    db.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))


def live_key(db: Session, key_id: str) -> KeyScope:
    """The scope of a key that is still good, for tokens issued for it; refuses it otherwise."""
    return _scope(_usable(db.get(ApiKey, key_id), utcnow()))
