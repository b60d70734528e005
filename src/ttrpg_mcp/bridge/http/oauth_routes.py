"""OAuth 2.1 for remote MCP clients: the authorization server's endpoints, consent and agent lists.

The protocol endpoints are the MCP SDK's handlers over :class:`BridgeOAuthProvider`:

* ``GET /.well-known/oauth-protected-resource`` (and ``.../mcp``, RFC 9728): the resource is
  ``<base>/mcp`` and this bridge is its authorization server.
* ``GET /.well-known/oauth-authorization-server`` (RFC 8414).
* ``POST /register`` (RFC 7591), throttled per address; ``GET /authorize`` (code + PKCE S256);
  ``POST /token`` (code and refresh grants); ``POST /revoke`` (RFC 7009).

``<base>`` is the ``public_url`` setting, or else the address each request came to. The
consent page of the web app talks to two JSON routes, which need a signed-in person (not an API
key, not an agent): ``GET /api/oauth/consent?request=`` shows the pending request and the
campaigns the person could grant, ``POST /api/oauth/consent`` approves (campaign and role) or
denies and answers with the client address to send the browser to. The request id travels in
the query or the body, never the path, which the request log records.

Authorized agents: ``GET/DELETE /api/me/agents[/{id}]`` for the person who authorized them,
``GET/DELETE /api/campaigns/{id}/authorized-agents[/{agent_id}]`` for the campaign's GM, whether
the agent is at the table now or not (``DELETE /api/campaigns/{id}/agents/{participant_id}``
takes one that is seated). Revoking ends the agent's tokens and closes its live connections at
once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, FastAPI, Query, Request, Response
from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.revoke import RevocationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.json_response import PydanticJSONResponse
from mcp.server.auth.routes import build_metadata
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE, RequestBodyLimitMiddleware
from mcp.shared.auth import OAuthMetadata, ProtectedResourceMetadata
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse
from starlette.routing import Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from ttrpg_mcp.bridge import audit, campaigns, revocations
from ttrpg_mcp.bridge.auth import agent_grants
from ttrpg_mcp.bridge.auth.service import AuthenticatedUser
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.http.audit_trail import client_address
from ttrpg_mcp.bridge.http.auth_routes import error_responses, get_auth
from ttrpg_mcp.bridge.http.campaign_routes import CurrentUser
from ttrpg_mcp.bridge.http.oauth_provider import MCP_PATH, BridgeOAuthProvider, HashedSecretAuthenticator
from ttrpg_mcp.bridge.permissions import Role
from ttrpg_mcp.bridge.ratelimit import AddressThrottle

__all__ = [
    "AgentList",
    "AgentView",
    "ConsentDecision",
    "ConsentOutcome",
    "ConsentRequestView",
    "install_oauth",
    "router",
]

log = structlog.get_logger("ttrpg_mcp.bridge.oauth")

_AUTH_ERRORS = ("unauthenticated", "invalid_token", "token_expired")
# The scope an MCP client gets when it asks for none; the bridge has one kind of access.
_SCOPES = ["mcp"]


def _base_url(request: Request) -> str:
    configured: str | None = getattr(request.app.state.bridge.settings, "public_url", None)
    return (configured or str(request.base_url)).rstrip("/")


def _person(user: AuthenticatedUser, doing: str) -> None:
    # An API key or an agent's token must never approve or revoke agents: only a signed-in person.
    if user.scope is not None:
        raise BridgeError("forbidden", f"only a signed-in person may {doing}")


# -- the protocol endpoints ------------------------------------------------------------------------


async def _authorization_server_metadata(request: Request) -> Response:
    base = _base_url(request)
    built = build_metadata(
        AnyHttpUrl(base), None, ClientRegistrationOptions(enabled=True), RevocationOptions(enabled=True)
    )
    # Validated again from plain strings so the issuer keeps its exact form (no trailing slash:
    # RFC 8414 compares issuers as strings). Public clients (no secret, PKCE only) are what
    # most MCP clients are.
    metadata = OAuthMetadata.model_validate(
        {
            **built.model_dump(mode="json", exclude_none=True),
            "issuer": base,
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "scopes_supported": _SCOPES,
        }
    )
    return PydanticJSONResponse(content=metadata, headers={"Cache-Control": "no-store"})


async def _protected_resource_metadata(request: Request) -> Response:
    base = _base_url(request)
    metadata = ProtectedResourceMetadata.model_validate(
        {
            "resource": base + MCP_PATH,
            "authorization_servers": [base],
            "scopes_supported": _SCOPES,
            "resource_name": "ttrpg-bridge",
        }
    )
    return PydanticJSONResponse(content=metadata, headers={"Cache-Control": "no-store"})


class _Throttled:
    """Dynamic client registration is open to anyone: a per-address budget bounds the rows it adds."""

    def __init__(self, app: ASGIApp, throttle: AddressThrottle) -> None:
        self.app = app
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self.throttle.check(client_address(Request(scope)))
        except BridgeError as error:
            body = {"error": "temporarily_unavailable", "error_description": error.message}
            await JSONResponse(body, status_code=429)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _limited(app: ASGIApp) -> ASGIApp:
    return RequestBodyLimitMiddleware(app, DEFAULT_MAX_REQUEST_BODY_SIZE)


def install_oauth(app: FastAPI, provider: BridgeOAuthProvider, registrations_per_minute: int) -> None:
    """Add the OAuth endpoints (SDK handlers) and the consent and agent routes to ``app``."""
    authenticator = HashedSecretAuthenticator(provider)
    registration = RegistrationHandler(
        provider, ClientRegistrationOptions(enabled=True, default_scopes=_SCOPES)
    )
    throttle = AddressThrottle(registrations_per_minute)
    routes = [
        Route("/.well-known/oauth-authorization-server", _authorization_server_metadata, methods=["GET"]),
        Route("/.well-known/oauth-protected-resource", _protected_resource_metadata, methods=["GET"]),
        Route(
            f"/.well-known/oauth-protected-resource{MCP_PATH}", _protected_resource_metadata, methods=["GET"]
        ),
        Route(
            "/authorize",
            _limited(request_response(AuthorizationHandler(provider).handle)),
            methods=["GET", "POST"],
        ),
        Route(
            "/token",
            _limited(request_response(TokenHandler(provider, authenticator).handle)),
            methods=["POST"],
        ),
        Route(
            "/register",
            _Throttled(_limited(request_response(registration.handle)), throttle),
            methods=["POST"],
        ),
        Route(
            "/revoke",
            _limited(request_response(RevocationHandler(provider, authenticator).handle)),
            methods=["POST"],
        ),
    ]
    app.router.routes.extend(routes)
    app.include_router(router)


# -- consent ---------------------------------------------------------------------------------------


class GrantableCampaign(BaseModel):
    """A campaign the person may let the agent into, with their own role (the highest it may get)."""

    id: str
    name: str
    role: Role


class ConsentRequestView(BaseModel):
    """A pending authorization request, as the consent page shows it."""

    client_id: str
    client_name: str = Field(description="As the client registered itself: not verified.")
    client_uri: str | None
    redirect_uri: str = Field(description="Where the answer goes: the page shows its host.")
    scopes: list[str]
    expires_at: datetime
    campaigns: list[GrantableCampaign]


class ConsentDecision(BaseModel):
    """Approve (with the campaign and the agent's role) or deny a pending request."""

    model_config = ConfigDict(extra="forbid")

    request: str = Field(min_length=1, max_length=200, description="The id from the consent page's address.")
    approve: bool
    campaign_id: str | None = Field(default=None, max_length=64)
    role: Role | None = Field(default=None, description="The agent's role: not above yours there.")


class ConsentOutcome(BaseModel):
    """Where to send the browser: the client's redirect URI with the code and state, or the error."""

    redirect_to: str


router = APIRouter(tags=["oauth"])


@router.get(
    "/api/oauth/consent",
    summary="A pending authorization request of an MCP client, for the consent page.",
    responses=error_responses(*_AUTH_ERRORS, "forbidden", "not_found"),
)
async def consent_request(
    user: CurrentUser,
    request: Request,
    response: Response,
    request_id: Annotated[str, Query(alias="request", max_length=200)],
) -> ConsentRequestView:
    _person(user, "authorize agents")
    response.headers["Cache-Control"] = "no-store"
    view = await get_auth(request).store.run(
        lambda db: agent_grants.pending_view(db, request_id, user.user_id), readonly=True
    )
    return ConsentRequestView(
        client_id=view.client_id,
        client_name=view.client_name,
        client_uri=view.client_uri,
        redirect_uri=view.redirect_uri,
        scopes=view.scopes,
        expires_at=view.expires_at,
        campaigns=[GrantableCampaign(id=c.id, name=c.name, role=c.role) for c in view.campaigns],
    )


@router.post(
    "/api/oauth/consent",
    summary="Approve or deny a pending authorization request; answers where to send the browser.",
    responses=error_responses(*_AUTH_ERRORS, "invalid_message", "forbidden", "not_found"),
)
async def decide_consent(
    body: ConsentDecision, user: CurrentUser, request: Request, response: Response
) -> ConsentOutcome:
    _person(user, "authorize agents")
    response.headers["Cache-Control"] = "no-store"
    if body.approve and (body.campaign_id is None or body.role is None):
        raise BridgeError(
            "invalid_message", "approving needs a campaign_id and a role", {"field": "campaign_id"}
        )

    def decide(db: Session) -> str:
        if not body.approve:
            return agent_grants.deny(db, body.request)
        assert body.campaign_id is not None
        assert body.role is not None
        target = agent_grants.approve(db, body.request, user.user_id, body.campaign_id, body.role)
        audit.record(
            db,
            campaign_id=body.campaign_id,
            user_id=user.user_id,
            action="agent_authorized",
            target=None,
            result="ok",
            detail={"role": body.role},
        )
        return target

    target = await get_auth(request).store.run(decide)
    log.info("oauth_consent", user_id=user.user_id, approved=body.approve, campaign_id=body.campaign_id)
    return ConsentOutcome(redirect_to=target)


# -- authorized agents -----------------------------------------------------------------------------


class AgentView(BaseModel):
    """An agent authorized to act for someone in a campaign."""

    id: str
    client_id: str
    client_name: str
    user_id: str
    user_name: str
    campaign_id: str
    campaign_name: str
    role: Role
    created_at: datetime


class AgentList(BaseModel):
    """Authorized agents, newest first (revoked ones are gone)."""

    agents: list[AgentView]


def _agent_list(views: list[agent_grants.GrantView]) -> AgentList:
    return AgentList(agents=[AgentView.model_validate(view, from_attributes=True) for view in views])


def _cut(request: Request, agent_id: str) -> None:
    request.app.state.bridge.cut_connections(revocations.AGENT_REVOKED, key_id=agent_id)


@router.get(
    "/api/me/agents",
    summary="The agents (MCP clients) the caller has authorized.",
    responses=error_responses(*_AUTH_ERRORS, "forbidden"),
)
async def my_agents(user: CurrentUser, request: Request) -> AgentList:
    _person(user, "list authorized agents")
    views = await get_auth(request).store.run(
        lambda db: agent_grants.grants_of_user(db, user.user_id), readonly=True
    )
    return _agent_list(views)


@router.delete(
    "/api/me/agents/{agent_id}",
    status_code=204,
    summary="Revoke an agent the caller authorized: its tokens and connections end now.",
    responses=error_responses(*_AUTH_ERRORS, "forbidden", "not_found"),
)
async def revoke_my_agent(agent_id: str, user: CurrentUser, request: Request) -> None:
    _person(user, "revoke agents")

    def revoke(db: Session) -> None:
        agent_grants.revoke_grant(db, agent_id, by=user.user_id, user_id=user.user_id)

    await get_auth(request).store.run(revoke)
    _cut(request, agent_id)
    log.info("agent_revoked", agent_id=agent_id, by=user.user_id)


def _require_gm(db: Session, campaign_id: str, user: AuthenticatedUser) -> None:
    if campaigns.require_role(db, campaign_id, user.user_id) != "gm":
        raise BridgeError("forbidden", "only the campaign's GM sees and revokes its agents")


@router.get(
    "/api/campaigns/{campaign_id}/authorized-agents",
    summary="The agents authorized in a campaign (GM only).",
    responses=error_responses(*_AUTH_ERRORS, "forbidden"),
)
async def campaign_agents(campaign_id: str, user: CurrentUser, request: Request) -> AgentList:
    _person(user, "list a campaign's agents")

    def listed(db: Session) -> list[agent_grants.GrantView]:
        _require_gm(db, campaign_id, user)
        return agent_grants.grants_of_campaign(db, campaign_id)

    return _agent_list(await get_auth(request).store.run(listed, readonly=True))


@router.delete(
    "/api/campaigns/{campaign_id}/authorized-agents/{agent_id}",
    status_code=204,
    summary="Revoke an agent in a campaign (GM only): its tokens and connections end now.",
    responses=error_responses(*_AUTH_ERRORS, "forbidden", "not_found"),
)
async def revoke_campaign_agent(campaign_id: str, agent_id: str, user: CurrentUser, request: Request) -> None:
    _person(user, "revoke agents")

    def revoke(db: Session) -> None:
        _require_gm(db, campaign_id, user)
        agent_grants.revoke_grant(db, agent_id, by=user.user_id, campaign_id=campaign_id)
        audit.record(
            db,
            campaign_id=campaign_id,
            user_id=user.user_id,
            action="agent_revoked",
            target=agent_id,
            result="ok",
        )

    await get_auth(request).store.run(revoke)
    _cut(request, agent_id)
    log.info("agent_revoked", agent_id=agent_id, campaign_id=campaign_id, by=user.user_id)
