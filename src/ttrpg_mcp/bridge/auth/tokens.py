"""Access and refresh tokens: issue, verify, rotate, revoke.

Both kinds are HMAC-signed JWTs (PyJWT), told apart by a ``typ`` claim so neither can stand in
for the other. Decoding pins the one configured algorithm (no ``alg: none``, no algorithm
confusion) and requires every claim it reads.

* An **access token** (``typ: access``; ``sub``, ``name``, ``fam``, ``iat``, ``exp``, ``jti``) lives
  ``access_ttl`` seconds and is checked by signature, plus, in :meth:`TokenService.check_access`,
  against the store: its user must exist and not be disabled, and its family must not be revoked,
  so that logging out or a detected theft ends access at once rather than at expiry.
* A **refresh token** (``typ: refresh``; ``sub``, ``fam``, ``iat``, ``exp``, ``jti``) is also a row in
  ``refresh_tokens``. Each works once: :meth:`TokenService.rotate` marks it used and issues a new
  pair in the same *family* (the chain of tokens descending from one login). A used or revoked
  token presented again means two parties hold the chain, so the whole family is revoked and
  both must log in again (refresh token reuse detection, OAuth 2.0 Security BCP section 4.14).

Verification failures are ``token_expired`` for an expired token and ``invalid_token`` for
everything else (bad signature, wrong algorithm, wrong kind, malformed, revoked), with messages
that never echo the token.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import jwt
from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge.auth import api_keys
from ttrpg_mcp.bridge.auth.schemas import TokenPair, UserInfo
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.store.database import affected_rows
from ttrpg_mcp.bridge.store.models import RefreshToken, User, utcnow

__all__ = ["AccessClaims", "RefreshClaims", "TokenService", "revoke_family"]

# Clock skew tolerated between bridge nodes that share a store (for ``exp`` and ``iat``).
_LEEWAY_SECONDS = 5
_ACCESS_CLAIMS = ["exp", "iat", "sub", "jti", "typ", "name", "fam"]
_REFRESH_CLAIMS = ["exp", "iat", "sub", "jti", "typ", "fam"]
# (message, data["reason"]) of the two ways a known refresh token is refused.
_REUSE_DETECTED = ("refresh token reuse detected; please log in again", "refresh_token_reuse")
_REVOKED = ("the refresh token has been revoked; please log in again", "revoked")


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says."""

    user_id: str
    name: str
    jti: str
    family_id: str
    expires_at: datetime
    # The API key the token was issued for (login with ``apiKey``); the token is as narrow as
    # the key and dies with it.
    key_id: str | None = None
    issued_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefreshClaims:
    """What a verified refresh token says; its row in the store says whether it is still good."""

    user_id: str
    jti: str
    family_id: str
    expires_at: datetime
    key_id: str | None = None


def _key_claim(claims: dict[str, Any]) -> str | None:
    key = claims.get("key")
    if key is not None and not isinstance(key, str):
        raise BridgeError("invalid_token", "not a valid token")
    return key


class TokenService:
    """Signs and verifies the bridge's tokens with one secret and one pinned algorithm."""

    def __init__(
        self,
        secret: str,
        algorithm: str,
        access_ttl: int,
        refresh_ttl: int,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._secret = secret
        self.algorithm = algorithm
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._clock = clock

    def __repr__(self) -> str:  # never the secret
        return f"TokenService(algorithm={self.algorithm!r}, access_ttl={self.access_ttl})"

    # -- pure: encode and decode ----------------------------------------------------------------

    def _encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._secret, algorithm=self.algorithm)

    def _decode(
        self, token: str, typ: str, required: list[str], *, verify_exp: bool = True
    ) -> dict[str, Any]:
        kind = "an access" if typ == "access" else "a refresh"
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[self.algorithm],
                leeway=_LEEWAY_SECONDS,
                options={"require": required, "verify_exp": verify_exp},
            )
        except jwt.ExpiredSignatureError:
            raise BridgeError("token_expired", f"{kind} token has expired") from None
        except (jwt.InvalidTokenError, TypeError, ValueError):
            raise BridgeError("invalid_token", f"not a valid {typ} token") from None
        if claims.get("typ") != typ:
            raise BridgeError("invalid_token", f"this is not {kind} token")
        if not all(isinstance(claims[name], str) for name in required if name not in ("exp", "iat")):
            raise BridgeError("invalid_token", f"not a valid {typ} token")
        return claims

    def decode_access(self, token: str) -> AccessClaims:
        """The claims of a genuine, unexpired access token; raises ``token_expired`` or ``invalid_token``."""
        claims = self._decode(token, "access", _ACCESS_CLAIMS)
        return AccessClaims(
            user_id=claims["sub"],
            name=claims["name"],
            jti=claims["jti"],
            family_id=claims["fam"],
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            key_id=_key_claim(claims),
            issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        )

    def decode_refresh(self, token: str, *, verify_exp: bool = True) -> RefreshClaims:
        """The claims of a genuine refresh token (not yet checked against the store)."""
        claims = self._decode(token, "refresh", _REFRESH_CLAIMS, verify_exp=verify_exp)
        return RefreshClaims(
            user_id=claims["sub"],
            jti=claims["jti"],
            family_id=claims["fam"],
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            key_id=_key_claim(claims),
        )

    # -- with the store ---------------------------------------------------------------------------

    def issue_pair(
        self, db: Session, user: User, *, family_id: str | None = None, key_id: str | None = None
    ) -> TokenPair:
        """A new access and refresh token for ``user``; a new family unless ``family_id`` is given.

        With ``key_id`` both tokens name the API key they were issued for (claim ``key``).
        """
        now = self._clock()
        family_id = family_id or f"fam_{secrets.token_urlsafe(12)}"
        issued = int(now.timestamp())
        scope = {"key": key_id} if key_id is not None else {}
        access = self._encode(
            {
                **scope,
                "sub": user.id,
                "name": user.name,
                "typ": "access",
                "fam": family_id,
                "iat": issued,
                "exp": issued + self.access_ttl,
                "jti": secrets.token_urlsafe(16),
            }
        )
        refresh_jti = secrets.token_urlsafe(16)
        expires_at = now + timedelta(seconds=self.refresh_ttl)
        refresh = self._encode(
            {
                **scope,
                "sub": user.id,
                "typ": "refresh",
                "fam": family_id,
                "iat": issued,
                "exp": issued + self.refresh_ttl,
                "jti": refresh_jti,
            }
        )
        db.add(
            RefreshToken(
                jti=refresh_jti, user_id=user.id, family_id=family_id, issued_at=now, expires_at=expires_at
            )
        )
        db.flush()
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=self.access_ttl,
            user_info=UserInfo(
                id=user.id,
                username=user.name,
                name=user.name,
                display_name=user.display_name,
                is_admin=user.is_admin,
            ),
        )

    def check_access(self, db: Session, claims: AccessClaims) -> User:
        """The user of decoded access claims, refusing disabled users and revoked families."""
        user = db.get(User, claims.user_id)
        if user is None or user.disabled:
            raise BridgeError("invalid_token", "the token's account is disabled or gone")
        revoked = db.scalar(
            select(
                exists().where(
                    RefreshToken.family_id == claims.family_id, RefreshToken.revoked_at.is_not(None)
                )
            )
        )
        if revoked:
            raise BridgeError("invalid_token", "the token's session has been revoked; please log in again")
        if claims.key_id is not None:
            api_keys.live_key(db, claims.key_id)
        return user

    def authenticate_access(self, db: Session, token: str) -> User:
        """Decode an access token and load its user: the full check, signature to account."""
        return self.check_access(db, self.decode_access(token))

    def rotate(self, db: Session, refresh_token: str) -> TokenPair:
        """Exchange a refresh token for a new pair in its family; the old token is spent.

        A spent or revoked token revokes its whole family. That revocation is committed before
        ``invalid_token`` is raised, so the caller's rollback cannot undo it.
        """
        claims = self.decode_refresh(refresh_token)
        row = db.get(RefreshToken, claims.jti)
        if row is None or row.user_id != claims.user_id or row.family_id != claims.family_id:
            raise BridgeError("invalid_token", "unknown refresh token")
        now = self._clock()
        if row.revoked_at is not None:
            self._revoke_family_and_refuse(db, row.family_id, now, _REVOKED)
        if row.used_at is not None:
            self._revoke_family_and_refuse(db, row.family_id, now, _REUSE_DETECTED)
        if row.expires_at <= now:
            raise BridgeError("token_expired", "a refresh token has expired")
        user = db.get(User, row.user_id)
        if user is None or user.disabled:
            raise BridgeError("invalid_token", "the token's account is disabled or gone")
        if claims.key_id is not None:
            api_keys.live_key(db, claims.key_id)
        # Spend it with one conditional UPDATE: of two requests racing with the same token, one
        # wins and the other is treated as the reuse it is.
        spent = db.execute(
            update(RefreshToken)
            .where(
                RefreshToken.jti == row.jti, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None)
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if affected_rows(spent) != 1:
            self._revoke_family_and_refuse(db, row.family_id, now, _REUSE_DETECTED)
        return self.issue_pair(db, user, family_id=row.family_id, key_id=claims.key_id)

    def logout(self, db: Session, refresh_token: str) -> None:
        """Revoke the family of a refresh token; an expired but genuine token still logs out."""
        claims = self.decode_refresh(refresh_token, verify_exp=False)
        row = db.get(RefreshToken, claims.jti)
        if row is None or row.user_id != claims.user_id:
            raise BridgeError("invalid_token", "unknown refresh token")
        revoke_family(db, row.family_id, self._clock())

    def purge_expired(self, db: Session) -> int:
        """Delete refresh-token rows past their expiry (their tokens fail on ``exp`` anyway)."""
        result = db.execute(
            delete(RefreshToken)
            .where(RefreshToken.expires_at <= self._clock())
            .execution_options(synchronize_session=False)
        )
        return affected_rows(result)

    def _revoke_family_and_refuse(
        self, db: Session, family_id: str, now: datetime, why: tuple[str, str]
    ) -> NoReturn:
        revoke_family(db, family_id, now)
        db.commit()
        raise BridgeError("invalid_token", why[0], {"reason": why[1]})


def revoke_family(db: Session, family_id: str, now: datetime | None = None) -> int:
    """Revoke every not yet revoked token of a family; returns how many."""
    result = db.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result)
