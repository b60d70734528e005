"""The /api/campaigns routes through a tiny FastAPI app, driven in-process over ASGI.

The store and the auth service are real (SQLite in the test's data directory, real tokens). The
MCP side is a stand-in: ``app.state.bridge.pool.request`` answers ``create_campaign`` the way the
MCP server's tool does (a CallToolResult with the campaign as ``structuredContent``, or an
``isError`` result). That is enough here because what is under test is the route's logic; the
real path through the MCP pool to a real ``ttrpg-mcp`` child is covered end to end by the
gateway and room tests over real sockets.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge.auth.service import AuthService
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.http.auth_routes import install_error_handler
from ttrpg_mcp.bridge.http.auth_routes import router as auth_router
from ttrpg_mcp.bridge.http.campaign_routes import router as campaign_router
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.store import BridgeStore
from ttrpg_mcp.server.secrecy import Viewer

pytestmark = pytest.mark.anyio

# In-process ASGI and SQLite, plus one Argon2 hash per registered account.
TEST_TIMEOUT = 20.0
PASSWORD = "correct horse battery"  # noqa: S105  # the test accounts' password, on purpose


@dataclass
class StandInPool:
    """Answers tools/call create_campaign and list_campaigns like the MCP server; records every request."""

    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    tool_error: str | None = None
    raise_error: BridgeError | None = None

    async def request(
        self,
        method: str,
        params: dict[str, Any],
        *,
        session_id: str,
        timeout: float | None = None,
        viewer: Viewer | None = None,
    ) -> dict[str, Any]:
        self.calls.append((method, params, session_id))
        if self.raise_error is not None:
            raise self.raise_error
        if self.tool_error is not None:
            text = f"Error executing tool create_campaign: {self.tool_error}"
            return {"content": [{"type": "text", "text": text}], "isError": True}
        arguments = params["arguments"]
        if params["name"] == "list_campaigns":
            return {"content": [], "structuredContent": {"campaigns": self.created}, "isError": False}
        campaign = {
            "id": f"camp_{secrets.token_hex(6)}",
            "name": arguments["name"],
            "system": arguments.get("system", ""),
            "setting": arguments.get("setting", ""),
            "description": arguments.get("description", ""),
            "house_rules": [],
            "world_state": {},
            "archived": False,
            "version": 1,
            "created_at": "2030-01-01T12:00:00Z",
            "updated_at": "2030-01-01T12:00:00Z",
            "counts": {},
            "versions": [],
        }
        self.created.append(campaign)
        text = f"Created {campaign['name']} ({campaign['id']})"
        return {"content": [{"type": "text", "text": text}], "structuredContent": campaign, "isError": False}

    async def release_session(self, session_id: str) -> None:
        self.released.append(session_id)


@dataclass
class StandInBridge:
    """What the routes use of the Bridge: its pool and the membership hook."""

    pool: StandInPool = field(default_factory=StandInPool)
    membership_changes: list[tuple[str, str, str | None]] = field(default_factory=list)

    async def on_membership_changed(self, campaign_id: str, user_id: str, role: str | None) -> None:
        self.membership_changes.append((campaign_id, user_id, role))


@dataclass
class BridgeWithoutHook:
    """A bridge from before the live table learnt about membership changes."""

    pool: StandInPool = field(default_factory=StandInPool)


@pytest.fixture
async def store(data_dir: Path) -> AsyncIterator[BridgeStore]:
    """A migrated store in the scratch data directory."""
    store = BridgeStore(bridge_store_url(data_dir))
    store.migrate()
    yield store
    store.close()


def _app(auth: AuthService, bridge: object) -> FastAPI:
    app = FastAPI()
    app.state.auth = auth
    app.state.bridge = bridge
    install_error_handler(app)
    app.include_router(auth_router)
    app.include_router(campaign_router)
    return app


@pytest.fixture
def bridge() -> StandInBridge:
    """The stand-in bridge, to inspect what the routes asked of it."""
    return StandInBridge()


@pytest.fixture
async def client(
    data_dir: Path, store: BridgeStore, bridge: StandInBridge
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app."""
    auth = AuthService.from_settings(BridgeSettings(data_dir=data_dir), store)
    transport = httpx.ASGITransport(_app(auth, bridge))
    async with httpx.AsyncClient(transport=transport, base_url="http://bridge") as client:
        yield client


@dataclass
class Account:
    user_id: str
    headers: dict[str, str]


async def _account(client: httpx.AsyncClient, name: str) -> Account:
    response = await client.post("/api/auth/register", json={"name": name, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(body["user_info"]["id"], {"Authorization": f"Bearer {body['access_token']}"})


def _error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    return dict(body["error"])


async def _campaign(client: httpx.AsyncClient, gm: Account, name: str = "Ashes") -> str:
    response = await client.post("/api/campaigns", json={"name": name}, headers=gm.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _seat(client: httpx.AsyncClient, gm: Account, campaign_id: str, who: Account, role: str) -> None:
    invite = await client.post(
        f"/api/campaigns/{campaign_id}/invites", json={"role": role}, headers=gm.headers
    )
    assert invite.status_code == 201, invite.text
    joined = await client.post(
        "/api/campaigns/join", json={"code": invite.json()["code"]}, headers=who.headers
    )
    assert joined.status_code == 200, joined.text


async def test_creating_a_campaign_goes_through_the_mcp_tool_and_makes_the_caller_gm(
    client: httpx.AsyncClient, bridge: StandInBridge
) -> None:
    """201 with the MCP server's id, role gm and the creator as the one member; the tool got the fields."""
    with anyio.fail_after(TEST_TIMEOUT):
        gm = await _account(client, "gwen")
        response = await client.post(
            "/api/campaigns",
            json={"name": "Ashes", "system": "D&D 5e", "setting": "Eberron", "description": "War's end."},
            headers=gm.headers,
        )
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("camp_")
    assert (body["name"], body["role"], body["member_count"], body["created_by"]) == (
        "Ashes",
        "gm",
        1,
        gm.user_id,
    )
    assert [(m["user_id"], m["role"]) for m in body["members"]] == [(gm.user_id, "gm")]
    ((method, params, session_id),) = bridge.pool.calls
    assert (method, params) == (
        "tools/call",
        {
            "name": "create_campaign",
            "arguments": {
                "name": "Ashes",
                "system": "D&D 5e",
                "setting": "Eberron",
                "description": "War's end.",
            },
        },
    )
    assert session_id.startswith(f"http:{gm.user_id}:")
    assert bridge.pool.released == [session_id]


async def test_a_tool_error_is_a_422_with_the_tools_message_and_records_nothing(
    client: httpx.AsyncClient, bridge: StandInBridge
) -> None:
    """An isError result becomes tool_error with the tool's text (without the SDK's prefix)."""
    bridge.pool.tool_error = "invalid_input: the name is reserved"
    with anyio.fail_after(TEST_TIMEOUT):
        gm = await _account(client, "gwen")
        response = await client.post("/api/campaigns", json={"name": "Ashes"}, headers=gm.headers)
        listed = await client.get("/api/campaigns", headers=gm.headers)
    assert response.status_code == 422
    error = _error(response)
    assert (error["code"], error["message"]) == ("tool_error", "invalid_input: the name is reserved")
    assert listed.json() == {"campaigns": []}


async def test_an_mcp_failure_passes_through_with_its_own_code(
    client: httpx.AsyncClient, bridge: StandInBridge
) -> None:
    """A BridgeError from the pool (no child available) is answered as is."""
    bridge.pool.raise_error = BridgeError("mcp_unavailable", "no MCP child can serve requests now")
    with anyio.fail_after(TEST_TIMEOUT):
        gm = await _account(client, "gwen")
        response = await client.post("/api/campaigns", json={"name": "Ashes"}, headers=gm.headers)
    assert response.status_code == 503
    assert _error(response)["code"] == "mcp_unavailable"
    assert bridge.pool.released == [bridge.pool.calls[0][2]]


async def test_every_route_needs_a_valid_access_token(client: httpx.AsyncClient) -> None:
    """No token is unauthenticated, a bad one invalid_token: 401 with the Bearer challenge."""
    with anyio.fail_after(TEST_TIMEOUT):
        missing = await client.get("/api/campaigns")
        bad = await client.post(
            "/api/campaigns", json={"name": "X"}, headers={"Authorization": "Bearer not.a.token"}
        )
    assert missing.status_code == bad.status_code == 401
    assert _error(missing)["code"] == "unauthenticated"
    assert _error(bad)["code"] == "invalid_token"
    assert missing.headers["www-authenticate"] == "Bearer"


async def test_an_invalid_body_is_a_422_invalid_message(client: httpx.AsyncClient) -> None:
    """A blank name or an unknown field is refused before the MCP server is asked."""
    with anyio.fail_after(TEST_TIMEOUT):
        gm = await _account(client, "gwen")
        blank = await client.post("/api/campaigns", json={"name": ""}, headers=gm.headers)
        extra = await client.post("/api/campaigns", json={"name": "X", "owner": "me"}, headers=gm.headers)
    assert _error(blank)["code"] == _error(extra)["code"] == "invalid_message"


async def test_people_list_their_own_campaigns_with_their_role(client: httpx.AsyncClient) -> None:
    """Each sees the campaigns they are in, with their own role; nobody sees the others'."""
    with anyio.fail_after(TEST_TIMEOUT):
        gwen, pia, sam = (
            await _account(client, "gwen"),
            await _account(client, "pia"),
            await _account(client, "sam"),
        )
        campaign_id = await _campaign(client, gwen)
        await _seat(client, gwen, campaign_id, pia, "player")
        mine = (await client.get("/api/campaigns", headers=pia.headers)).json()["campaigns"]
        none = (await client.get("/api/campaigns", headers=sam.headers)).json()["campaigns"]
    assert [(c["id"], c["role"], c["member_count"], c["online"]) for c in mine] == [
        (campaign_id, "player", 2, 0)
    ]
    assert none == []


async def test_a_campaign_is_shown_to_members_only(client: httpx.AsyncClient) -> None:
    """Members get the campaign and its members; others get 403 forbidden."""
    with anyio.fail_after(TEST_TIMEOUT):
        gwen, sam = await _account(client, "gwen"), await _account(client, "sam")
        campaign_id = await _campaign(client, gwen)
        shown = await client.get(f"/api/campaigns/{campaign_id}", headers=gwen.headers)
        hidden = await client.get(f"/api/campaigns/{campaign_id}", headers=sam.headers)
        unknown = await client.get("/api/campaigns/camp_nope", headers=sam.headers)
    assert shown.status_code == 200
    assert shown.json()["members"][0]["name"] == "gwen"
    assert hidden.status_code == unknown.status_code == 403
    assert _error(hidden)["code"] == "forbidden"


async def test_a_gm_invites_and_the_code_seats_the_invitee_with_its_role(
    client: httpx.AsyncClient, bridge: StandInBridge
) -> None:
    """The invite carries role, uses and expiry; joining returns the campaign and tells the live table."""
    with anyio.fail_after(TEST_TIMEOUT):
        gwen, pia = await _account(client, "gwen"), await _account(client, "pia")
        campaign_id = await _campaign(client, gwen)
        invite = await client.post(
            f"/api/campaigns/{campaign_id}/invites",
            json={"role": "spectator", "uses": 3, "expires_in_seconds": 3600},
            headers=gwen.headers,
        )
        joined = await client.post(
            "/api/campaigns/join", json={"code": invite.json()["code"]}, headers=pia.headers
        )
    assert invite.status_code == 201
    assert (invite.json()["role"], invite.json()["uses_left"]) == ("spectator", 3)
    assert len(invite.json()["code"]) >= 16
    assert joined.status_code == 200
    assert (joined.json()["id"], joined.json()["role"]) == (campaign_id, "spectator")
    assert bridge.membership_changes == [(campaign_id, pia.user_id, "spectator")]


async def test_only_a_gm_invites_and_bad_codes_seat_nobody(client: httpx.AsyncClient) -> None:
    """A player's invite is forbidden; an unknown code is not_found; a bad role is invalid_message."""
    with anyio.fail_after(TEST_TIMEOUT):
        gwen, pia = await _account(client, "gwen"), await _account(client, "pia")
        campaign_id = await _campaign(client, gwen)
        await _seat(client, gwen, campaign_id, pia, "player")
        by_player = await client.post(f"/api/campaigns/{campaign_id}/invites", json={}, headers=pia.headers)
        bad_role = await client.post(
            f"/api/campaigns/{campaign_id}/invites", json={"role": "king"}, headers=gwen.headers
        )
        unknown = await client.post(
            "/api/campaigns/join", json={"code": "nope-nope-nope"}, headers=pia.headers
        )
    assert (by_player.status_code, _error(by_player)["code"]) == (403, "forbidden")
    assert (bad_role.status_code, _error(bad_role)["code"]) == (422, "invalid_message")
    assert (unknown.status_code, _error(unknown)["code"]) == (404, "not_found")


async def test_a_gm_changes_roles_but_never_leaves_the_campaign_without_a_gm(
    client: httpx.AsyncClient, bridge: StandInBridge
) -> None:
    """PATCH sets a role and tells the live table; demoting the last GM is a 409; players may not."""
    with anyio.fail_after(TEST_TIMEOUT):
        gwen, pia = await _account(client, "gwen"), await _account(client, "pia")
        campaign_id = await _campaign(client, gwen)
        await _seat(client, gwen, campaign_id, pia, "player")
        by_player = await client.patch(
            f"/api/campaigns/{campaign_id}/members/{gwen.user_id}",
            json={"role": "player"},
            headers=pia.headers,
        )
        last_gm = await client.patch(
            f"/api/campaigns/{campaign_id}/members/{gwen.user_id}",
            json={"role": "player"},
            headers=gwen.headers,
        )
        promoted = await client.patch(
            f"/api/campaigns/{campaign_id}/members/{pia.user_id}", json={"role": "gm"}, headers=gwen.headers
        )
        missing = await client.patch(
            f"/api/campaigns/{campaign_id}/members/usr_nobody", json={"role": "gm"}, headers=gwen.headers
        )
    assert (by_player.status_code, _error(by_player)["code"]) == (403, "forbidden")
    assert (last_gm.status_code, _error(last_gm)["code"]) == (409, "conflict")
    assert promoted.status_code == 200
    assert (promoted.json()["user_id"], promoted.json()["role"]) == (pia.user_id, "gm")
    assert (missing.status_code, _error(missing)["code"]) == (404, "not_found")
    assert bridge.membership_changes[-1] == (campaign_id, pia.user_id, "gm")


async def test_members_leave_by_themselves_or_are_removed_by_a_gm(
    client: httpx.AsyncClient, bridge: StandInBridge
) -> None:
    """DELETE is 204 for oneself or for a GM; a player removing another is forbidden; the table is told."""
    with anyio.fail_after(TEST_TIMEOUT):
        gwen, pia, sam = (
            await _account(client, "gwen"),
            await _account(client, "pia"),
            await _account(client, "sam"),
        )
        campaign_id = await _campaign(client, gwen)
        await _seat(client, gwen, campaign_id, pia, "player")
        await _seat(client, gwen, campaign_id, sam, "player")
        by_player = await client.delete(
            f"/api/campaigns/{campaign_id}/members/{sam.user_id}", headers=pia.headers
        )
        left = await client.delete(f"/api/campaigns/{campaign_id}/members/{pia.user_id}", headers=pia.headers)
        removed = await client.delete(
            f"/api/campaigns/{campaign_id}/members/{sam.user_id}", headers=gwen.headers
        )
        last_gm = await client.delete(
            f"/api/campaigns/{campaign_id}/members/{gwen.user_id}", headers=gwen.headers
        )
        after = (await client.get(f"/api/campaigns/{campaign_id}", headers=gwen.headers)).json()
    assert (by_player.status_code, _error(by_player)["code"]) == (403, "forbidden")
    assert left.status_code == removed.status_code == 204
    assert (last_gm.status_code, _error(last_gm)["code"]) == (409, "conflict")
    assert [m["user_id"] for m in after["members"]] == [gwen.user_id]
    assert bridge.membership_changes[-2:] == [
        (campaign_id, pia.user_id, None),
        (campaign_id, sam.user_id, None),
    ]


async def test_a_bridge_without_the_membership_hook_still_serves_the_routes(
    data_dir: Path, store: BridgeStore
) -> None:
    """The hook is optional: joining works when app.state.bridge has no on_membership_changed."""
    auth = AuthService.from_settings(BridgeSettings(data_dir=data_dir), store)
    transport = httpx.ASGITransport(_app(auth, BridgeWithoutHook()))
    with anyio.fail_after(TEST_TIMEOUT):
        async with httpx.AsyncClient(transport=transport, base_url="http://bridge") as client:
            gwen, pia = await _account(client, "gwen"), await _account(client, "pia")
            campaign_id = await _campaign(client, gwen)
            await _seat(client, gwen, campaign_id, pia, "player")
            listed = (await client.get("/api/campaigns", headers=pia.headers)).json()["campaigns"]
    assert [c["id"] for c in listed] == [campaign_id]
