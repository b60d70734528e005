"""Accounts and registration invites: create, authenticate, list, disable.

Every function takes the unit of work (a SQLAlchemy ``Session``) as its first argument and
does no I/O of its own, so the same code serves the async service (through
``BridgeStore.run``) and the synchronous admin commands.

Logging in is split in three so the slow part can run outside any transaction:
:func:`find_login` (read), :func:`check_login` (Argon2, no database) and :func:`record_login`
(write). :func:`authenticate` chains them for callers that do not mind holding a transaction.
Every way a login can fail (unknown name, wrong password, disabled account) raises the same
``invalid_credentials`` error after the same amount of hashing, so neither the answer nor its
timing tells which names exist.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge import revocations
from ttrpg_mcp.bridge.auth.digests import secret_digest
from ttrpg_mcp.bridge.auth.passwords import (
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_password,
    waste_a_verification,
)
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.store.database import affected_rows
from ttrpg_mcp.bridge.store.models import RefreshToken, RegistrationInvite, User, utcnow

__all__ = [
    "MAX_DISPLAY_NAME_LENGTH",
    "NAME_PATTERN",
    "LoginCandidate",
    "add_user",
    "add_user_with_hash",
    "authenticate",
    "check_display_name",
    "check_login",
    "check_name",
    "consume_invite",
    "create_invite",
    "disable_user",
    "find_login",
    "get_user",
    "list_users",
    "record_login",
    "revoke_user_tokens",
]

# ASCII only: names appear in logs, URLs and mentions, and look-alike letters from other
# scripts (a Cyrillic a for a Latin one) would let two accounts show the same name.
NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
MAX_DISPLAY_NAME_LENGTH = 100
_NAME = re.compile(NAME_PATTERN.removeprefix("^").removesuffix("$"))
_INVALID_CREDENTIALS = "unknown user, wrong password or disabled account"


def check_name(name: str) -> str:
    """``name`` if it is a valid login name, else ``invalid_message``."""
    if not _NAME.fullmatch(name):
        raise BridgeError(
            "invalid_message",
            "a name is 1-64 characters: letters, digits, '_', '-' or '.'",
            {"field": "name"},
        )
    return name


def check_display_name(display_name: str | None, name: str) -> str:
    """The display name to store: trimmed, defaulting to the login name."""
    shown = (display_name or "").strip() or name
    if len(shown) > MAX_DISPLAY_NAME_LENGTH or not shown.isprintable():
        raise BridgeError(
            "invalid_message",
            f"a display name is at most {MAX_DISPLAY_NAME_LENGTH} printable characters",
            {"field": "display_name"},
        )
    return shown


def add_user(db: Session, name: str, password: str, display_name: str | None = None) -> User:
    """Create an account; ``user_exists`` if the name is taken in any letter case."""
    check_name(name)
    check_password_policy(password)
    return add_user_with_hash(db, name, hash_password(password), display_name)


def add_user_with_hash(
    db: Session, name: str, password_hash: str, display_name: str | None = None, *, admin: bool = False
) -> User:
    """Create an account whose password the caller has already checked and hashed.

    The first account of an install is its administrator, so that whoever set the bridge up
    can claim the campaigns made outside it; later ones are administrators when ``admin``.
    """
    check_name(name)
    shown = check_display_name(display_name, name)
    if db.scalar(select(User.id).where(User.name_key == name.lower())) is not None:
        raise BridgeError("user_exists", f"the name {name!r} is taken", {"name": name})
    first = db.scalar(select(User.id).limit(1)) is None
    user = User(
        id=f"usr_{secrets.token_urlsafe(12)}",
        name=name,
        name_key=name.lower(),
        display_name=shown,
        password_hash=password_hash,
        disabled=False,
        is_admin=admin or first,
        created_at=utcnow(),
    )
    db.add(user)
    try:
        db.flush()
    except IntegrityError:  # the same name registered concurrently, between check and insert
        raise BridgeError("user_exists", f"the name {name!r} is taken", {"name": name}) from None
    return user


def get_user(db: Session, user_id: str) -> User | None:
    return db.get(User, user_id)


def _by_name(db: Session, name: str) -> User | None:
    return db.scalar(select(User).where(User.name_key == name.lower()))


def list_users(db: Session) -> list[User]:
    """Every account, by name."""
    return list(db.scalars(select(User).order_by(User.name_key)))


@dataclass(frozen=True, slots=True)
class LoginCandidate:
    """What a login needs to know about an account, read before the slow password check."""

    user_id: str
    password_hash: str = field(repr=False)
    disabled: bool


def find_login(db: Session, name: str) -> LoginCandidate | None:
    """The account ``name`` would log in to, if there is one."""
    user = _by_name(db, name)
    if user is None:
        return None
    return LoginCandidate(user.id, user.password_hash, user.disabled)


def check_login(candidate: LoginCandidate | None, password: str) -> str | None:
    """Verify ``password``; returns a fresh hash when the stored one should be upgraded.

    Raises ``invalid_credentials`` for a missing candidate, a wrong password or a disabled
    account, always after one Argon2 verification.
    """
    if candidate is None:
        waste_a_verification(password)
        raise BridgeError("invalid_credentials", _INVALID_CREDENTIALS)
    if not verify_password(candidate.password_hash, password) or candidate.disabled:
        raise BridgeError("invalid_credentials", _INVALID_CREDENTIALS)
    return hash_password(password) if needs_rehash(candidate.password_hash) else None


def record_login(db: Session, user_id: str, new_password_hash: str | None = None) -> User:
    """Note a successful login (and store an upgraded hash); the account may not be disabled."""
    user = db.get(User, user_id)
    if user is None or user.disabled:  # removed or disabled since find_login
        raise BridgeError("invalid_credentials", _INVALID_CREDENTIALS)
    user.last_login_at = utcnow()
    if new_password_hash is not None:
        user.password_hash = new_password_hash
    return user


def authenticate(db: Session, name: str, password: str) -> User:
    """The account ``name`` if ``password`` is its password; ``invalid_credentials`` otherwise."""
    candidate = find_login(db, name)
    new_hash = check_login(candidate, password)
    assert candidate is not None  # check_login raised otherwise
    return record_login(db, candidate.user_id, new_hash)


def revoke_user_tokens(db: Session, user_id: str) -> int:
    """Revoke every live refresh token of a user; returns how many were live."""
    result = db.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return affected_rows(result)


def disable_user(db: Session, name: str) -> User:
    """Disable an account: it can no longer log in, and every token it holds stops working."""
    user = _by_name(db, name)
    if user is None:
        raise BridgeError("not_found", f"no user named {name!r}", {"name": name})
    user.disabled = True
    revoke_user_tokens(db, user.id)
    revocations.record(db, revocations.user_subject(user.id), revocations.ACCOUNT_DISABLED)
    return user


def create_invite(
    db: Session, uses: int = 1, ttl_seconds: int = 7 * 86400, created_by: str | None = None
) -> str:
    """A new invite code good for ``uses`` registrations within ``ttl_seconds``."""
    if uses < 1 or ttl_seconds < 1:
        raise BridgeError("invalid_message", "an invite needs at least one use and a positive lifetime")
    code = secrets.token_urlsafe(18)
    now = utcnow()
    db.add(
        RegistrationInvite(
            code_hash=secret_digest(code),
            created_by=created_by,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
            uses_left=uses,
        )
    )
    db.flush()
    return code


def consume_invite(db: Session, code: str, *, now: datetime | None = None) -> None:
    """Use up one registration of an invite; ``registration_closed`` if it is unknown, spent or expired."""
    now = now or utcnow()
    # One conditional UPDATE, so two registrations racing for the last use cannot both win.
    result = db.execute(
        update(RegistrationInvite)
        .where(
            RegistrationInvite.code_hash == secret_digest(code),
            RegistrationInvite.uses_left > 0,
            RegistrationInvite.expires_at > now,
        )
        .values(uses_left=RegistrationInvite.uses_left - 1)
    )
    if affected_rows(result) != 1:
        raise BridgeError("registration_closed", "the invite code is unknown, used up or expired")
