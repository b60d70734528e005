"""Password hashing with Argon2id, and the rule a new password has to meet.

Argon2id with argon2-cffi's defaults (RFC 9106's second recommended profile: 64 MiB, three
passes) is deliberately slow, about a tenth of a second. Callers on the event loop run it in
a worker thread, and :class:`~ttrpg_mcp.bridge.auth.service.AuthService` keeps it outside any
database transaction so a login never holds SQLite's write lock while it hashes. When the
defaults change in a later argon2-cffi, :func:`needs_rehash` says so and the next successful
login stores a fresh hash.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ttrpg_mcp.bridge.errors import BridgeError

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "check_password_policy",
    "hash_password",
    "needs_rehash",
    "prepare_dummy_hash",
    "verify_password",
    "waste_a_verification",
]

MIN_PASSWORD_LENGTH = 8
# Argon2 accepts any length; the ceiling bounds what one request can make the bridge read and
# hash, and is far above any passphrase a person types.
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher()


def check_password_policy(password: str) -> None:
    """Refuse a new password that is too short (or absurdly long) with ``invalid_message``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BridgeError(
            "invalid_message",
            f"the password must be at least {MIN_PASSWORD_LENGTH} characters",
            {"field": "password"},
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BridgeError(
            "invalid_message",
            f"the password must be at most {MAX_PASSWORD_LENGTH} characters",
            {"field": "password"},
        )


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` in PHC string form (salt and parameters included)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; a corrupt hash never matches."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def _dummy_hash() -> str:
    return _hasher.hash("not a password anyone has: it only burns time")


def prepare_dummy_hash() -> None:
    """Make the stand-in hash now, so the first login of an unknown name is not the slowest."""
    _dummy_hash()


def waste_a_verification(password: str) -> None:
    """Spend the time a real verification would, so an unknown name answers as slowly as a known one."""
    verify_password(_dummy_hash(), password)
