"""Who is calling ``/mcp``: one bearer credential resolved to a principal bound to one campaign.

:func:`resolve_bearer` is the only place the endpoint reads a credential. It accepts what the
rest of the bridge accepts (an API key; an access token: a JWT from a sign-in or from a key's
login; or an OAuth access token of an agent a person authorized, see ``docs/oauth.md``),
verified by :meth:`AuthService.verify_access` on every HTTP request, so a revoked key or grant
or an expired token stops working at the next request.

An agent's session sits at exactly one table: the campaign its credential is scoped to. A
credential that names no campaign is refused with ``campaign_required`` rather than guessed.

Verifying an API key is a read of the store in a worker thread, and an agent sends one HTTP
request per MCP message: it was the largest cost ``/mcp`` had over a WebSocket, which
authenticates once. :class:`VerifiedKeys` remembers a verified API key's principal for
:data:`RECHECK_AFTER` seconds, and forgets it the moment the key or its account is withdrawn:
every withdrawal reaches :meth:`Bridge.cut_subject <ttrpg_mcp.bridge.runtime.Bridge.cut_subject>`,
at once on the node that withdrew it and within the revocation ledger's poll on the others (the
bound open WebSockets have too). Access tokens (sign-ins, OAuth agents) are verified on every
request as before: their revocations (a reused refresh token, a withdrawn grant) are not all in
the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ttrpg_mcp.bridge import revocations
from ttrpg_mcp.bridge.auth import api_keys
from ttrpg_mcp.bridge.auth.digests import secret_digest
from ttrpg_mcp.bridge.errors import BridgeError

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.auth.service import AuthenticatedUser, AuthService
    from ttrpg_mcp.bridge.permissions import Role

__all__ = [
    "RECHECK_AFTER",
    "RESOURCE_METADATA_PATH",
    "CredentialKind",
    "Principal",
    "VerifiedKeys",
    "resolve_bearer",
    "www_authenticate",
]

# Where the protected-resource metadata (RFC 9728) lives; the 401 points MCP clients at it.
RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource"

CredentialKind = Literal["api_key", "access_token"]

# How long a verified API key is taken on trust: a backstop, since withdrawals evict at once;
# also how stale a renamed account's display name may be. Each recheck also notes last_used_at.
RECHECK_AFTER = 10.0
# Keys remembered at most (the oldest verification is forgotten first).
MAX_REMEMBERED_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller of ``/mcp``: the user, the one campaign, and what the credential is."""

    user: AuthenticatedUser
    campaign_id: str
    kind: CredentialKind
    # The most the credential allows at the table; the member's own role caps it further.
    role: Role | None = None
    # The OAuth client the credential was issued to, when it names one.
    client: str | None = None

    @property
    def credential_id(self) -> str:
        """What identifies the credential across requests (a session stays with its credential)."""
        scope = self.user.scope
        if scope is not None:
            return f"key:{scope.key_id}"
        return f"user:{self.user.user_id}:{self.client or ''}"


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header; ``unauthenticated`` without one."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BridgeError("unauthenticated", "send Authorization: Bearer <API key or access token>")
    return token.strip()


async def resolve_bearer(auth: AuthService, authorization: str | None) -> Principal:
    """The principal of an ``Authorization`` header, or the :class:`BridgeError` that refuses it."""
    token = bearer_token(authorization)
    user = await auth.verify_access(token)
    kind: CredentialKind = "api_key" if api_keys.is_api_key(token) else "access_token"
    scope = user.scope
    if scope is None or scope.campaign_id is None:
        raise BridgeError(
            "campaign_required",
            "this credential is not bound to a campaign: connect through OAuth (the consent page "
            "binds the agent to one campaign), or with an API key for one campaign "
            "(POST /api/auth/api-keys with campaign_id)",
        )
    return Principal(user=user, campaign_id=scope.campaign_id, kind=kind, role=scope.role, client=user.agent)


def www_authenticate(base_url: str, error: BridgeError | None = None) -> str:
    """The ``WWW-Authenticate`` challenge of a refusal: where to learn how to get a token."""
    challenge = f'Bearer resource_metadata="{base_url.rstrip("/")}{RESOURCE_METADATA_PATH}"'
    if error is not None and error.code in ("invalid_token", "token_expired", "invalid_credentials"):
        challenge += ', error="invalid_token"'
    return challenge


class VerifiedKeys:
    """API keys verified lately, by digest: their principal until withdrawn, expired or rechecked.

    A verification that was under way when a withdrawal arrived is not remembered (its read may
    predate the withdrawal): :meth:`generation` taken before verifying must still hold when
    :meth:`remember` is called.
    """

    def __init__(
        self,
        recheck_after: float = RECHECK_AFTER,
        max_keys: int = MAX_REMEMBERED_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._recheck_after = recheck_after
        self._max_keys = max_keys
        self._clock = clock
        # digest -> (when verified, principal, the ledger subjects that withdraw it)
        self._keys: dict[str, tuple[float, Principal, frozenset[str]]] = {}
        self._generation = 0

    @property
    def generation(self) -> int:
        """Moves at every withdrawal this node hears of."""
        return self._generation

    def principal(self, token: str) -> Principal | None:
        """The remembered principal of API key ``token``, if it is still to be trusted."""
        digest = secret_digest(token)
        held = self._keys.get(digest)
        if held is None:
            return None
        verified_at, principal, _subjects = held
        if (
            self._clock() - verified_at >= self._recheck_after
            or time.time() >= principal.user.token_expires_at
        ):
            del self._keys[digest]
            return None
        return principal

    def remember(self, token: str, principal: Principal, generation: int) -> None:
        """Keep an API key's principal, unless a withdrawal arrived since ``generation`` was read."""
        scope = principal.user.scope
        if principal.kind != "api_key" or scope is None or generation != self._generation:
            return
        subjects = frozenset(
            {revocations.key_subject(scope.key_id), revocations.user_subject(principal.user.user_id)}
        )
        digest = secret_digest(token)
        self._keys.pop(digest, None)
        self._keys[digest] = (self._clock(), principal, subjects)
        while len(self._keys) > self._max_keys:
            del self._keys[next(iter(self._keys))]

    def forget(self, subject: str) -> None:
        """A key or an account (a ledger subject) was withdrawn: verify its keys again."""
        self._generation += 1
        for digest in [d for d, (_at, _principal, subjects) in self._keys.items() if subject in subjects]:
            del self._keys[digest]
