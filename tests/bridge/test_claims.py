"""Campaigns from either door: one made over stdio is claimed by the bridge's administrator.

A ``ttrpg-mcp`` process on the bridge's data directory (as Claude Desktop runs it) creates a
campaign; the bridge has no members for it until its administrator (the first account) claims
it over HTTP, or an account is made its GM with ``ttrpg-bridge campaign claim``.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from bridge_process import RunningBridge, run_bridge

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge.admin import run_admin_command
from ttrpg_mcp.bridge.auth import users
from ttrpg_mcp.bridge.claims import claim_campaign, unclaimed_campaigns
from ttrpg_mcp.bridge.cli import _parser as bridge_parser
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.store import BridgeStore
from ttrpg_mcp.client import BridgeClient, BridgeClientError
from ttrpg_mcp.server.launch import connect

TEST_TIMEOUT = 180.0
PASSWORD = "correct horse battery"  # noqa: S105  # the test accounts' password, on purpose


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("claims") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


async def _create_over_stdio(data_dir: Path, name: str) -> str:
    """What Claude Desktop does: its own ttrpg-mcp on the same data directory."""
    async with connect(data_dir) as session:
        result = await session.call_tool("create_campaign", {"name": name})
    assert result.structured_content is not None
    return str(result.structured_content["id"])


@pytest.mark.anyio
async def test_the_admin_sees_and_claims_a_campaign_made_over_stdio(bridge: RunningBridge) -> None:
    """The first account lists the stdio campaign, claims it as GM and opens its table; others may not."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with BridgeClient(bridge.base_url) as admin, BridgeClient(bridge.base_url) as other:
            admin_tokens = await admin.register(
                f"admin-{uuid.uuid4().hex[:6]}", PASSWORD
            )  # the first account
            other_tokens = await other.register(f"other-{uuid.uuid4().hex[:6]}", PASSWORD)
            async with httpx.AsyncClient(base_url=bridge.base_url) as http:
                bearer = {"Authorization": f"Bearer {admin_tokens.access_token}"}
                admin_me = (await http.get("/api/auth/me", headers=bearer)).json()
            campaign_id = await _create_over_stdio(bridge.data_dir, "Made by Claude")
            made_here = (await admin.create_campaign("Made at the table"))["id"]
            unclaimed = await admin.list_unclaimed_campaigns()
            with pytest.raises(BridgeClientError) as listing_refused:
                await other.list_unclaimed_campaigns()
            with pytest.raises(BridgeClientError) as claim_refused:
                await other.claim_campaign(campaign_id)
            detail = await admin.claim_campaign(campaign_id)
            with pytest.raises(BridgeClientError) as again:
                await admin.claim_campaign(campaign_id)
            with pytest.raises(BridgeClientError) as unknown:
                await admin.claim_campaign("camp_000000000000")
            after = await admin.list_unclaimed_campaigns()
            async with admin.connect() as table:
                snapshot = await table.join(campaign_id)
                content = await table.call_tool("get_campaign", {"campaign_id": campaign_id})
    assert admin_tokens.user["is_admin"] is True
    assert other_tokens.user["is_admin"] is False
    assert admin_me["is_admin"] is True
    assert [c["id"] for c in unclaimed if c["id"] == campaign_id] == [campaign_id]
    assert made_here not in [c["id"] for c in unclaimed]
    assert {c["name"] for c in unclaimed} >= {"Made by Claude"}
    assert listing_refused.value.code == "forbidden"
    assert claim_refused.value.code == "forbidden"
    assert detail["id"] == campaign_id
    assert detail["name"] == "Made by Claude"
    assert detail["role"] == "gm"
    assert again.value.code == "conflict"
    assert unknown.value.code == "not_found"
    assert campaign_id not in [c["id"] for c in after]
    assert snapshot["role"] == "gm"
    assert content["id"] == campaign_id


def test_the_claim_command_makes_an_account_the_gm(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ttrpg-bridge campaign claim ID --gm NAME` on a stdio campaign; `user add --admin` marks admins."""
    settings = BridgeSettings(data_dir=data_dir)

    def run(*argv: str) -> int:
        return run_admin_command(bridge_parser().parse_args(list(argv)), settings)

    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n{PASSWORD}\n{PASSWORD}\n"))
    assert run("user", "add", "first", "--password-stdin") == 0
    assert run("user", "add", "second", "--password-stdin") == 0
    assert run("user", "add", "third", "--password-stdin", "--admin") == 0
    campaign_id = anyio.run(_create_over_stdio, data_dir, "Stdio Saga")
    assert run("campaign", "unclaimed") == 0
    assert campaign_id in capsys.readouterr().out
    assert run("campaign", "claim", campaign_id, "--gm", "second") == 0
    assert "second is now the GM of 'Stdio Saga'" in capsys.readouterr().out
    assert run("campaign", "claim", campaign_id, "--gm", "first") == 1
    assert "already has members" in capsys.readouterr().err
    assert run("campaign", "claim", "camp_000000000000", "--gm", "first") == 1
    assert run("campaign", "unclaimed") == 0
    assert campaign_id not in capsys.readouterr().out
    store = BridgeStore(settings.resolved_database_url)
    try:
        with store.session(readonly=True) as db:
            admins = {user.name: user.is_admin for user in users.list_users(db)}
    finally:
        store.close()
    assert admins == {"first": True, "second": False, "third": True}


def test_claiming_keeps_the_content_store_id_and_refuses_a_campaign_with_members(data_dir: Path) -> None:
    """The bridge's record takes the content store's id; a record left without members can be claimed."""
    store = BridgeStore(bridge_store_url(data_dir))
    store.migrate()
    try:
        with store.session() as db:
            admin = users.add_user(db, "admin", PASSWORD)
            other = users.add_user(db, "other", PASSWORD)
            listed = [{"id": "camp_aaaaaaaaaaaa", "name": "A"}, {"id": "camp_bbbbbbbbbbbb", "name": "B"}]
            assert [c.id for c in unclaimed_campaigns(db, listed)] == [
                "camp_aaaaaaaaaaaa",
                "camp_bbbbbbbbbbbb",
            ]
            record = claim_campaign(db, "camp_aaaaaaaaaaaa", "A", admin.id)
            assert record.id == "camp_aaaaaaaaaaaa"
            assert [c.id for c in unclaimed_campaigns(db, listed)] == ["camp_bbbbbbbbbbbb"]
            with pytest.raises(BridgeError, match="already has members"):
                claim_campaign(db, "camp_aaaaaaaaaaaa", "A", other.id)
    finally:
        store.close()
