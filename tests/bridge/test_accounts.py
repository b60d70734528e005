"""A person's data end to end: export, deletion, the audit of HTTP actions, and what the files hold.

A real bridge with real MCP children plays a whole evening: a GM, a player who rolls, draws,
writes a note, plays a character and makes an API key, and a third person. Then the player
exports their data, deletes their account, and the bridge stops; the test reads ``bridge.db``
and ``content.db`` byte by byte for anything that would identify the player or let anyone in.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from bridge_process import RunningBridge, run_bridge

from ttrpg_mcp.bridge.accounts import DELETED_USER, DELETED_USER_ID
from ttrpg_mcp.client import BridgeClient

# The tests read bridge.db (and content.db) themselves: SQLite in every configuration.
pytestmark = [pytest.mark.anyio, pytest.mark.sqlite]

TEST_TIMEOUT = 90.0
PASSWORD = "password123"  # noqa: S105  # the test accounts' password


@pytest.fixture
def bridge(data_dir: Path) -> Iterator[RunningBridge]:
    """A bridge of this test's own: the test stops it to read its files."""
    with run_bridge(data_dir) as running:
        yield running


@pytest.fixture
async def http(bridge: RunningBridge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=bridge.base_url, timeout=30) as client:
        yield client


def _bearer(client: BridgeClient) -> dict[str, str]:
    assert client.tokens is not None
    return {"Authorization": f"Bearer {client.tokens.access_token}"}


def _files(data_dir: Path, name: str) -> bytes:
    """The database file and whatever its write-ahead log still holds."""
    return b"".join(path.read_bytes() for path in sorted(data_dir.glob(f"{name}*")) if path.is_file())


def _rows(path: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(query, args).fetchall()
    db.close()
    return rows


@dataclass
class Evening:
    """What the evening left behind: who played, where, and every secret handed out."""

    gm: BridgeClient
    player: BridgeClient
    friend: BridgeClient
    player_name: str
    player_shown: str
    table: dict[str, Any] = field(default_factory=dict)
    alone: dict[str, Any] = field(default_factory=dict)
    hosted: dict[str, Any] = field(default_factory=dict)
    key: dict[str, Any] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)

    @property
    def player_id(self) -> str:
        assert self.player.tokens is not None
        return str(self.player.tokens.user["id"])


async def _play(evening: Evening, http: httpx.AsyncClient, tag: str, data_dir: Path) -> None:
    """Register three people, make three campaigns, roll, draw, write a note, make a key."""
    gm, player, friend = evening.gm, evening.player, evening.friend
    evening.secrets.append((await gm.register(f"gm{tag}", PASSWORD)).refresh_token)
    tokens = await player.register(evening.player_name, PASSWORD, display_name=evening.player_shown)
    evening.secrets += [tokens.access_token, tokens.refresh_token]
    await friend.register(f"friend{tag}", PASSWORD)
    evening.table = table = await gm.create_campaign("Shared table")
    code = (await gm.create_invite(table["id"], role="player"))["code"]
    await player.join_campaign(code)
    # A campaign the player runs alone (archived on deletion) and one they run for a friend.
    evening.alone = await player.create_campaign("Solo")
    evening.hosted = await player.create_campaign("Hosted")
    friend_code = (await player.create_invite(evening.hosted["id"], role="spectator"))["code"]
    await friend.join_campaign(friend_code)
    evening.key = (
        await http.post("/api/auth/api-keys", json={"name": "bot"}, headers=_bearer(player))
    ).json()
    evening.secrets += [code, friend_code, evening.key["key"]]
    # A registration invite made from the shell: stored hashed like the others.
    made = await anyio.run_process(
        [sys.executable, "-m", "ttrpg_mcp.bridge.cli", "--data-dir", str(data_dir), "invite", "create"],
        check=False,
    )
    assert made.returncode == 0, made.stderr.decode()
    evening.secrets.append(made.stdout.decode().strip())
    character = {
        "campaign_id": table["id"],
        "name": "Brakka",
        "owner": evening.player_id,
        "player_name": evening.player_shown,
    }
    stroke = {"tool": "pen", "points": [[0, 0], [5, 5]], "color": "#00ff00", "width": 2}
    async with gm.connect(campaign_id=table["id"], transport="websocket") as gm_table:
        await gm_table.call_tool("create_character", character)
        async with player.connect(campaign_id=table["id"], transport="websocket") as seat:
            await seat.roll_dice("1d20+3", "attack")
            await seat.draw({"action": "stroke", "stroke": stroke})
    # Players may not write notes by default: the player writes one at the table they run.
    async with player.connect(campaign_id=evening.hosted["id"], transport="websocket") as hosting:
        note = {"campaign_id": evening.hosted["id"], "body": "The door was trapped."}
        await hosting.call_tool("add_note", note)


async def _export(evening: Evening, http: httpx.AsyncClient, password_hash: str) -> None:
    """The export holds the account, memberships, key, roll, stroke, character, note and audit."""
    exported = await http.get("/api/me/export", headers=_bearer(evening.player))
    assert exported.status_code == 200, exported.text
    document = exported.json()
    text = json.dumps(document)
    assert document["account"]["username"] == evening.player_name
    assert password_hash not in text
    assert evening.key["key"] not in text
    campaigns = {evening.table["id"], evening.alone["id"], evening.hosted["id"]}
    assert {m["campaign_id"] for m in document["memberships"]} == campaigns
    assert [k["prefix"] for k in document["api_keys"]] == [evening.key["prefix"]]
    assert [r["expression"] for r in document["dice_rolls"]] == ["1d20+3"]
    assert len(document["canvas_strokes"]) == 1
    assert [c["name"] for c in document["content"]["characters"]] == ["Brakka"]
    assert [n["body"] for n in document["content"]["notes"]] == ["The door was trapped."]
    actions = {entry["action"] for entry in document["audit_entries"]}
    assert {
        "account_registered",
        "invite_used",
        "api_key_created",
        "dice_roll",
        "account_exported",
    } <= actions


async def _delete(evening: Evening, http: httpx.AsyncClient) -> None:
    """A wrong password deletes nothing; the right one deletes and says what became of each campaign."""
    player, friend = evening.player, evening.friend
    wrong = await http.request(
        "DELETE", "/api/me", json={"password": "not it at all"}, headers=_bearer(player)
    )
    assert wrong.status_code == 401
    deleted = await http.request("DELETE", "/api/me", json={"password": PASSWORD}, headers=_bearer(player))
    assert deleted.status_code == 200, deleted.text
    outcomes = {o["campaign_id"]: o for o in deleted.json()["campaigns"]}
    assert outcomes[evening.table["id"]]["outcome"] == "left"
    assert outcomes[evening.alone["id"]]["outcome"] == "archived"
    assert friend.tokens is not None
    assert outcomes[evening.hosted["id"]]["outcome"] == "gm_passed"
    assert outcomes[evening.hosted["id"]]["new_gm"] == friend.tokens.user["id"]
    login = {"username": evening.player_name, "password": PASSWORD}
    assert (await http.post("/api/auth/login", json=login)).status_code == 401
    by_key = {"Authorization": f"Bearer {evening.key['key']}"}
    assert (await http.get("/api/auth/me", headers=by_key)).status_code == 401
    hosted = await http.get(f"/api/campaigns/{evening.hosted['id']}", headers=_bearer(friend))
    assert hosted.json()["role"] == "gm"
    audit_page = await http.get("/api/admin/audit", headers=_bearer(evening.gm))
    assert audit_page.status_code == 200
    assert "account_deleted" in {entry["action"] for entry in audit_page.json()["entries"]}


def _scan(evening: Evening, data_dir: Path, password_hash: str) -> None:
    """The stopped bridge's files: contributions kept as a deleted user's, nothing personal or secret."""
    bridge_db, content_db = data_dir / "bridge.db", data_dir / "content.db"
    assert _rows(bridge_db, "SELECT count(*) FROM dice_log WHERE player_name = ?", DELETED_USER) == [(1,)]
    assert _rows(bridge_db, "SELECT count(*) FROM canvas_strokes WHERE user_id IS NULL") == [(1,)]
    assert _rows(content_db, "SELECT owner, player_name FROM characters") == [(DELETED_USER_ID, DELETED_USER)]
    assert _rows(content_db, "SELECT author FROM notes") == [(DELETED_USER_ID,)]
    # Every audit entry that still carries an address belongs to an account that exists.
    users = {row[0] for row in _rows(bridge_db, "SELECT id FROM users")}
    with_address = _rows(bridge_db, "SELECT user_id, action FROM audit_log WHERE detail LIKE '%address%'")
    assert all(user_id in users or action == "sign_in" for user_id, action in with_address)
    personal = (evening.player_name, evening.player_shown, evening.player_id, password_hash)
    for name in ("bridge.db", "content.db"):
        raw = _files(data_dir, name)
        for word in (*personal, *evening.secrets):
            assert word.encode() not in raw, (name, word[:12])


async def test_a_whole_evening_then_export_and_deletion_leave_nothing_personal_or_secret(
    bridge: RunningBridge, http: httpx.AsyncClient
) -> None:
    """Export holds the player's data; deletion keeps their contributions as a deleted user's,
    passes on or archives their campaigns, and neither database file then holds their name,
    id, password hash or addresses, nor any invite code, token or key handed out."""
    tag = uuid.uuid4().hex[:6]
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            BridgeClient(bridge.base_url) as gm,
            BridgeClient(bridge.base_url) as player,
            BridgeClient(bridge.base_url) as friend,
        ):
            evening = Evening(gm, player, friend, f"playerq{tag}", f"Quentin Zyx {tag}")
            await _play(evening, http, tag, bridge.data_dir)
            (password_hash,) = _rows(
                bridge.data_dir / "bridge.db",
                "SELECT password_hash FROM users WHERE id = ?",
                evening.player_id,
            )[0]
            await _export(evening, http, password_hash)
            await _delete(evening, http)
    bridge.terminate()
    _scan(evening, bridge.data_dir, password_hash)
