"""The event log's durable side on a real SQLite file: replay plans, retention, request replies."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge import campaigns, events
from ttrpg_mcp.bridge.store import BridgeStore, CampaignEvent, RequestReply, User, utcnow

CAMPAIGN = "camp_log"
_NOT_A_HASH = "not-a-hash"  # these users never log in


@pytest.fixture
def store(data_dir: Path) -> Iterator[BridgeStore]:
    """A migrated store with one user, one campaign and 150 events in its log."""
    store = BridgeStore(bridge_store_url(data_dir))
    store.migrate()
    with store.session() as db:
        db.add(User(id="usr_gm", name="gm", name_key="gm", display_name="GM", password_hash=_NOT_A_HASH))
        db.flush()
        campaigns.create_campaign(db, CAMPAIGN, "Log", "usr_gm")
        for index in range(150):
            campaigns.append_event(db, CAMPAIGN, "state_update", {"n": index})
    yield store
    store.close()


def test_a_retained_gap_is_replayed_exactly(store: BridgeStore) -> None:
    """From seq 120 the plan is the 30 events after it, in order, recovered."""
    with store.session(readonly=True) as db:
        epoch, seq = campaigns.campaign_epoch_and_seq(db, CAMPAIGN)
        plan = events.plan_replay(db, CAMPAIGN, 120, epoch, limit=1000)
    assert plan.recovered
    assert [event.seq for event in plan.events] == list(range(121, 151))
    assert (plan.seq, plan.epoch) == (seq, epoch)


def test_an_up_to_date_client_is_recovered_with_nothing_to_replay(store: BridgeStore) -> None:
    """last_seq equal to the log's head: recovered, no events."""
    with store.session(readonly=True) as db:
        plan = events.plan_replay(db, CAMPAIGN, 150, None, limit=10)
    assert plan.recovered
    assert plan.events == []


def test_retention_drops_old_events_and_then_a_gap_needs_a_snapshot(store: BridgeStore) -> None:
    """keep=100 removes the oldest 50; a client at seq 10 is then told it cannot be replayed."""
    with store.session() as db:
        removed = events.prune(db, keep=100, max_age=timedelta(days=1), dedupe_window=timedelta(days=1))
    assert removed["events"] == 50
    with store.session(readonly=True) as db:
        plan = events.plan_replay(db, CAMPAIGN, 10, None, limit=10_000)
        kept = events.plan_replay(db, CAMPAIGN, 50, None, limit=10_000)
    assert not plan.recovered
    assert plan.reason is not None
    assert "no longer retained" in plan.reason
    assert kept.recovered
    assert len(kept.events) == 100


def test_retention_by_age_and_the_dedupe_window(store: BridgeStore) -> None:
    """Events older than max_age go; request replies older than the window go; newer ones stay."""
    old = utcnow() - timedelta(days=30)
    with store.session() as db:
        db.execute(update(CampaignEvent).where(CampaignEvent.seq <= 20).values(created_at=old))
        events.store_reply(db, "usr_gm", "old-request", {"type": "ack"})
        events.store_reply(db, "usr_gm", "new-request", {"type": "ack"})
        db.execute(
            update(RequestReply).where(RequestReply.request_id == "old-request").values(created_at=old)
        )
    with store.session() as db:
        removed = events.prune(db, keep=10_000, max_age=timedelta(days=7), dedupe_window=timedelta(days=1))
    assert (removed["events"], removed["request_replies"]) == (20, 1)
    with store.session(readonly=True) as db:
        assert events.stored_reply(db, "usr_gm", "old-request") is None
        assert events.stored_reply(db, "usr_gm", "new-request") == {"type": "ack"}


def test_storing_a_reply_twice_keeps_the_first(store: BridgeStore) -> None:
    """The dedupe record is written once; a second store of the same request changes nothing."""
    with store.session() as db:
        events.store_reply(db, "usr_gm", "r1", {"total": 7})
        events.store_reply(db, "usr_gm", "r1", {"total": 3})
    with store.session(readonly=True) as db:
        assert events.stored_reply(db, "usr_gm", "r1") == {"total": 7}
