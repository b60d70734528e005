"""The one-way form in which the bridge keeps bearer secrets: invite codes and API keys.

These secrets are random (at least 128 bits from :mod:`secrets`), so an unsalted SHA-256 is
enough: nobody can guess a preimage, and an unsalted digest can be looked up directly, which
keeps finding the row of a presented code a primary-key read. Passwords, which people choose,
go through Argon2 instead (:mod:`.passwords`).
"""

from __future__ import annotations

import hashlib

__all__ = ["secret_digest"]


def secret_digest(secret: str) -> str:
    """The hex SHA-256 of ``secret``: what the store holds in place of the secret itself."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
