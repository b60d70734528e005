"""API keys end to end: a real bridge, real MCP children, real sockets and the real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from bridge_process import RunningBridge, run_bridge
from tables import until

from ttrpg_mcp.bridge.auth.digests import secret_digest
from ttrpg_mcp.client import BridgeClient, BridgeClientError, ConnectionClosed

# The tests read bridge.db (and content.db) themselves: SQLite in every configuration.
pytestmark = [pytest.mark.anyio, pytest.mark.sqlite]

TEST_TIMEOUT = 60.0
PASSWORD = "password123"  # noqa: S105  # the test accounts' password


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    """One bridge shared by this module's tests (each test uses its own users)."""
    data_dir = tmp_path_factory.mktemp("apikeys") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


@pytest.fixture
async def gm(bridge: RunningBridge) -> AsyncIterator[BridgeClient]:
    """A fresh user, signed in with a password."""
    async with BridgeClient(bridge.base_url) as client:
        await client.register(f"gm{uuid.uuid4().hex[:10]}", PASSWORD)
        yield client


@pytest.fixture
async def http(bridge: RunningBridge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=bridge.base_url) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _access(client: BridgeClient) -> str:
    assert client.tokens is not None
    return client.tokens.access_token


async def _new_key(http: httpx.AsyncClient, owner: BridgeClient, **fields: Any) -> dict[str, Any]:
    response = await http.post("/api/auth/api-keys", json=fields, headers=_bearer(_access(owner)))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_key_is_shown_once_and_the_store_keeps_only_its_hash(
    bridge: RunningBridge, gm: BridgeClient, http: httpx.AsyncClient
) -> None:
    """The creation answer holds the key; listings show its prefix; bridge.db holds its SHA-256."""
    with anyio.fail_after(TEST_TIMEOUT):
        created = await _new_key(http, gm, name="dice bot")
        key = created["key"]
        assert key.startswith("ttk_")
        assert created["prefix"] == key[:12]
        listed = (await http.get("/api/auth/api-keys", headers=_bearer(_access(gm)))).json()["keys"]
    assert [entry["id"] for entry in listed] == [created["id"]]
    assert "key" not in listed[0]
    assert listed[0]["name"] == "dice bot"
    with sqlite3.connect(bridge.data_dir / "bridge.db") as db:
        stored = db.execute("SELECT key_hash, prefix FROM api_keys WHERE id = ?", (created["id"],)).fetchone()
    db.close()
    assert stored == (secret_digest(key), key[:12])


async def test_a_key_works_as_a_bearer_token_and_logs_in_with_the_spikes_apikey_field(
    gm: BridgeClient, http: httpx.AsyncClient
) -> None:
    """Bearer <key> reaches the HTTP API; login {"apiKey"} returns tokens; the last use is noted."""
    with anyio.fail_after(TEST_TIMEOUT):
        key = (await _new_key(http, gm))["key"]
        me = await http.get("/api/auth/me", headers=_bearer(key))
        assert me.status_code == 200, me.text
        assert me.json()["id"] == gm.tokens.user["id"]  # type: ignore[union-attr]
        login = await http.post("/api/auth/login", json={"apiKey": key})
        assert login.status_code == 200, login.text
        pair = login.json()
        assert (await http.get("/api/auth/me", headers=_bearer(pair["access_token"]))).status_code == 200
        refreshed = await http.post("/api/auth/refresh", headers=_bearer(pair["refresh_token"]))
        assert refreshed.status_code == 200, refreshed.text
        listed = (await http.get("/api/auth/api-keys", headers=_bearer(_access(gm)))).json()["keys"]
        assert listed[0]["last_used_at"] is not None
        wrong = await http.post("/api/auth/login", json={"apiKey": "ttk_" + "x" * 43})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_credentials"


async def test_a_key_opens_websocket_and_sse_sessions(gm: BridgeClient, http: httpx.AsyncClient) -> None:
    """?token=<key>, an authenticate message with the key, and SSE with the key all open a session."""
    with anyio.fail_after(TEST_TIMEOUT):
        campaign = await gm.create_campaign("Bot table")
        key = (await _new_key(http, gm))["key"]
        for auth in ("query", "message"):
            async with gm.connect(token=key, auth=auth, transport="websocket") as table:  # type: ignore[arg-type]
                snapshot = await table.join(campaign["id"])
                assert snapshot["role"] == "gm"
        async with gm.connect(token=key, transport="sse") as stream:
            assert stream.session_id.startswith("ses_")


async def test_a_scoped_key_acts_in_its_campaign_only_and_never_above_its_role(
    gm: BridgeClient, http: httpx.AsyncClient
) -> None:
    """A key for campaign A as player: seated as player in A, refused in B, on the table and the HTTP API."""
    with anyio.fail_after(TEST_TIMEOUT):
        mine = await gm.create_campaign("Scoped A")
        other = await gm.create_campaign("Scoped B")
        key = (await _new_key(http, gm, campaign_id=mine["id"], role="player"))["key"]
        async with gm.connect(token=key, transport="websocket") as table:
            snapshot = await table.join(mine["id"])
            assert snapshot["role"] == "player"
            with pytest.raises(BridgeClientError) as refused:
                await table.join(other["id"])
            assert refused.value.code == "forbidden"
        assert (await http.get(f"/api/campaigns/{mine['id']}", headers=_bearer(key))).json()[
            "role"
        ] == "player"
        elsewhere = await http.get(f"/api/campaigns/{other['id']}", headers=_bearer(key))
        assert elsewhere.status_code == 403
        invite = await http.post(f"/api/campaigns/{mine['id']}/invites", json={}, headers=_bearer(key))
        assert invite.status_code == 403  # a player may not invite, whatever the owner may
        listed = (await http.get("/api/campaigns", headers=_bearer(key))).json()["campaigns"]
        assert [entry["id"] for entry in listed] == [mine["id"]]
        more_keys = await http.post("/api/auth/api-keys", json={}, headers=_bearer(key))
        assert more_keys.status_code == 403
        # A token from logging in with the key is exactly as narrow.
        pair = (await http.post("/api/auth/login", json={"apiKey": key})).json()
        assert (
            await http.get(f"/api/campaigns/{other['id']}", headers=_bearer(pair["access_token"]))
        ).status_code == 403


async def test_a_key_may_not_carry_a_role_above_its_owners(
    bridge: RunningBridge, gm: BridgeClient, http: httpx.AsyncClient
) -> None:
    """A player of a campaign cannot make a GM key for it, nor a key for a campaign they are not in."""
    with anyio.fail_after(TEST_TIMEOUT):
        campaign = await gm.create_campaign("Role cap")
        code = (await gm.create_invite(campaign["id"], role="player"))["code"]
        async with BridgeClient(bridge.base_url) as player:
            await player.register(f"pl{uuid.uuid4().hex[:10]}", PASSWORD)
            await player.join_campaign(code)
            too_high = await http.post(
                "/api/auth/api-keys",
                json={"campaign_id": campaign["id"], "role": "gm"},
                headers=_bearer(_access(player)),
            )
            assert too_high.status_code == 403
            assert (await _new_key(http, player, campaign_id=campaign["id"], role="spectator"))[
                "role"
            ] == "spectator"
            outsider = await http.post(
                "/api/auth/api-keys", json={"campaign_id": "camp_elsewhere"}, headers=_bearer(_access(player))
            )
    assert outsider.status_code == 403


async def test_revoking_a_key_closes_its_live_connections_at_once(
    gm: BridgeClient, http: httpx.AsyncClient
) -> None:
    """Sockets and streams of the key or its tokens close (1008); the key and its tokens stop working."""
    with anyio.fail_after(TEST_TIMEOUT):
        campaign = await gm.create_campaign("Revocation")
        created = await _new_key(http, gm)
        key = created["key"]
        pair = (await http.post("/api/auth/login", json={"apiKey": key})).json()
        async with (
            gm.connect(token=key, transport="websocket") as by_key,
            gm.connect(token=pair["access_token"], transport="sse") as by_token,
            gm.connect(transport="websocket") as by_password,
        ):
            await by_key.join(campaign["id"])
            revoked = await http.delete(f"/api/auth/api-keys/{created['id']}", headers=_bearer(_access(gm)))
            assert revoked.status_code == 204
            code, reason = await by_key.wait_closed()
            assert code == 1008
            assert "revoked" in reason
            await by_token.wait_closed()
            assert (await by_password.heartbeat())["type"] == "ack"  # the person's own session stays
        assert (await http.get("/api/auth/me", headers=_bearer(key))).status_code == 401
        assert (await http.get("/api/auth/me", headers=_bearer(pair["access_token"]))).status_code == 401
        assert (
            await http.post("/api/auth/refresh", headers=_bearer(pair["refresh_token"]))
        ).status_code == 401
        assert (await http.post("/api/auth/login", json={"apiKey": key})).status_code == 401
        with pytest.raises(ConnectionClosed) as closed:
            async with gm.connect(token=key, transport="websocket"):
                pass
    assert closed.value.close_code == 1008


async def test_the_command_line_makes_a_scoped_expiring_key_that_logs_in(
    bridge: RunningBridge, gm: BridgeClient, http: httpx.AsyncClient
) -> None:
    """ttrpg-bridge apikey create USER --campaign ID --role player --expires 30d prints a working key."""
    with anyio.fail_after(TEST_TIMEOUT):
        campaign = await gm.create_campaign("CLI key")
        name = gm.tokens.user["name"]  # type: ignore[union-attr]
        command = [sys.executable, "-m", "ttrpg_mcp.bridge.cli", "--data-dir", str(bridge.data_dir), "apikey"]
        made = await anyio.run_process(
            [*command, "create", name, "--campaign", campaign["id"], "--role", "player", "--expires", "30d"],
            check=False,
        )
        assert made.returncode == 0, made.stderr.decode()
        key = made.stdout.decode().strip()
        assert key.startswith("ttk_")
        pair = (await http.post("/api/auth/login", json={"apiKey": key})).json()
        detail = await http.get(f"/api/campaigns/{campaign['id']}", headers=_bearer(pair["access_token"]))
        assert detail.json()["role"] == "player"
        listed = (await http.get("/api/auth/api-keys", headers=_bearer(_access(gm)))).json()["keys"]
        assert listed[0]["expires_at"] is not None
        listing = await anyio.run_process([*command, "list", name], check=False)
        assert listed[0]["id"] in listing.stdout.decode()
        assert key not in listing.stdout.decode()
        revoked = await anyio.run_process([*command, "revoke", listed[0]["id"]], check=False)
        assert revoked.returncode == 0
    assert (await http.post("/api/auth/login", json={"apiKey": key})).status_code == 401


def test_durations_read_like_people_write_them() -> None:
    """30d, 12h, 90m, 3600s, 2w and never; anything else is refused."""
    from ttrpg_mcp.bridge.admin_parsers import parse_duration

    assert [parse_duration(text) for text in ("30d", "12h", "90m", "3600s", "2w", "never")] == [
        30 * 86400,
        12 * 3600,
        90 * 60,
        3600,
        14 * 86400,
        None,
    ]
    for bad in ("0d", "30", "d", "1y"):
        with pytest.raises(Exception, match="not a duration"):
            parse_duration(bad)


async def test_a_narrower_key_sits_beside_the_owners_wider_session_with_the_keys_role(
    gm: BridgeClient, http: httpx.AsyncClient
) -> None:
    """While the GM sits as GM, their player-limited key joins the same table as a player: it may
    do what a player may and sees what a player sees; the GM's own session keeps the GM's role."""
    with anyio.fail_after(TEST_TIMEOUT):
        campaign = await gm.create_campaign("One seat, two roles")
        key = (await _new_key(http, gm, campaign_id=campaign["id"], role="player"))["key"]
        async with gm.connect(transport="websocket") as person:
            await person.join(campaign["id"])
            async with gm.connect(token=key, transport="websocket") as bot:
                joined = await bot.join(campaign["id"])
                assert joined["role"] == "player"
                seats = [p for p in joined["participants"] if p["user_id"] == gm.tokens.user["id"]]  # type: ignore[union-attr]
                # One seat, shown at its widest role, with both sessions.
                assert [(p["role"], p["sessions"]) for p in seats] == [("gm", 2)]
                with pytest.raises(BridgeClientError) as refused:
                    await bot.update_campaign(description="the bot's")
                assert refused.value.code == "forbidden"
                await bot.roll_dice("1d20", "the bot's public roll")
                await person.update_campaign(description="the GM's")  # the GM session still acts as GM
                npc = {"campaign_id": campaign["id"], "name": "Ferryman", "secrets": ["Quillox-npc"]}
                await person.call_tool("create_npc", npc)
                # The GM's session hears the NPC with its secret; then a marker every seat hears after it.
                gm_heard = await until(person, lambda event: "Quillox-npc" in json.dumps(event))
                await person.roll_dice("1d4", "marker")
                heard = await until(bot, lambda event: "marker" in json.dumps(event))
    assert "Ferryman" in json.dumps(heard)  # the key's session got the NPC, as a player sees it
    assert "Quillox-npc" not in json.dumps(heard)
    assert "Quillox-npc" in json.dumps(gm_heard)
