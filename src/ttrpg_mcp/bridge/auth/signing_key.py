"""The key that signs the bridge's tokens: configured, or generated once and kept on disk.

There is no built-in default secret (ARCHITECTURE decision 2): a bridge whose tokens anyone
could forge with a key from the source code is worse than one that does not start. When
``jwt_secret`` is not configured, the first start writes a random one to ``<data_dir>/jwt-secret``
(mode 0600) and every later start, and every other process on the same data directory, reads
it back, so tokens survive restarts.

The file appears atomically: the secret is written to a private temporary file (created with
``O_CREAT | O_EXCL`` and mode 0600, so it is never readable by others even for an instant) and
then hard-linked to its final name, which fails if another process got there first; the loser
reads the winner's key. A reader therefore never sees a half-written file. An existing file
that others may read is narrowed to 0600 with a warning rather than refused, since the key has
to keep working for the tokens already out there.

When a ``database_url`` is set (several nodes on one PostgreSQL database), the generated key is
kept in that database instead (table ``signing_keys``): the first node to start inserts one and
every node reads the row that won, so a token issued by one node is accepted by all of them. A
configured ``jwt_secret`` still wins over both; give every node the same one.

(The module is not called ``secrets`` so that it does not shadow the standard library's.)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ttrpg_mcp.bridge.store.models import SigningKey, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ttrpg_mcp.bridge.settings import BridgeSettings
    from ttrpg_mcp.bridge.store import BridgeStore

__all__ = [
    "SECRET_FILE_NAME",
    "load_or_create_secret",
    "load_or_create_shared_secret",
    "minimum_key_bytes",
    "signing_key",
]

SECRET_FILE_NAME = "jwt-secret"  # noqa: S105  # a file name, not the secret
_SHARED_KEY_NAME = "jwt"
# token_urlsafe(64) is 86 characters, 512 bits of entropy: enough for HS512, the largest.
_GENERATED_BYTES = 64
# RFC 7518 section 3.2: an HMAC key must be at least as long as the hash's output.
_MINIMUM_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}

log = structlog.get_logger("ttrpg_mcp.bridge.auth")


def minimum_key_bytes(algorithm: str) -> int:
    """The shortest key RFC 7518 allows for ``algorithm``."""
    return _MINIMUM_KEY_BYTES[algorithm]


def signing_key(settings: BridgeSettings, store: BridgeStore | None = None) -> str:
    """The configured ``jwt_secret``; else, with a ``database_url`` and ``store``, the one kept in
    the database; else the one kept in the data directory (made if missing)."""
    minimum = minimum_key_bytes(settings.jwt_algorithm)
    if settings.jwt_secret is not None:
        key = settings.jwt_secret.get_secret_value()
        if len(key.encode()) < minimum:
            raise ValueError(
                f"jwt_secret is {len(key.encode())} bytes; {settings.jwt_algorithm} needs at least "
                f"{minimum} (or leave it unset to have one generated)"
            )
        return key
    if settings.database_url is not None and store is not None:
        store.migrate()  # the key's table must exist before the first node can write it
        with store.session() as db:
            return load_or_create_shared_secret(db, minimum_bytes=minimum)
    return load_or_create_secret(settings.resolved_data_dir, minimum_bytes=minimum)


def load_or_create_shared_secret(db: Session, *, minimum_bytes: int = _GENERATED_BYTES) -> str:
    """The key in the store's ``signing_keys``, inserted first with a fresh random one if absent.

    Two nodes starting at once both try to insert; the primary key lets one win and the other
    (``ON CONFLICT DO NOTHING``) reads the winner's key.
    """
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.execute(
        insert(SigningKey)
        .values(name=_SHARED_KEY_NAME, secret=secrets.token_urlsafe(_GENERATED_BYTES), created_at=utcnow())
        .on_conflict_do_nothing()
    )
    key = db.scalars(select(SigningKey.secret).where(SigningKey.name == _SHARED_KEY_NAME)).one()
    if len(key.encode()) < minimum_bytes:
        raise ValueError(
            f"the stored signing key is shorter than {minimum_bytes} bytes; delete it to get a new one"
        )
    return key


def load_or_create_secret(data_dir: Path, *, minimum_bytes: int = _GENERATED_BYTES) -> str:
    """The secret in ``data_dir/jwt-secret``, written first with a fresh random one if absent."""
    path = data_dir / SECRET_FILE_NAME
    if not path.exists():
        _create(path, secrets.token_urlsafe(_GENERATED_BYTES))
    _narrow_permissions(path)
    key = path.read_text(encoding="utf-8").strip()
    if len(key.encode()) < minimum_bytes:
        raise ValueError(f"{path} holds a key shorter than {minimum_bytes} bytes; delete it to get a new one")
    return key


def _create(path: Path, key: str) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(temporary, path)
            log.info("signing_key_created", path=str(path))
    finally:
        temporary.unlink(missing_ok=True)


def _narrow_permissions(path: Path) -> None:
    if os.name != "posix":  # pragma: no cover - Windows has ACLs, not mode bits
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        path.chmod(0o600)
        log.warning("signing_key_permissions_narrowed", path=str(path), was=oct(mode), now="0o600")
