"""Who reads which audit log, the campaign actions it records, and the account commands of the CLI."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import jwt
import pytest
from bridge_process import RunningBridge, run_bridge
from sqlalchemy import create_engine, text

from ttrpg_mcp.client import BridgeClient

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 60.0
PASSWORD = "password123"  # noqa: S105  # the test accounts' password


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("admin") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


@pytest.fixture(scope="module")
def admin_name() -> str:
    return f"admin{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def admin(bridge: RunningBridge, admin_name: str) -> AsyncIterator[BridgeClient]:
    """The bridge's first account, hence its administrator."""
    async with BridgeClient(bridge.base_url) as client:
        try:
            await client.register(admin_name, PASSWORD)
        except Exception:  # registered by an earlier test of this module
            await client.login(admin_name, PASSWORD)
        yield client


async def _person(bridge: RunningBridge, stack: list[BridgeClient]) -> BridgeClient:
    client = BridgeClient(bridge.base_url)
    await client.__aenter__()
    stack.append(client)
    await client.register(f"u{uuid.uuid4().hex[:10]}", PASSWORD)
    return client


def _bearer(client: BridgeClient) -> dict[str, str]:
    assert client.tokens is not None
    return {"Authorization": f"Bearer {client.tokens.access_token}"}


def _signing_key(bridge: RunningBridge) -> str:
    """The bridge's generated key: its file, or its row when the store is a shared database."""
    url = os.environ.get("TTRPG_DATABASE_URL")
    if url is None:
        return (bridge.data_dir / "jwt-secret").read_text().strip()
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SELECT secret FROM signing_keys")).scalar_one())
    finally:
        engine.dispose()


def _cli(bridge: RunningBridge, *args: str) -> list[str]:
    return [sys.executable, "-m", "ttrpg_mcp.bridge.cli", "--data-dir", str(bridge.data_dir), *args]


async def test_the_gm_reads_the_campaigns_membership_and_invite_history(
    bridge: RunningBridge, admin: BridgeClient
) -> None:
    """Created, invite created and used, role changed, member removed: in the campaign's audit, by whom."""
    people: list[BridgeClient] = []
    try:
        with anyio.fail_after(TEST_TIMEOUT):
            gm, player = await _person(bridge, people), await _person(bridge, people)
            campaign = await gm.create_campaign("Audited")
            code = (await gm.create_invite(campaign["id"], role="player"))["code"]
            await player.join_campaign(code)
            player_id = str(player.tokens.user["id"])  # type: ignore[union-attr]
            await gm.set_member_role(campaign["id"], player_id, "spectator")
            await gm.remove_member(campaign["id"], player_id)
            async with httpx.AsyncClient(base_url=bridge.base_url) as http:
                page = await http.get(f"/api/campaigns/{campaign['id']}/audit", headers=_bearer(gm))
                account_page = await http.get("/api/admin/audit", headers=_bearer(gm))
    finally:
        for client in people:
            await client.__aexit__(None, None, None)
    entries = list(reversed(page.json()["entries"]))
    http_actions = [(e["action"], e["target"]) for e in entries if e["action"] in _CAMPAIGN_ACTIONS]
    assert http_actions == [
        ("campaign_created", campaign["id"]),
        ("invite_created", None),
        ("invite_used", player_id),
        ("role_changed", player_id),
        ("member_removed", player_id),
    ]
    assert code not in json.dumps(entries)
    assert account_page.status_code == 403  # a GM is not the administrator


_CAMPAIGN_ACTIONS = {"campaign_created", "invite_created", "invite_used", "role_changed", "member_removed"}


async def test_the_administrator_reads_account_events_and_keys_are_in_them(
    bridge: RunningBridge, admin: BridgeClient
) -> None:
    """GET /api/admin/audit lists sign-ins and API key creation and revocation, newest first."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with httpx.AsyncClient(base_url=bridge.base_url) as http:
            key = (await http.post("/api/auth/api-keys", json={}, headers=_bearer(admin))).json()
            await http.delete(f"/api/auth/api-keys/{key['id']}", headers=_bearer(admin))
            page = await http.get("/api/admin/audit", params={"limit": 5}, headers=_bearer(admin))
    assert page.status_code == 200
    actions = [entry["action"] for entry in page.json()["entries"]]
    assert actions[:2] == ["api_key_revoked", "api_key_created"]
    assert all(entry["campaign_id"] is None for entry in page.json()["entries"])
    assert key["key"] not in page.text


async def test_the_command_line_exports_and_deletes_an_account(
    bridge: RunningBridge, admin: BridgeClient
) -> None:
    """user export NAME prints the document; user delete NAME --yes deletes and says what became of it."""
    people: list[BridgeClient] = []
    try:
        with anyio.fail_after(TEST_TIMEOUT):
            person = await _person(bridge, people)
            name = str(person.tokens.user["name"])  # type: ignore[union-attr]
            campaign = await person.create_campaign("Alone")
            exported = await anyio.run_process(_cli(bridge, "user", "export", name), check=False)
            assert exported.returncode == 0, exported.stderr.decode()
            document = json.loads(exported.stdout)
            assert document["account"]["username"] == name
            assert [m["campaign_id"] for m in document["memberships"]] == [campaign["id"]]
            unconfirmed = await anyio.run_process(
                _cli(bridge, "user", "delete", name), check=False, input=b"no\n"
            )
            assert unconfirmed.returncode == 1
            deleted = await anyio.run_process(_cli(bridge, "user", "delete", name, "--yes"), check=False)
            assert deleted.returncode == 0, deleted.stderr.decode()
            assert json.loads(deleted.stdout)["campaigns"] == [
                {"campaign_id": campaign["id"], "outcome": "archived", "new_gm": None}
            ]
            async with httpx.AsyncClient(base_url=bridge.base_url) as http:
                login = await http.post("/api/auth/login", json={"username": name, "password": PASSWORD})
                me = await http.get("/api/auth/me", headers=_bearer(person))
    finally:
        for client in people:
            await client.__aexit__(None, None, None)
    assert login.status_code == 401
    assert me.status_code == 401


async def test_deleting_without_the_password_needs_a_fresh_sign_in_and_never_a_key(
    bridge: RunningBridge, admin: BridgeClient
) -> None:
    """No password: a token over five minutes old is refused, an API key is forbidden, a fresh one works."""
    people: list[BridgeClient] = []
    try:
        with anyio.fail_after(TEST_TIMEOUT):
            person = await _person(bridge, people)
            assert person.tokens is not None
            claims = jwt.decode(person.tokens.access_token, options={"verify_signature": False})
            secret = _signing_key(bridge)
            stale = jwt.encode(claims | {"iat": claims["iat"] - 600}, secret, algorithm="HS256")
            async with httpx.AsyncClient(base_url=bridge.base_url) as http:
                key = (await http.post("/api/auth/api-keys", json={}, headers=_bearer(person))).json()["key"]
                by_key = await http.request(
                    "DELETE", "/api/me", json={}, headers={"Authorization": f"Bearer {key}"}
                )
                old = await http.request(
                    "DELETE", "/api/me", json={}, headers={"Authorization": f"Bearer {stale}"}
                )
                fresh = await http.request("DELETE", "/api/me", json={}, headers=_bearer(person))
    finally:
        for client in people:
            await client.__aexit__(None, None, None)
    assert by_key.status_code == 403
    assert old.status_code == 401
    assert old.json()["error"]["code"] == "invalid_credentials"
    assert fresh.status_code == 200, fresh.text
    assert fresh.json() == {"deleted": True, "campaigns": []}


async def test_the_python_client_covers_keys_export_and_deletion(
    bridge: RunningBridge, admin: BridgeClient
) -> None:
    """create/list/revoke_api_key, login_with_api_key, export_account and delete_account round-trip."""
    people: list[BridgeClient] = []
    try:
        with anyio.fail_after(TEST_TIMEOUT):
            person = await _person(bridge, people)
            created = await person.create_api_key("script", role="spectator")
            assert [key["id"] for key in await person.list_api_keys()] == [created["id"]]
            async with BridgeClient(bridge.base_url) as bot:
                tokens = await bot.login_with_api_key(created["key"])
                assert tokens.user["id"] == person.tokens.user["id"]  # type: ignore[union-attr]
            await person.revoke_api_key(created["id"])
            assert (await person.list_api_keys())[0]["revoked_at"] is not None
            assert (await person.export_account())["api_keys"][0]["id"] == created["id"]
            assert await person.delete_account(PASSWORD) == {"deleted": True, "campaigns": []}
    finally:
        for client in people:
            await client.__aexit__(None, None, None)
