"""Resends told apart from new requests in memory, and still answered across a restart."""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import pytest
from bridge_process import run_bridge

from ttrpg_mcp.bridge.resends import StoredRequests
from ttrpg_mcp.bridge.tool_index import ToolIndex, ToolIndexCache
from ttrpg_mcp.client import BridgeClient

TEST_TIMEOUT = 90.0


def test_a_sole_writer_knows_a_new_request_has_no_stored_reply() -> None:
    """Once loaded, only keys stored (or loaded) may hold a reply."""
    stored = StoredRequests(window=3600, sole_writer=True)
    stored.load([("alice", "r1")], complete=True)
    stored.add("bob", "r2")
    assert stored.may_hold("alice", "r1")
    assert stored.may_hold("bob", "r2")
    assert not stored.may_hold("alice", "r2")
    assert not stored.may_hold("carol", "r1")


def test_before_loading_or_on_a_shared_store_every_key_may_hold_a_reply() -> None:
    """Unloaded memory, or a store other bridges write too, answers nothing by itself."""
    unloaded = StoredRequests(window=3600, sole_writer=True)
    shared = StoredRequests(window=3600, sole_writer=False)
    shared.load([], complete=True)
    assert unloaded.may_hold("alice", "r1")
    assert shared.may_hold("alice", "r1")


def test_keys_forgotten_for_room_make_unknown_keys_uncertain() -> None:
    """Past capacity, a key never seen may be one forgotten: it is read from the store."""
    stored = StoredRequests(window=3600, sole_writer=True, capacity=2)
    stored.load([], complete=True)
    stored.add("alice", "r1")
    stored.add("alice", "r2")
    assert not stored.may_hold("alice", "never-sent")
    stored.add("alice", "r3")
    assert len(stored) == 2
    assert stored.may_hold("alice", "never-sent")


def test_an_incomplete_load_leaves_unknown_keys_uncertain() -> None:
    """More replies in the store than memory holds: unknown keys are read from the store."""
    stored = StoredRequests(window=3600, sole_writer=True, capacity=1)
    stored.load([("alice", "r9")], complete=False)
    assert stored.may_hold("alice", "r1")


def test_the_tool_index_answers_every_check_a_tool_call_makes() -> None:
    """Names sorted, read-only hint, schema and one validator per tool."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    catalog = {
        "tools": [
            {"name": "write", "inputSchema": schema},
            {"name": "look", "inputSchema": {}, "annotations": {"readOnlyHint": True}},
        ]
    }
    index = ToolIndex(catalog)
    assert index.names == ["look", "write"]
    assert "write" in index
    assert "delete" not in index
    assert index.read_only("look")
    assert not index.read_only("write")
    assert index.schema("look") is None
    assert index.validator("look") is None
    validator = index.validator("write")
    assert validator is not None
    assert validator is index.validator("write")
    assert not validator.is_valid({"n": "three"})


def test_the_tool_index_is_rebuilt_for_another_catalog_only() -> None:
    """The same catalog object keeps its index; a refetched one gets a new index."""
    cache = ToolIndexCache()
    first = {"tools": [{"name": "a"}]}
    index = cache.of(first)
    assert cache.of(first) is index
    second = {"tools": [{"name": "b"}]}
    assert cache.of(second).names == ["b"]


@pytest.mark.anyio
async def test_a_request_resent_to_a_restarted_bridge_is_answered_not_applied(tmp_path: Path) -> None:
    """A roll and a tool call kept before a restart are still recognised after it."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    name = f"gm-{uuid.uuid4().hex[:8]}"
    roll = {"id": f"roll-{uuid.uuid4().hex}", "type": "dice_roll", "data": {"expression": "1d1000"}}
    call = {
        "id": f"call-{uuid.uuid4().hex}",
        "type": "tool_call",
        "method": "roll_dice",
        "params": {"expression": "1d10000"},
    }
    with run_bridge(data_dir) as bridge:
        with anyio.fail_after(TEST_TIMEOUT):  # bounded once the bridge is up (it waits on its own)
            async with BridgeClient(bridge.base_url) as gm:
                await gm.register(name, "password123")
                campaign_id = (await gm.create_campaign("Power cut"))["id"]
                async with gm.connect(campaign_id=campaign_id) as table:
                    await table.next_event("campaign_snapshot")
                    first_roll = await table.request_raw(roll)
                    first_call = await table.request_raw(call)
    with run_bridge(data_dir) as bridge:
        with anyio.fail_after(TEST_TIMEOUT):
            async with BridgeClient(bridge.base_url) as gm:
                await gm.login(name, "password123")
                async with gm.connect(campaign_id=campaign_id) as table:
                    snapshot = (await table.next_event("campaign_snapshot"))["data"]
                    again_roll = await table.request_raw(roll)
                    again_call = await table.request_raw(call)
    assert again_roll.get("duplicate") is True, again_roll
    assert again_call.get("duplicate") is True, str((first_call, again_call))
    assert again_roll.get("data") == first_roll.get("data")
    assert again_call.get("result") == first_call.get("result")
    # each roll once: the table's own and the tool's (logged at the joined table)
    assert sorted(r["expression"] for r in snapshot["state"]["dice_rolls"]) == ["1d1000", "1d10000"]
