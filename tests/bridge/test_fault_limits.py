"""The pure bookkeeping behind the fault limits: connection caps, the descriptor reserve and the
outbox byte budget."""

from __future__ import annotations

from ttrpg_mcp.bridge.connection_limits import ConnectionLimits, effective_max_connections
from ttrpg_mcp.bridge.outbox_budget import OutboxBudget, encoded_size


def test_the_connection_cap_leaves_the_descriptor_reserve_free() -> None:
    assert effective_max_connections(4096, open_files=1024, fd_reserve=256) == 768
    assert effective_max_connections(100, open_files=1_048_576, fd_reserve=256) == 100
    assert effective_max_connections(4096, open_files=100, fd_reserve=256) == 1


def test_connections_are_capped_in_all_and_per_address() -> None:
    limits = ConnectionLimits(max_connections=3, max_per_address=2, header_timeout=1.0)
    assert limits.admit("10.0.0.1") is None
    assert limits.admit("10.0.0.1") is None
    assert "your address" in (limits.admit("10.0.0.1") or "")
    assert limits.admit("10.0.0.2") is None
    assert "maximum of 3 connections" in (limits.admit("10.0.0.3") or "")
    limits.release("10.0.0.1")
    assert limits.admit("10.0.0.3") is None
    assert limits.open == 3
    assert dict(limits.by_address) == {"10.0.0.1": 1, "10.0.0.2": 1, "10.0.0.3": 1}


def test_the_outbox_budget_counts_bytes_and_always_lets_one_message_through() -> None:
    small = {"type": "heartbeat"}
    big = {"type": "canvas_draw", "data": "x" * 500}
    budget = OutboxBudget(limit=600)
    assert budget.admit(big)
    assert not budget.admit(dict(big))  # would pass the limit: refused, nothing counted
    assert budget.queued == encoded_size(big)
    assert budget.admit(small)
    budget.release(big)
    budget.release(small)
    assert budget.queued == 0
    huge = {"data": "y" * 5000}
    assert budget.admit(huge)  # larger than the whole budget, but the queue was empty
    budget.release({"never": "admitted"})
    budget.release(huge)
    assert budget.queued == 0


def test_one_message_queued_twice_is_counted_twice() -> None:
    event = {"type": "dice_roll", "data": {"total": 7}}
    budget = OutboxBudget(limit=10_000)
    assert budget.admit(event)
    assert budget.admit(event)
    budget.release(event)
    assert budget.queued == encoded_size(event)
    budget.release(event)
    assert budget.queued == 0
