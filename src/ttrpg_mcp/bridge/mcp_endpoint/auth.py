"""Who is calling ``/mcp``: one bearer credential resolved to a principal bound to one campaign.

:func:`resolve_bearer` is the only place the endpoint reads a credential. It accepts what the
rest of the bridge accepts (an API key; an access token: a JWT from a sign-in or from a key's
login; or an OAuth access token of an agent a person authorized, see ``docs/oauth.md``),
verified by :meth:`AuthService.verify_access` on every HTTP request, so a revoked key or grant
or an expired token stops working at the next request.

An agent's session sits at exactly one table: the campaign its credential is scoped to. A
credential that names no campaign is refused with ``campaign_required`` rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ttrpg_mcp.bridge.auth import api_keys
from ttrpg_mcp.bridge.errors import BridgeError

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.auth.service import AuthenticatedUser, AuthService
    from ttrpg_mcp.bridge.permissions import Role

__all__ = ["RESOURCE_METADATA_PATH", "CredentialKind", "Principal", "resolve_bearer", "www_authenticate"]

# Where the protected-resource metadata (RFC 9728) lives; the 401 points MCP clients at it.
RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource"

CredentialKind = Literal["api_key", "access_token"]


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
