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

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.settings import BridgeSettings

__all__ = ["SECRET_FILE_NAME", "load_or_create_secret", "minimum_key_bytes", "signing_key"]

SECRET_FILE_NAME = "jwt-secret"  # noqa: S105  # a file name, not the secret
# token_urlsafe(64) is 86 characters, 512 bits of entropy: enough for HS512, the largest.
_GENERATED_BYTES = 64
# RFC 7518 section 3.2: an HMAC key must be at least as long as the hash's output.
_MINIMUM_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}

log = structlog.get_logger("ttrpg_mcp.bridge.auth")


def minimum_key_bytes(algorithm: str) -> int:
    """The shortest key RFC 7518 allows for ``algorithm``."""
    return _MINIMUM_KEY_BYTES[algorithm]


def signing_key(settings: BridgeSettings) -> str:
    """The configured ``jwt_secret``, else the one kept in the data directory (made if missing)."""
    minimum = minimum_key_bytes(settings.jwt_algorithm)
    if settings.jwt_secret is not None:
        key = settings.jwt_secret.get_secret_value()
        if len(key.encode()) < minimum:
            raise ValueError(
                f"jwt_secret is {len(key.encode())} bytes; {settings.jwt_algorithm} needs at least "
                f"{minimum} (or leave it unset to have one generated)"
            )
        return key
    return load_or_create_secret(settings.resolved_data_dir, minimum_bytes=minimum)


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
