"""The MCP SDK's authorization-server provider, over the bridge's store.

The SDK's handlers (``mcp.server.auth.handlers``) do the OAuth 2.1 protocol work: parsing and
validating requests, redirect URI and scope checks, PKCE (S256 only), code expiry, error
bodies. :class:`BridgeOAuthProvider` implements the provider protocol they call, backed by
:mod:`ttrpg_mcp.bridge.auth.agent_grants`; :class:`HashedSecretAuthenticator` replaces the SDK's
client authenticator, which compares client secrets in clear text, with one that compares
digests, since the store keeps no client secret.

``authorize`` does not decide anything: it keeps the request and sends the browser to the web
app's consent page (``/oauth/consent``), where the signed-in person picks the campaign and role
and the bridge redirects back to the client (see ``bridge/http/oauth_routes.py``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from typing import Any
from urllib.parse import quote, unquote, urlparse

import structlog
from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    IdentityAssertionParams,
    RefreshToken,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl
from starlette.requests import Request

from ttrpg_mcp.bridge.auth import agent_grants
from ttrpg_mcp.bridge.auth.digests import secret_digest
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.store import BridgeStore

__all__ = ["CONSENT_PATH", "BridgeOAuthProvider", "HashedSecretAuthenticator"]

log = structlog.get_logger("ttrpg_mcp.bridge.oauth")

# The web app's consent page (web/src/routes/oauth/consent).
CONSENT_PATH = "/oauth/consent"
# The one resource these tokens are for: the bridge's MCP endpoint.
MCP_PATH = "/mcp"


class _Code(AuthorizationCode):
    grant_id: str


class _Refresh(RefreshToken):
    grant_id: str


class _Access(AccessToken):
    grant_id: str


def _token_fields(record: Any) -> dict[str, Any]:
    """What a stored access or refresh token tells the SDK: one mapping serves both kinds."""
    return {
        "client_id": record.client_id,
        "scopes": record.scopes,
        "expires_at": int(record.expires_at.timestamp()),
        "resource": record.resource,
        "subject": record.user_id,
        "grant_id": record.grant_id,
    }


def _is_mcp_resource(resource: str) -> bool:
    # The bridge is its own authorization server with one protected resource, /mcp. The host is
    # not compared: behind a proxy the bridge may not know the name clients use for it.
    return urlparse(resource).path.rstrip("/") == MCP_PATH


class BridgeOAuthProvider:
    """``OAuthAuthorizationServerProvider`` for the SDK's handlers, over the bridge's store."""

    def __init__(self, store: BridgeStore, access_ttl: int, refresh_ttl: int) -> None:
        self.store = store
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    # -- clients ----------------------------------------------------------------------------------

    async def client_with_digest(
        self, client_id: str
    ) -> tuple[OAuthClientInformationFull, str | None] | None:
        """A registered client and its secret's digest (``None`` for a public client)."""
        found = await self.store.run(lambda db: agent_grants.client_info(db, client_id), readonly=True)
        if found is None:
            return None
        metadata, digest = found
        return OAuthClientInformationFull.model_validate(metadata), digest

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        found = await self.client_with_digest(client_id)
        return None if found is None else found[0]

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        metadata = client_info.model_dump(mode="json", exclude_none=True)
        await self.store.run(lambda db: agent_grants.register_client(db, metadata))
        log.info(
            "oauth_client_registered", client_id=client_info.client_id, client_name=client_info.client_name
        )

    # -- authorization ----------------------------------------------------------------------------

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        if params.resource is not None and not _is_mcp_resource(params.resource):
            raise AuthorizeError("invalid_target", f"this server's resource is {MCP_PATH}")
        assert client.client_id is not None
        client_id = client.client_id
        request_id = await self.store.run(
            lambda db: agent_grants.start_request(
                db,
                client_id=client_id,
                redirect_uri=str(params.redirect_uri),
                redirect_uri_explicit=params.redirect_uri_provided_explicitly,
                code_challenge=params.code_challenge,
                state=params.state,
                scopes=params.scopes or [],
                resource=params.resource,
            )
        )
        return f"{CONSENT_PATH}?request={quote(request_id)}"

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> _Code | None:
        client_id = client.client_id or ""
        record = await self.store.run(lambda db: agent_grants.load_code(db, client_id, authorization_code))
        if record is None:
            return None
        return _Code(
            code=authorization_code,
            scopes=record.scopes,
            expires_at=record.expires_at.timestamp(),
            client_id=client_id,
            code_challenge=record.code_challenge,
            redirect_uri=AnyUrl(record.redirect_uri),
            redirect_uri_provided_explicitly=record.redirect_uri_explicit,
            resource=record.resource,
            subject=record.user_id,
            grant_id=record.grant_id,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: _Code
    ) -> OAuthToken:
        def exchange(db: Any) -> agent_grants.IssuedTokens:
            agent_grants.spend_code(db, authorization_code.code, authorization_code.grant_id)
            return agent_grants.issue_tokens(
                db, authorization_code.grant_id, self.access_ttl, self.refresh_ttl
            )

        return await self._issue(exchange, "authorization code")

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> _Refresh | None:
        client_id = client.client_id or ""
        record = await self.store.run(lambda db: agent_grants.load_refresh(db, client_id, refresh_token))
        if record is None:
            return None
        return _Refresh(token=refresh_token, **_token_fields(record))

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: _Refresh, scopes: list[str]
    ) -> OAuthToken:
        def exchange(db: Any) -> agent_grants.IssuedTokens:
            agent_grants.spend_refresh(db, refresh_token.token, refresh_token.grant_id)
            return agent_grants.issue_tokens(db, refresh_token.grant_id, self.access_ttl, self.refresh_ttl)

        return await self._issue(exchange, "refresh token")

    async def _issue(self, exchange: Any, what: str) -> OAuthToken:
        try:
            issued: agent_grants.IssuedTokens = await self.store.run(exchange)
        except BridgeError as error:
            log.warning("oauth_exchange_refused", grant=what, reason=error.message)
            raise TokenError("invalid_grant", f"this {what} is no longer valid: {error.message}") from None
        return OAuthToken(
            access_token=issued.access_token,
            token_type="Bearer",  # noqa: S106  # the scheme's name, not a secret
            expires_in=issued.expires_in,
            scope=" ".join(issued.scopes) or None,
            refresh_token=issued.refresh_token,
        )

    # -- tokens -----------------------------------------------------------------------------------

    async def load_access_token(self, token: str) -> _Access | None:
        if not agent_grants.is_access_token(token):
            return None
        record = await self.store.run(lambda db: agent_grants.load_access(db, token), readonly=True)
        if record is None:
            return None
        return _Access(token=token, **_token_fields(record))

    async def exchange_identity_assertion(
        self, client: OAuthClientInformationFull, params: IdentityAssertionParams
    ) -> OAuthToken:
        # Enterprise identity assertions (SEP-990) are not offered: people consent on the page.
        raise TokenError("unsupported_grant_type", "only the authorization code and refresh grants")

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        await self.store.run(lambda db: agent_grants.revoke_token(db, token.token))
        log.info("oauth_token_revoked", client_id=token.client_id)


def _presented_secret(
    request: Request, form_secret: object, method: str | None, client_id: str
) -> str | None:
    if method == "client_secret_basic":
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            raise AuthenticationError("Missing or invalid Basic authentication in Authorization header")
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise AuthenticationError("Invalid Basic authentication header") from None
        basic_id, sep, secret = decoded.partition(":")
        if not sep or unquote(basic_id) != client_id:
            raise AuthenticationError("Client ID mismatch in Basic auth")
        return unquote(secret)
    return form_secret if isinstance(form_secret, str) else None


class HashedSecretAuthenticator(ClientAuthenticator):
    """The SDK's client authentication for ``/token`` and ``/revoke``, against stored digests."""

    def __init__(self, provider: BridgeOAuthProvider) -> None:
        super().__init__(provider)
        self._clients = provider

    async def authenticate_request(self, request: Request) -> OAuthClientInformationFull:
        form = await request.form()
        client_id = form.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            raise AuthenticationError("Missing client_id")
        found = await self._clients.client_with_digest(client_id)
        if found is None:
            raise AuthenticationError("Invalid client_id")
        client, digest = found
        method = client.token_endpoint_auth_method
        if method == "none":
            return client  # a public client: PKCE is its proof
        presented = _presented_secret(request, form.get("client_secret"), method, client_id)
        if digest is None or presented is None:
            raise AuthenticationError("Client secret is required")
        if not hmac.compare_digest(digest, secret_digest(presented)):
            raise AuthenticationError("Invalid client_secret")
        if client.client_secret_expires_at and client.client_secret_expires_at < int(time.time()):
            raise AuthenticationError("Client secret has expired")
        return client
