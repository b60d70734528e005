"""The auth facade for the event loop: register, log in, refresh, log out, verify a token.

:class:`AuthService` is what the HTTP routes (``bridge/http/auth_routes.py``) and the WebSocket
gateway hold. Each method is a coroutine that raises
:class:`~ttrpg_mcp.bridge.errors.BridgeError` on refusal and does its blocking work off the
loop: database units of work through :meth:`BridgeStore.run`, Argon2 in worker threads.

Argon2 runs *between* transactions, never inside one, so a login does not hold SQLite's write
lock for the tenth of a second a hash takes; and at most :data:`MAX_CONCURRENT_HASHES` run at
once, since each takes 64 MiB and a burst of logins should queue rather than exhaust memory.
All methods are safe to cancel: a unit of work already started finishes or rolls back whole.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar, TypeVarTuple

import anyio
import anyio.to_thread
import structlog

from ttrpg_mcp.bridge.auth import agent_grants, api_keys, passwords, users
from ttrpg_mcp.bridge.auth.api_keys import KeyScope
from ttrpg_mcp.bridge.auth.schemas import TokenPair
from ttrpg_mcp.bridge.auth.signing_key import signing_key
from ttrpg_mcp.bridge.auth.tokens import TokenService
from ttrpg_mcp.bridge.errors import BridgeError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ttrpg_mcp.bridge.settings import BridgeSettings
    from ttrpg_mcp.bridge.store import BridgeStore
    from ttrpg_mcp.bridge.store.models import User

__all__ = ["MAX_CONCURRENT_HASHES", "NO_EXPIRY", "AuthService", "AuthenticatedUser"]

log = structlog.get_logger("ttrpg_mcp.bridge.auth")

_R = TypeVar("_R")
_Ts = TypeVarTuple("_Ts")

# Argon2 hashes at once: 4 x 64 MiB bounds the memory a burst of logins can take.
MAX_CONCURRENT_HASHES = 4
# token_expires_at of a session opened with an API key that never expires (9999-12-31).
NO_EXPIRY = 253_402_300_799


@dataclass(frozen=True, slots=True)
class AuthenticatedUser:
    """Who a verified access token belongs to, and until when (Unix seconds) it is good."""

    user_id: str
    name: str
    display_name: str
    token_expires_at: int
    # Set when the credential was an API key or a token issued for one: what it is limited to.
    scope: KeyScope | None = None
    # When a password sign-in (or its refresh) issued the access token; None for API keys.
    token_issued_at: int | None = None
    # The name of the OAuth client (an MCP agent) the token was issued to; None for people and keys.
    agent: str | None = None


class AuthService:
    """Accounts and tokens over one store; build it with :meth:`from_settings`."""

    def __init__(
        self,
        store: BridgeStore,
        tokens: TokenService,
        *,
        registration: Literal["open", "invite", "closed"] = "open",
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.registration = registration
        self._hashing = anyio.CapacityLimiter(MAX_CONCURRENT_HASHES)
        self._key_touched: dict[str, float] = {}  # API key id -> when last_used_at was written

    @classmethod
    def from_settings(cls, settings: BridgeSettings, store: BridgeStore) -> AuthService:
        """The service the settings describe; creates the signing key (file or row) on first use."""
        passwords.prepare_dummy_hash()
        tokens = TokenService(
            signing_key(settings, store),
            settings.jwt_algorithm,
            settings.access_token_ttl,
            settings.refresh_token_ttl,
        )
        return cls(store, tokens, registration=settings.registration)

    async def register(
        self,
        name: str,
        password: str,
        display_name: str | None = None,
        invite_code: str | None = None,
    ) -> TokenPair:
        """Create an account (as the registration mode allows) and log it in."""
        if self.registration == "closed":
            raise BridgeError("registration_closed", "this bridge does not accept new accounts")
        if self.registration == "invite" and not invite_code:
            raise BridgeError("registration_closed", "registration needs an invite code")
        users.check_name(name)
        users.check_display_name(display_name, name)
        passwords.check_password_policy(password)
        password_hash = await self._in_hashing_thread(passwords.hash_password, password)

        def create(db: Session) -> TokenPair:
            # One unit of work: if the name is taken, the invite is not spent.
            user = users.add_user_with_hash(db, name, password_hash, display_name)
            if self.registration == "invite":
                assert invite_code is not None
                users.consume_invite(db, invite_code)
            return self.tokens.issue_pair(db, user)

        pair = await self.store.run(create)
        log.info("user_registered", user_id=pair.user_info.id, user=pair.user_info.name)
        return pair

    async def login(self, name: str, password: str) -> TokenPair:
        """A new token pair (a new family) for valid credentials; ``invalid_credentials`` otherwise."""
        candidate = await self.store.run(lambda db: users.find_login(db, name), readonly=True)
        try:
            new_hash = await self._in_hashing_thread(users.check_login, candidate, password)
        except BridgeError:
            # Not the submitted name: people sometimes type their password into that field.
            log.info("login_refused", user_id=candidate.user_id if candidate else None)
            raise
        assert candidate is not None  # check_login raised otherwise

        def finish(db: Session) -> TokenPair:
            user = users.record_login(db, candidate.user_id, new_hash)
            return self.tokens.issue_pair(db, user)

        pair = await self.store.run(finish)
        log.info("login", user_id=pair.user_info.id, user=pair.user_info.name, rehashed=new_hash is not None)
        return pair

    async def check_password(self, name: str, password: str) -> None:
        """Confirm a signed-in person's password before something irreversible (deleting the account)."""
        candidate = await self.store.run(lambda db: users.find_login(db, name), readonly=True)
        await self._in_hashing_thread(users.check_login, candidate, password)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token: a new pair in its family, the old token spent."""
        try:
            return await self.store.run(lambda db: self.tokens.rotate(db, refresh_token))
        except BridgeError as error:
            # Reuse detection is worth a warning: it means a refresh token was copied.
            reused = (error.data or {}).get("reason") == "refresh_token_reuse"
            emit = log.warning if reused else log.info
            emit("refresh_refused", code=error.code, reason=error.message)
            raise

    async def logout(self, refresh_token: str) -> None:
        """End the session a refresh token belongs to (its whole family)."""
        await self.store.run(lambda db: self.tokens.logout(db, refresh_token))

    async def verify_access(self, token: str) -> AuthenticatedUser:
        """The user of a valid access token or API key; ``invalid_token``/``token_expired`` otherwise."""
        if api_keys.is_api_key(token):
            return await self._verify_key(token)
        if agent_grants.is_access_token(token):
            return await self._verify_agent(token)
        claims = self.tokens.decode_access(token)  # pure and fast: a bad token costs no thread

        def check(db: Session) -> tuple[User, KeyScope | None]:
            user = self.tokens.check_access(db, claims)
            return user, api_keys.live_key(db, claims.key_id) if claims.key_id else None

        user, scope = await self.store.run(check, readonly=True)
        return AuthenticatedUser(
            user_id=user.id,
            name=user.name,
            display_name=user.display_name,
            token_expires_at=int(claims.expires_at.timestamp()),
            scope=scope,
            token_issued_at=int(claims.issued_at.timestamp()) if claims.issued_at else None,
        )

    async def _verify_agent(self, token: str) -> AuthenticatedUser:
        # An OAuth access token of an authorized agent: the grant's campaign and role narrow it
        # like an API key's scope, and a revoked grant refuses it on the next request.
        agent = await self.store.run(lambda db: agent_grants.check_access_token(db, token), readonly=True)
        return AuthenticatedUser(
            user_id=agent.user.id,
            name=agent.user.name,
            display_name=agent.user.display_name,
            token_expires_at=int(agent.expires_at.timestamp()),
            scope=agent.scope,
            agent=agent.client_name,
        )

    async def _verify_key(self, key: str) -> AuthenticatedUser:
        # A read, so a bot's requests do not queue on the store's write lock; last_used_at is
        # written at most once a minute per key (and per process).
        user, scope, expires_at = await self.store.run(
            lambda db: api_keys.authenticate_key(db, key, touch=False), readonly=True
        )
        now = time.monotonic()
        if (
            now - self._key_touched.get(scope.key_id, -math.inf)
            >= api_keys.LAST_USED_RESOLUTION.total_seconds()
        ):
            self._key_touched[scope.key_id] = now
            await self.store.run(lambda db: api_keys.touch_key(db, scope.key_id))
        return AuthenticatedUser(
            user_id=user.id,
            name=user.name,
            display_name=user.display_name,
            token_expires_at=int(expires_at.timestamp()) if expires_at else NO_EXPIRY,
            scope=scope,
        )

    async def login_with_key(self, key: str) -> TokenPair:
        """A token pair (a new family) scoped like the API key ``key``, as the spike's login has it."""

        def issue(db: Session) -> TokenPair:
            user, scope, _expires = api_keys.authenticate_key(db, key)
            return self.tokens.issue_pair(db, user, key_id=scope.key_id)

        if not api_keys.is_api_key(key):
            raise BridgeError("invalid_credentials", "not an API key")
        try:
            pair = await self.store.run(issue)
        except BridgeError as error:
            log.info("login_refused", code=error.code, credential="api_key")
            raise BridgeError("invalid_credentials", "unknown, revoked or expired API key") from None
        log.info("login", user_id=pair.user_info.id, credential="api_key")
        return pair

    async def purge_expired_tokens(self) -> int:
        """Delete refresh-token rows, and agents' codes and tokens, past their expiry; worth calling
        at start and now and then."""

        def purge(db: Session) -> int:
            return self.tokens.purge_expired(db) + agent_grants.purge_expired(db)

        return await self.store.run(purge)

    async def _in_hashing_thread(self, fn: Callable[[*_Ts], _R], *args: *_Ts) -> _R:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._hashing)
