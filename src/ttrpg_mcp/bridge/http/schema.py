"""The JSON Schema of the HTTP API's request and response bodies, for clients that generate types.

``ttrpg-bridge schema --messages http`` prints it; the web client generates its HTTP types from
it, as it does its message types from the client and server message schemas. The OpenAPI
document at ``/openapi.json`` describes the same bodies with their routes; this is the part a
type generator needs, available without running (or configuring) a bridge.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ttrpg_mcp.bridge.auth.schemas import LoginRequest, RegisterRequest, TokenPair, UserInfo
from ttrpg_mcp.bridge.campaigns import CampaignSummary, InviteView, MemberView
from ttrpg_mcp.bridge.http.auth_routes import ErrorResponse
from ttrpg_mcp.bridge.http.campaign_routes import (
    AuditPage,
    CampaignDetail,
    CampaignList,
    CreateCampaignRequest,
    CreateInviteRequest,
    JoinRequest,
    RoleChange,
)
from ttrpg_mcp.bridge.http.oauth_routes import AgentList, ConsentDecision, ConsentOutcome, ConsentRequestView

__all__ = ["http_json_schema"]

_REQUESTS: tuple[type[BaseModel], ...] = (
    RegisterRequest,
    LoginRequest,
    CreateCampaignRequest,
    CreateInviteRequest,
    JoinRequest,
    RoleChange,
    ConsentDecision,
)
_RESPONSES: tuple[type[BaseModel], ...] = (
    TokenPair,
    UserInfo,
    CampaignSummary,
    CampaignDetail,
    CampaignList,
    MemberView,
    InviteView,
    AuditPage,
    ErrorResponse,
    ConsentRequestView,
    ConsentOutcome,
    AgentList,
)


def http_json_schema() -> dict[str, Any]:
    """Every body of the HTTP API: requests as the bridge accepts them, responses as it sends them."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(model, "validation") for model in _REQUESTS]
    models += [(model, "serialization") for model in _RESPONSES]
    _, schema = models_json_schema(models, title="ttrpg-bridge HTTP bodies")
    schema["anyOf"] = [{"$ref": f"#/$defs/{name}"} for name in sorted(schema.get("$defs", {}))]
    return schema
