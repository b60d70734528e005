"""OAuth 2.1 for remote MCP clients against a real bridge: registration, consent, PKCE, tokens.

Every test drives the bridge's own endpoints over real sockets, the consent page's JSON API
standing in for the person's browser; the real SQLite file shows what the store keeps.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import anyio
import httpx
import mcp_types as types
import pytest
from bridge_process import RunningBridge, run_bridge
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from oauth_flow import (
    REDIRECT,
    approve,
    authorization_code,
    bearer,
    consent_request,
    exchange,
    pkce,
    register_client,
)
from sqlalchemy import select, update
from tables import party, places, until

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge.auth.digests import secret_digest
from ttrpg_mcp.bridge.store import BridgeStore
from ttrpg_mcp.bridge.store import models as store_models

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 60.0
PASSWORD = "password123"  # noqa: S105  # the test accounts' password


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    """One bridge shared by this module's tests (each test uses its own users and clients)."""
    data_dir = tmp_path_factory.mktemp("oauth") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir, {"TTRPG_REGISTER_PER_MINUTE_IP": "1000"}) as running:
        yield running


@pytest.fixture
async def http(bridge: RunningBridge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=bridge.base_url) as client:
        yield client


@contextmanager
def _bridge_store(bridge: RunningBridge) -> Iterator[BridgeStore]:
    """The running bridge's own store (its PostgreSQL database or bridge.db), to look at its rows."""
    store = BridgeStore(bridge_store_url(bridge.data_dir))
    try:
        yield store
    finally:
        store.close()


async def _person(http: httpx.AsyncClient) -> str:
    """A new account's access token."""
    response = await http.post(
        "/api/auth/register", json={"name": f"u{uuid.uuid4().hex[:10]}", "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["access_token"]
    return token


@dataclass
class Table:
    """A campaign with its GM and one player (access tokens)."""

    campaign_id: str
    gm: str
    player: str


@pytest.fixture
async def table(http: httpx.AsyncClient) -> Table:
    gm, player = await _person(http), await _person(http)
    created = await http.post("/api/campaigns", json={"name": "The Sunken Keep"}, headers=bearer(gm))
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    invite = await http.post(
        f"/api/campaigns/{campaign_id}/invites", json={"role": "player"}, headers=bearer(gm)
    )
    joined = await http.post(
        "/api/campaigns/join", json={"code": invite.json()["code"]}, headers=bearer(player)
    )
    assert joined.status_code == 200, joined.text
    return Table(campaign_id, gm, player)


async def _tokens(http: httpx.AsyncClient, table: Table, role: str = "player") -> tuple[str, dict[str, Any]]:
    """A public client authorized by the player, and its first token answer."""
    client = await register_client(http)
    code, verifier = await authorization_code(
        http, table.player, client["client_id"], table.campaign_id, role
    )
    answer = await exchange(http, client["client_id"], code, verifier)
    assert answer.status_code == 200, answer.text
    return client["client_id"], answer.json()


async def test_metadata_names_the_mcp_endpoint_and_this_bridge_as_its_authorization_server(
    http: httpx.AsyncClient, bridge: RunningBridge
) -> None:
    """RFC 9728 at both well-known paths, RFC 8414 with S256 only, registration and revocation."""
    with anyio.fail_after(TEST_TIMEOUT):
        resource = (await http.get("/.well-known/oauth-protected-resource")).json()
        by_path = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
        server = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert resource == by_path
    assert resource["resource"] == f"{bridge.base_url}/mcp"
    assert resource["authorization_servers"] == [bridge.base_url]
    assert server["issuer"] == bridge.base_url
    assert server["code_challenge_methods_supported"] == ["S256"]
    assert server["registration_endpoint"] == f"{bridge.base_url}/register"
    assert server["revocation_endpoint"] == f"{bridge.base_url}/revoke"
    assert "none" in server["token_endpoint_auth_methods_supported"]


async def test_an_approved_agent_acts_in_its_one_campaign_with_the_granted_role(
    http: httpx.AsyncClient, table: Table, bridge: RunningBridge
) -> None:
    """The token lists the granted campaign only, and the store holds nothing but digests."""
    with anyio.fail_after(TEST_TIMEOUT):
        other = await http.post("/api/campaigns", json={"name": "Elsewhere"}, headers=bearer(table.player))
        assert other.status_code == 201
        _client_id, tokens = await _tokens(http, table, role="spectator")
        access = tokens["access_token"]
        listed = await http.get("/api/campaigns", headers=bearer(access))
        detail = await http.get(f"/api/campaigns/{table.campaign_id}", headers=bearer(access))
        me = await http.get("/api/auth/me", headers=bearer(access))
    assert tokens["token_type"] == "Bearer"  # noqa: S105  # the scheme's name
    assert [c["id"] for c in listed.json()["campaigns"]] == [table.campaign_id]
    assert detail.json()["role"] == "spectator", "the grant's role caps the player's own"
    assert me.status_code == 200
    with _bridge_store(bridge) as store, store.session(readonly=True) as db:
        hashes = set(db.scalars(select(store_models.OAuthToken.token_hash)))
    assert secret_digest(access) in hashes
    assert secret_digest(tokens["refresh_token"]) in hashes
    assert access not in hashes


async def test_a_wrong_code_verifier_is_refused(http: httpx.AsyncClient, table: Table) -> None:
    """PKCE: the code is useless without the verifier its challenge was made from."""
    with anyio.fail_after(TEST_TIMEOUT):
        client = await register_client(http)
        code, _verifier = await authorization_code(
            http, table.player, client["client_id"], table.campaign_id, "player"
        )
        refused = await exchange(http, client["client_id"], code, secrets.token_urlsafe(48))
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert "code_verifier" in refused.json()["error_description"]


async def test_a_redirect_uri_that_was_not_registered_gets_no_redirect(http: httpx.AsyncClient) -> None:
    """/authorize answers an unregistered redirect_uri itself, never sending the browser there."""
    with anyio.fail_after(TEST_TIMEOUT):
        client = await register_client(http)
        _verifier, challenge = pkce()
        response = await http.get(
            "/authorize",
            params={
                "response_type": "code",
                "client_id": client["client_id"],
                "redirect_uri": "https://attacker.example/steal",
                "code_challenge": challenge,
            },
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "location" not in response.headers


async def test_a_code_traded_with_another_redirect_uri_is_refused(
    http: httpx.AsyncClient, table: Table
) -> None:
    """The token request must name the redirect URI the authorization request used."""
    with anyio.fail_after(TEST_TIMEOUT):
        client = await register_client(http, redirect_uris=[REDIRECT, "http://127.0.0.1:33418/other"])
        code, verifier = await authorization_code(
            http, table.player, client["client_id"], table.campaign_id, "player"
        )
        refused = await exchange(
            http, client["client_id"], code, verifier, redirect_uri="http://127.0.0.1:33418/other"
        )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request"


async def test_a_role_above_your_own_cannot_be_granted(http: httpx.AsyncClient, table: Table) -> None:
    """A player may give an agent player or spectator, never gm; nor a campaign they are not in."""
    with anyio.fail_after(TEST_TIMEOUT):
        client = await register_client(http)
        request_id = await consent_request(http, client["client_id"], pkce()[1], "s")
        above = await approve(http, table.player, request_id, table.campaign_id, "gm")
        outsider = await _person(http)
        elsewhere = await approve(http, outsider, request_id, table.campaign_id, "spectator")
        shown = await http.get(
            "/api/oauth/consent", params={"request": request_id}, headers=bearer(table.player)
        )
        still = await approve(http, table.player, request_id, table.campaign_id, "player")
    assert above.status_code == 403
    assert above.json()["error"]["code"] == "forbidden"
    assert above.json()["error"]["data"] == {"role": "gm", "your_role": "player"}
    assert elsewhere.status_code == 403
    assert shown.json()["client_name"] == "Claude"
    assert [(c["id"], c["role"]) for c in shown.json()["campaigns"]] == [(table.campaign_id, "player")]
    assert still.status_code == 200, "a refused choice leaves the request open for a valid one"


async def test_an_expired_code_is_refused(
    http: httpx.AsyncClient, table: Table, bridge: RunningBridge
) -> None:
    """A code is good for minutes: one past its expiry trades for nothing."""
    with anyio.fail_after(TEST_TIMEOUT):
        client = await register_client(http)
        code, verifier = await authorization_code(
            http, table.player, client["client_id"], table.campaign_id, "player"
        )
        with _bridge_store(bridge) as store, store.session() as db:
            db.execute(
                update(store_models.OAuthCode)
                .where(store_models.OAuthCode.code_hash == secret_digest(code))
                .values(expires_at=datetime(2000, 1, 1, tzinfo=UTC))
            )
        refused = await exchange(http, client["client_id"], code, verifier)
    assert refused.status_code == 400
    assert refused.json() == {"error": "invalid_grant", "error_description": "authorization code has expired"}


async def test_a_reused_code_is_refused_and_revokes_what_it_issued(
    http: httpx.AsyncClient, table: Table
) -> None:
    """A code works once; presented again, the tokens it already gave stop working (RFC 6749 4.1.2)."""
    with anyio.fail_after(TEST_TIMEOUT):
        client = await register_client(http)
        code, verifier = await authorization_code(
            http, table.player, client["client_id"], table.campaign_id, "player"
        )
        first = await exchange(http, client["client_id"], code, verifier)
        assert first.status_code == 200
        before = await http.get("/api/campaigns", headers=bearer(first.json()["access_token"]))
        again = await exchange(http, client["client_id"], code, verifier)
        after = await http.get("/api/campaigns", headers=bearer(first.json()["access_token"]))
    assert before.status_code == 200
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "invalid_token"


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_agent(
    http: httpx.AsyncClient, table: Table
) -> None:
    """Each refresh gives a new pair; the old refresh token presented again ends the grant."""
    with anyio.fail_after(TEST_TIMEOUT):
        client_id, tokens = await _tokens(http, table)
        form = {"grant_type": "refresh_token", "client_id": client_id}
        rotated = await http.post("/token", data={**form, "refresh_token": tokens["refresh_token"]})
        assert rotated.status_code == 200, rotated.text
        fresh = rotated.json()
        works = await http.get("/api/campaigns", headers=bearer(fresh["access_token"]))
        reused = await http.post("/token", data={**form, "refresh_token": tokens["refresh_token"]})
        revoked = await http.get("/api/campaigns", headers=bearer(fresh["access_token"]))
        newest = await http.post("/token", data={**form, "refresh_token": fresh["refresh_token"]})
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert works.status_code == 200
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert revoked.status_code == 401
    assert newest.status_code == 400, "the whole grant is revoked, the newest refresh token with it"


async def test_revocation_ends_the_access_token(http: httpx.AsyncClient, table: Table) -> None:
    """RFC 7009: revoking the refresh token also ends the access token (the grant goes)."""
    with anyio.fail_after(TEST_TIMEOUT):
        client_id, tokens = await _tokens(http, table)
        answer = await http.post(
            "/revoke", data={"token": tokens["refresh_token"], "client_id": client_id, "client_secret": ""}
        )
        after = await http.get("/api/campaigns", headers=bearer(tokens["access_token"]))
    assert answer.status_code == 200
    assert after.status_code == 401


async def test_a_denied_request_sends_the_browser_back_with_access_denied(
    http: httpx.AsyncClient, table: Table
) -> None:
    """Deny: the client hears error=access_denied with its state, and the request is gone."""
    with anyio.fail_after(TEST_TIMEOUT):
        client = await register_client(http)
        request_id = await consent_request(http, client["client_id"], pkce()[1], "xyz")
        denied = await http.post(
            "/api/oauth/consent",
            json={"request": request_id, "approve": False},
            headers=bearer(table.player),
        )
        again = await http.get(
            "/api/oauth/consent", params={"request": request_id}, headers=bearer(table.player)
        )
    query = parse_qs(urlparse(denied.json()["redirect_to"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["xyz"]
    assert again.status_code == 404


async def test_the_consent_api_needs_a_signed_in_person_not_an_agent(
    http: httpx.AsyncClient, table: Table
) -> None:
    """No token: 401. An agent's own token may neither approve requests nor list agents."""
    with anyio.fail_after(TEST_TIMEOUT):
        client = await register_client(http)
        request_id = await consent_request(http, client["client_id"], pkce()[1], "s")
        anonymous = await http.get("/api/oauth/consent", params={"request": request_id})
        _client_id, tokens = await _tokens(http, table)
        by_agent = await approve(http, tokens["access_token"], request_id, table.campaign_id, "player")
        listing = await http.get("/api/me/agents", headers=bearer(tokens["access_token"]))
    assert anonymous.status_code == 401
    assert by_agent.status_code == 403
    assert listing.status_code == 403


async def test_people_list_and_revoke_their_agents_and_the_gm_revokes_any_in_the_campaign(
    http: httpx.AsyncClient, table: Table
) -> None:
    """The player sees the agent they authorized; the GM sees it too and revokes it; it stops at once."""
    with anyio.fail_after(TEST_TIMEOUT):
        _client_id, tokens = await _tokens(http, table)
        mine = (await http.get("/api/me/agents", headers=bearer(table.player))).json()["agents"]
        exported = (await http.get("/api/me/export", headers=bearer(table.player))).json()
        as_gm = (
            await http.get(f"/api/campaigns/{table.campaign_id}/authorized-agents", headers=bearer(table.gm))
        ).json()
        by_player = await http.get(
            f"/api/campaigns/{table.campaign_id}/authorized-agents", headers=bearer(table.player)
        )
        works = await http.get("/api/campaigns", headers=bearer(tokens["access_token"]))
        revoked = await http.delete(
            f"/api/campaigns/{table.campaign_id}/authorized-agents/{mine[0]['id']}", headers=bearer(table.gm)
        )
        after = await http.get("/api/campaigns", headers=bearer(tokens["access_token"]))
        left = (await http.get("/api/me/agents", headers=bearer(table.player))).json()["agents"]
        _second, more = await _tokens(http, table)
        theirs = (await http.get("/api/me/agents", headers=bearer(table.player))).json()["agents"]
        own_revoke = await http.delete(f"/api/me/agents/{theirs[0]['id']}", headers=bearer(table.player))
        after_own = await http.get("/api/campaigns", headers=bearer(more["access_token"]))
    assert [(a["client_name"], a["campaign_id"], a["role"]) for a in mine] == [
        ("Claude", table.campaign_id, "player")
    ]
    assert [a["id"] for a in as_gm["agents"]] == [mine[0]["id"]]
    assert [a["id"] for a in exported["authorized_agents"]] == [mine[0]["id"]]
    assert by_player.status_code == 403
    assert works.status_code == 200
    assert revoked.status_code == 204
    assert after.status_code == 401
    assert left == []
    assert own_revoke.status_code == 204
    assert after_own.status_code == 401


async def test_a_confidential_client_must_send_its_secret(
    http: httpx.AsyncClient, table: Table, bridge: RunningBridge
) -> None:
    """A client registered with a secret trades codes only with it; the store keeps its digest."""
    with anyio.fail_after(TEST_TIMEOUT):
        client = await register_client(http, token_endpoint_auth_method="client_secret_post")  # noqa: S106
        secret = client["client_secret"]
        code, verifier = await authorization_code(
            http, table.player, client["client_id"], table.campaign_id, "player"
        )
        wrong = await exchange(http, client["client_id"], code, verifier, client_secret="nope")  # noqa: S106
        right = await exchange(http, client["client_id"], code, verifier, client_secret=secret)
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert right.status_code == 200, right.text
    with _bridge_store(bridge) as store, store.session(readonly=True) as db:
        stored = db.execute(
            select(store_models.OAuthClient.secret_hash, store_models.OAuthClient.metadata_json).where(
                store_models.OAuthClient.client_id == client["client_id"]
            )
        ).one()
    assert stored[0] == secret_digest(secret)
    assert secret not in json.dumps(stored[1])


class _MemoryStorage:
    """The SDK client's token storage, in memory (a real client would keep it on disk)."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class _HeadlessConsent:
    """The person's browser: follows /authorize to the consent page and approves through its API."""

    def __init__(self, base_url: str, person: str, campaign_id: str, role: str) -> None:
        self.base_url, self.person, self.campaign_id, self.role = base_url, person, campaign_id, role
        self.redirected: str | None = None
        self.consent_seen: dict[str, Any] | None = None

    async def redirect(self, authorization_url: str) -> None:
        async with httpx.AsyncClient(base_url=self.base_url) as browser:
            start = await browser.get(authorization_url)
            assert start.status_code == 302, start.text
            request_id = parse_qs(urlparse(start.headers["location"]).query)["request"][0]
            shown = await browser.get(
                "/api/oauth/consent", params={"request": request_id}, headers=bearer(self.person)
            )
            self.consent_seen = shown.json()
            approved = await approve(browser, self.person, request_id, self.campaign_id, self.role)
            assert approved.status_code == 200, approved.text
            self.redirected = approved.json()["redirect_to"]

    async def callback(self) -> AuthorizationCodeResult:
        assert self.redirected is not None
        query = parse_qs(urlparse(self.redirected).query)
        return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0])


def _sdk_provider(base_url: str, consent: _HeadlessConsent, storage: _MemoryStorage) -> OAuthClientProvider:
    metadata = OAuthClientMetadata.model_validate(
        {
            "client_name": "Claude",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
    )
    return OAuthClientProvider(
        server_url=f"{base_url}/mcp",
        client_metadata=metadata,
        storage=storage,
        redirect_handler=consent.redirect,
        callback_handler=consent.callback,
    )


async def test_the_sdk_oauth_client_plays_through_mcp_refreshes_and_is_revoked(
    http: httpx.AsyncClient, table: Table, bridge: RunningBridge
) -> None:
    """The SDK's OAuth client from a bare /mcp 401 to tool calls; a refresh; the GM's revocation ends it."""
    consent = _HeadlessConsent(bridge.base_url, table.player, table.campaign_id, "player")
    storage = _MemoryStorage()
    provider = _sdk_provider(bridge.base_url, consent, storage)
    http_client = create_mcp_http_client(auth=provider)
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            http_client,
            streamable_http_client(f"{bridge.base_url}/mcp", http_client=http_client) as (read, write),
            ClientSession(
                read, write, client_info=types.Implementation(name="Claude", version="1.0")
            ) as session,
        ):
            await session.initialize()
            tools = {tool.name for tool in (await session.list_tools()).tools}
            rolled = await session.call_tool("roll_dice", {"expression": "2d6", "purpose": "OAuth check"})
            first = storage.tokens
            assert first is not None
            # The client believes its access token has expired: it refreshes before the next call.
            provider.context.token_expiry_time = time.time() - 1
            again = await session.call_tool("roll_dice", {"expression": "1d4"})
            second = storage.tokens
            assert second is not None
            agents = (
                await http.get(
                    f"/api/campaigns/{table.campaign_id}/authorized-agents", headers=bearer(table.gm)
                )
            ).json()["agents"]
            revoked = await http.delete(
                f"/api/campaigns/{table.campaign_id}/authorized-agents/{agents[0]['id']}",
                headers=bearer(table.gm),
            )
        refused = await http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={**bearer(second.access_token), "Accept": "application/json, text/event-stream"},
        )
    assert consent.consent_seen is not None
    assert consent.consent_seen["client_name"] == "Claude"
    assert {"roll_dice", "update_character"} <= tools
    assert not rolled.is_error
    assert not again.is_error
    assert first.access_token.startswith("ttoa_")
    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token
    assert [(a["client_name"], a["role"]) for a in agents] == [("Claude", "player")]
    assert revoked.status_code == 204
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith(
        f'Bearer resource_metadata="{bridge.base_url}/.well-known/oauth-protected-resource"'
    )


async def test_a_gm_taking_a_seated_oauth_agent_from_the_table_revokes_its_authorization(
    http: httpx.AsyncClient, bridge: RunningBridge
) -> None:
    """DELETE .../agents/{participant_id} on an OAuth agent ends its grant: its token and listing go."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, (gm, mira)):
            assert mira.client.tokens is not None
            assert gm.client.tokens is not None
            person, gm_token = mira.client.tokens.access_token, gm.client.tokens.access_token
            client = await register_client(http)
            code, verifier = await authorization_code(
                http, person, client["client_id"], campaign_id, "player"
            )
            access = (await exchange(http, client["client_id"], code, verifier)).json()["access_token"]
            agent_http = create_mcp_http_client(headers=bearer(access))
            async with (
                agent_http,
                streamable_http_client(f"{bridge.base_url}/mcp", http_client=agent_http) as (read, write),
                ClientSession(
                    read, write, client_info=types.Implementation(name="Claude", version="1.0")
                ) as agent,
            ):
                await agent.initialize()
                seat = (await until(gm.table, _joined_agent))[-1]["data"]
                removed = await http.delete(
                    f"/api/campaigns/{campaign_id}/agents/{seat['participant_id']}", headers=bearer(gm_token)
                )
                await until(gm.table, lambda e: e["type"] == "participant_left")
            listed = (await http.get("/api/me/agents", headers=bearer(person))).json()["agents"]
            refused = await http.get(f"/api/campaigns/{campaign_id}", headers=bearer(access))
    assert seat["display_name"].startswith("Claude, assistant of ")
    assert removed.status_code == 204, removed.text
    assert listed == []
    assert refused.status_code == 401


def _joined_agent(event: dict[str, Any]) -> bool:
    return event["type"] == "participant_joined" and event["data"]["kind"] == "agent"
