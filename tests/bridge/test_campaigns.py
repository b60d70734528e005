"""Campaign rooms in the bridge's store, on a real SQLite file: members, state, canvas, dice, events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge import campaigns
from ttrpg_mcp.bridge.auth.digests import secret_digest
from ttrpg_mcp.bridge.canvas import Stroke
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.state import apply_change
from ttrpg_mcp.bridge.store import BridgeStore, CampaignInvite, CanvasStroke, DiceLogEntry, User, utcnow

# In-process SQLite: every wait here is a local file lock, bounded by busy_timeout.
TEST_TIMEOUT = 10.0
CAMPAIGN = "camp_0123456789ab"
_NOT_A_HASH = "not-an-argon2-hash"


def _user(name: str) -> User:
    return User(
        id=f"usr_{name}", name=name, name_key=name, display_name=name.title(), password_hash=_NOT_A_HASH
    )


def _open(data_dir: Path) -> BridgeStore:
    store = BridgeStore(bridge_store_url(data_dir))
    store.migrate()
    return store


@pytest.fixture
def store(data_dir: Path) -> Iterator[BridgeStore]:
    """A migrated store with three users (gm, ann, bob) and one campaign run by gm."""
    store = _open(data_dir)
    with store.session() as db:
        for name in ("gm", "ann", "bob"):
            db.add(_user(name))
        db.flush()
        campaigns.create_campaign(db, CAMPAIGN, "Ashes of the Crown", "usr_gm")
    yield store
    store.close()


def _seat(db: Session, user_id: str, role: str, campaign_id: str = CAMPAIGN) -> None:
    invite = campaigns.create_invite(db, campaign_id, role, "usr_gm")
    campaigns.join_with_code(db, invite.code, user_id)


def _refused(store: BridgeStore, code: str, fn: Any) -> BridgeError:
    with pytest.raises(BridgeError) as raised, store.session() as db:
        fn(db)
    assert raised.value.code == code, raised.value.message
    return raised.value


def _pen(x: float = 0) -> Stroke:
    return Stroke.model_validate({"tool": "pen", "points": [[x, 0], [x, 1]], "color": "#000", "width": 1})


# -- campaigns and members --------------------------------------------------------------------


def test_a_new_campaign_has_its_creator_as_gm_an_empty_table_and_an_epoch(store: BridgeStore) -> None:
    """Creating records the campaign, seats the creator as GM and stores a fresh shared state."""
    with store.session(readonly=True) as db:
        record = campaigns.get_campaign(db, CAMPAIGN)
        assert (record.name, record.created_by, record.archived) == ("Ashes of the Crown", "usr_gm", False)
        assert len(record.epoch) == 16
        assert campaigns.get_role(db, CAMPAIGN, "usr_gm") == "gm"
        state = campaigns.load_state(db, CAMPAIGN)
        assert (state.version, state.document) == (0, {"shared_notes": "", "custom": {}})
        assert campaigns.campaign_epoch_and_seq(db, CAMPAIGN) == (record.epoch, 0)


def test_recording_a_campaign_twice_or_for_nobody_is_refused(store: BridgeStore) -> None:
    """A taken id is a conflict; an unknown creator is not_found."""
    _refused(store, "conflict", lambda db: campaigns.create_campaign(db, CAMPAIGN, "Again", "usr_gm"))
    _refused(store, "not_found", lambda db: campaigns.create_campaign(db, "camp_x", "X", "usr_nobody"))


def test_a_member_lists_their_campaigns_with_role_and_member_count(store: BridgeStore) -> None:
    """Each summary has the caller's own role and how many people are seated."""
    with store.session() as db:
        _seat(db, "usr_ann", "player")
        campaigns.create_campaign(db, "camp_second", "Second", "usr_ann")
    with store.session(readonly=True) as db:
        listed = campaigns.list_campaigns_for(db, "usr_ann")
        assert {(c.id, c.role, c.member_count) for c in listed} == {
            (CAMPAIGN, "player", 2),
            ("camp_second", "gm", 1),
        }
        assert campaigns.list_campaigns_for(db, "usr_bob") == []


def test_only_members_have_a_role(store: BridgeStore) -> None:
    """A non-member gets forbidden, whether or not the campaign exists."""
    error = _refused(store, "forbidden", lambda db: campaigns.require_role(db, CAMPAIGN, "usr_bob"))
    assert error.message == "not a member of this campaign"
    _refused(store, "forbidden", lambda db: campaigns.require_role(db, "camp_nope", "usr_gm"))


def test_members_are_listed_in_joining_order_with_names(store: BridgeStore) -> None:
    """Each member with name, display name and role."""
    with store.session() as db:
        _seat(db, "usr_ann", "player")
        _seat(db, "usr_bob", "spectator")
    with store.session(readonly=True) as db:
        listed = campaigns.members(db, CAMPAIGN)
    assert [(m.user_id, m.display_name, m.role) for m in listed] == [
        ("usr_gm", "Gm", "gm"),
        ("usr_ann", "Ann", "player"),
        ("usr_bob", "Bob", "spectator"),
    ]


def test_an_invite_seats_people_with_its_role_until_its_uses_run_out(store: BridgeStore) -> None:
    """Two uses seat two people; the third is refused as used up."""
    with store.session() as db:
        invite = campaigns.create_invite(db, CAMPAIGN, "spectator", "usr_gm", uses=2)
        assert len(invite.code) >= 16
        summary, role = campaigns.join_with_code(db, invite.code, "usr_ann")
        assert (summary.id, summary.role, role) == (CAMPAIGN, "spectator", "spectator")
        db.add(_user("cid"))
        db.flush()
        campaigns.join_with_code(db, invite.code, "usr_cid")
    error = _refused(store, "forbidden", lambda db: campaigns.join_with_code(db, invite.code, "usr_bob"))
    assert error.data == {"reason": "used_up"}


def test_joining_again_keeps_the_existing_role_and_spends_no_use(store: BridgeStore) -> None:
    """The GM following their own spectator link stays GM, and the link keeps its use."""
    with store.session() as db:
        invite = campaigns.create_invite(db, CAMPAIGN, "spectator", "usr_gm")
        assert campaigns.join_with_code(db, invite.code, "usr_gm")[1] == "gm"
        assert campaigns.join_with_code(db, invite.code, "usr_ann")[1] == "spectator"


def test_an_expired_or_unknown_invite_seats_nobody(store: BridgeStore) -> None:
    """Past its expiry a code is forbidden; a code that never existed is not_found."""
    with store.session() as db:
        invite = campaigns.create_invite(db, CAMPAIGN, "player", "usr_gm")
        db.execute(
            update(CampaignInvite)
            .where(CampaignInvite.code_hash == secret_digest(invite.code))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    error = _refused(store, "forbidden", lambda db: campaigns.join_with_code(db, invite.code, "usr_ann"))
    assert error.data == {"reason": "expired"}
    _refused(store, "not_found", lambda db: campaigns.join_with_code(db, "no-such-code-at-all", "usr_ann"))
    _refused(store, "not_found", lambda db: campaigns.join_with_code(db, "x" * 500, "usr_ann"))


@pytest.mark.parametrize(
    ("role", "uses", "ttl"),
    [
        ("overlord", 1, 3600),
        ("player", 0, 3600),
        ("player", 1000, 3600),
        ("player", 1, 1),
        ("player", 1, 10**9),
    ],
)
def test_invites_with_bad_roles_uses_or_lifetimes_are_refused(
    store: BridgeStore, role: str, uses: int, ttl: int
) -> None:
    """The role must exist, uses and lifetime are bounded."""
    _refused(
        store,
        "invalid_params",
        lambda db: campaigns.create_invite(db, CAMPAIGN, role, "usr_gm", uses=uses, ttl_seconds=ttl),
    )


def test_roles_change_and_members_leave_but_a_campaign_keeps_a_gm(store: BridgeStore) -> None:
    """Promote, demote, remove; demoting or removing the last GM is a conflict."""
    with store.session() as db:
        _seat(db, "usr_ann", "player")
        assert campaigns.set_role(db, CAMPAIGN, "usr_ann", "gm").role == "gm"
        campaigns.set_role(db, CAMPAIGN, "usr_gm", "player")
        campaigns.remove_member(db, CAMPAIGN, "usr_gm")
        assert campaigns.get_role(db, CAMPAIGN, "usr_gm") is None
    _refused(store, "conflict", lambda db: campaigns.set_role(db, CAMPAIGN, "usr_ann", "spectator"))
    _refused(store, "conflict", lambda db: campaigns.remove_member(db, CAMPAIGN, "usr_ann"))
    _refused(store, "not_found", lambda db: campaigns.set_role(db, CAMPAIGN, "usr_bob", "player"))
    _refused(store, "not_found", lambda db: campaigns.remove_member(db, "camp_nope", "usr_ann"))
    _refused(store, "invalid_params", lambda db: campaigns.set_role(db, CAMPAIGN, "usr_ann", "king"))


# -- shared state ------------------------------------------------------------------------------


def test_the_shared_state_is_saved_and_loaded_whole(store: BridgeStore) -> None:
    """Document, version, time and history come back as they were saved."""
    with store.session() as db:
        state = campaigns.load_state(db, CAMPAIGN)
        apply_change(state, ["shared_notes"], "set", "The bridge is out.", 0)
        apply_change(state, ["custom", "map"], "set", {"grid": True, "zoom": 2}, 1)
        campaigns.save_state(db, state)
    with store.session(readonly=True) as db:
        assert campaigns.load_state(db, CAMPAIGN) == state


def test_saving_an_older_version_over_a_newer_one_is_a_conflict(store: BridgeStore) -> None:
    """A stale writer (another node) cannot roll the stored state back."""
    with store.session() as db:
        stale = campaigns.load_state(db, CAMPAIGN)
        fresh = campaigns.load_state(db, CAMPAIGN)
        apply_change(fresh, ["shared_notes"], "set", "a", None)
        apply_change(fresh, ["shared_notes"], "set", "b", None)
        campaigns.save_state(db, fresh)
    apply_change(stale, ["shared_notes"], "set", "old", None)
    _refused(store, "conflict", lambda db: campaigns.save_state(db, stale))


def test_the_state_of_an_unknown_campaign_is_not_found(store: BridgeStore) -> None:
    """No campaign, no table."""
    _refused(store, "not_found", lambda db: campaigns.load_state(db, "camp_nope"))


# -- canvas ------------------------------------------------------------------------------------


def test_strokes_come_back_in_drawing_order_with_server_ids(store: BridgeStore) -> None:
    """Each stored stroke gets a stk_ id (a client's is replaced), its author and time."""
    with store.session() as db:
        _seat(db, "usr_ann", "player")
        first = campaigns.add_stroke(db, CAMPAIGN, "usr_ann", _pen(1).model_copy(update={"id": "mine"}))
        second = campaigns.add_stroke(db, CAMPAIGN, "usr_gm", _pen(2))
    assert first["id"].startswith("stk_")
    assert first["id"] != "mine"
    assert first["user_id"] == "usr_ann"
    assert first["points"] == [[1.0, 0.0], [1.0, 1.0]]
    with store.session(readonly=True) as db:
        assert [s["id"] for s in campaigns.canvas(db, CAMPAIGN)] == [first["id"], second["id"]]


def test_a_player_erases_their_own_strokes_and_only_a_gm_erases_others(store: BridgeStore) -> None:
    """Erasing someone else's stroke without any_owner is forbidden; with it (a GM) it works."""
    with store.session() as db:
        mine = campaigns.add_stroke(db, CAMPAIGN, "usr_ann", _pen())["id"]
        theirs = campaigns.add_stroke(db, CAMPAIGN, "usr_bob", _pen())["id"]
        campaigns.erase_stroke(db, CAMPAIGN, mine, "usr_ann", any_owner=False)
    _refused(
        store,
        "forbidden",
        lambda db: campaigns.erase_stroke(db, CAMPAIGN, theirs, "usr_ann", any_owner=False),
    )
    _refused(
        store, "not_found", lambda db: campaigns.erase_stroke(db, CAMPAIGN, mine, "usr_ann", any_owner=False)
    )
    _refused(
        store, "not_found", lambda db: campaigns.erase_stroke(db, "camp_x", theirs, "usr_gm", any_owner=True)
    )
    with store.session() as db:
        campaigns.erase_stroke(db, CAMPAIGN, theirs, "usr_gm", any_owner=True)
        assert campaigns.canvas(db, CAMPAIGN) == []


def test_clearing_the_canvas_removes_every_stroke_and_drawing_goes_on(store: BridgeStore) -> None:
    """After a clear the canvas is empty; strokes drawn afterwards show."""
    with store.session() as db:
        for x in range(3):
            campaigns.add_stroke(db, CAMPAIGN, "usr_gm", _pen(x))
        assert campaigns.clear_canvas(db, CAMPAIGN) == 3
        after = campaigns.add_stroke(db, CAMPAIGN, "usr_gm", _pen(9))
    with store.session(readonly=True) as db:
        assert [s["id"] for s in campaigns.canvas(db, CAMPAIGN)] == [after["id"]]
        assert campaigns.get_campaign(db, CAMPAIGN) is not None


def test_a_canvas_belongs_to_one_campaign(store: BridgeStore) -> None:
    """Strokes never show on another campaign's canvas."""
    with store.session() as db:
        campaigns.create_campaign(db, "camp_other", "Other", "usr_bob")
        campaigns.add_stroke(db, "camp_other", "usr_bob", _pen())
        assert campaigns.canvas(db, CAMPAIGN) == []


def test_a_full_canvas_refuses_more_strokes(store: BridgeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_LIVE_STROKES live strokes, drawing is refused until something is erased."""
    monkeypatch.setattr(campaigns, "MAX_LIVE_STROKES", 2)
    with store.session() as db:
        campaigns.add_stroke(db, CAMPAIGN, "usr_gm", _pen())
        first = campaigns.add_stroke(db, CAMPAIGN, "usr_gm", _pen())
    _refused(store, "invalid_params", lambda db: campaigns.add_stroke(db, CAMPAIGN, "usr_gm", _pen()))
    with store.session() as db:
        campaigns.erase_stroke(db, CAMPAIGN, first["id"], "usr_gm", any_owner=True)
        campaigns.add_stroke(db, CAMPAIGN, "usr_gm", _pen())


# -- dice log ----------------------------------------------------------------------------------


def _roll(db: Session, user_id: str, visibility: str, total: int = 7) -> dict[str, Any]:
    payload = {"expression": "1d20+2", "purpose": "attack", "total": total, "results": [total - 2]}
    return campaigns.add_roll(
        db, CAMPAIGN, user_id, user_id.removeprefix("usr_").title(), payload, visibility
    )


def test_a_logged_roll_carries_who_rolled_what_and_the_result(store: BridgeStore) -> None:
    """The entry merges the roll's result with player id, name, visibility and time."""
    with store.session() as db:
        entry = _roll(db, "usr_ann", "public", total=17)
    assert entry["player_id"] == "usr_ann"
    assert entry["player_name"] == "Ann"
    assert (entry["expression"], entry["purpose"], entry["total"], entry["results"]) == (
        "1d20+2",
        "attack",
        17,
        [15],
    )
    assert entry["visibility"] == "public"


def test_only_the_last_fifty_rolls_are_kept(store: BridgeStore) -> None:
    """Older rolls are pruned as new ones arrive, per campaign."""
    with store.session() as db:
        for total in range(campaigns.ROLL_LOG_LIMIT + 5):
            _roll(db, "usr_ann", "public", total=total)
    with store.session(readonly=True) as db:
        kept = campaigns.recent_rolls(db, CAMPAIGN, viewer_id="usr_ann", reveal_hidden=False)
        stored = db.scalars(select(DiceLogEntry.id).where(DiceLogEntry.campaign_id == CAMPAIGN)).all()
    assert [r["total"] for r in kept] == list(range(5, campaigns.ROLL_LOG_LIMIT + 5))
    assert len(stored) == campaigns.ROLL_LOG_LIMIT


def test_recent_rolls_show_each_viewer_only_what_they_may_see(store: BridgeStore) -> None:
    """public to all; gm to roller and GMs; blind to GMs only; self to the roller only."""
    with store.session() as db:
        for visibility in ("public", "gm", "blind", "self"):
            _roll(db, "usr_ann", visibility)

    def seen(viewer: str, *, gm: bool) -> list[str]:
        with store.session(readonly=True) as db:
            rolls = campaigns.recent_rolls(db, CAMPAIGN, viewer_id=viewer, reveal_hidden=gm)
        return [r["visibility"] for r in rolls]

    assert seen("usr_ann", gm=False) == ["public", "gm", "self"]
    assert seen("usr_gm", gm=True) == ["public", "gm", "blind"]
    assert seen("usr_bob", gm=False) == ["public"]


def test_an_unknown_visibility_is_refused(store: BridgeStore) -> None:
    """The dice log takes only the four visibilities."""
    _refused(store, "invalid_params", lambda db: _roll(db, "usr_ann", "whisper"))


# -- event log ---------------------------------------------------------------------------------


def test_events_are_numbered_without_gaps_per_campaign(store: BridgeStore) -> None:
    """Each campaign counts its own seq from 1; events carry the campaign's epoch."""
    with store.session() as db:
        campaigns.create_campaign(db, "camp_other", "Other", "usr_bob")
        seqs = [campaigns.append_event(db, CAMPAIGN, "dice_roll", {"n": n}).seq for n in range(3)]
        other = campaigns.append_event(db, "camp_other", "dice_roll", {})
        epoch, last = campaigns.campaign_epoch_and_seq(db, CAMPAIGN)
    assert seqs == [1, 2, 3]
    assert other.seq == 1
    assert last == 3
    with store.session(readonly=True) as db:
        assert {event.epoch for event in campaigns.events_since(db, CAMPAIGN, 0)} == {epoch}


def test_events_since_returns_what_came_after_in_order(store: BridgeStore) -> None:
    """Replay: events after a seq, oldest first, bounded by limit, with type, scope, audience, payload."""
    with store.session() as db:
        for n in range(5):
            campaigns.append_event(db, CAMPAIGN, "state_update", {"n": n}, audience={"roles": ["gm"]})
    with store.session(readonly=True) as db:
        after = campaigns.events_since(db, CAMPAIGN, 2)
        limited = campaigns.events_since(db, CAMPAIGN, 0, limit=2)
    assert [(e.seq, e.payload["n"]) for e in after] == [(3, 2), (4, 3), (5, 4)]
    assert after[0].type == "state_update"
    assert after[0].scope == "campaign"
    assert after[0].audience == {"roles": ["gm"]}
    assert [e.seq for e in limited] == [1, 2]


def test_an_event_rolled_back_with_its_unit_of_work_leaves_no_gap(store: BridgeStore) -> None:
    """seq is allocated in the event's own transaction, so a failed unit gives its number back."""

    def fails() -> None:
        with store.session() as db:
            campaigns.append_event(db, CAMPAIGN, "x", {})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fails()
    with store.session() as db:
        assert campaigns.append_event(db, CAMPAIGN, "x", {}).seq == 1


@pytest.mark.anyio
async def test_concurrent_appends_get_distinct_consecutive_seqs(store: BridgeStore) -> None:
    """Twenty appends from worker threads at once: seqs 1..20, each once."""
    seqs: list[int] = []

    async def append(n: int) -> None:
        event = await store.run(lambda db: campaigns.append_event(db, CAMPAIGN, "cursor", {"n": n}))
        seqs.append(event.seq)

    with anyio.fail_after(TEST_TIMEOUT):
        async with anyio.create_task_group() as group:
            for n in range(20):
                group.start_soon(append, n)
    assert sorted(seqs) == list(range(1, 21))


@pytest.mark.parametrize(
    ("scope", "audience"),
    [
        ("galaxy", None),
        ("campaign", {}),
        ("campaign", {"roles": ["king"]}),
        ("campaign", {"users": "usr_ann"}),
        ("campaign", {"teams": ["red"]}),
    ],
)
def test_a_bad_scope_or_audience_is_a_programming_error(
    store: BridgeStore, scope: str, audience: dict[str, Any] | None
) -> None:
    """Callers are bridge code, so a malformed address raises ValueError instead of being stored."""
    with pytest.raises(ValueError, match=r"scope|audience"), store.session() as db:
        campaigns.append_event(db, CAMPAIGN, "x", {}, scope=scope, audience=audience)


def test_events_of_an_unknown_campaign_are_not_found(store: BridgeStore) -> None:
    """No campaign, no log."""
    _refused(store, "not_found", lambda db: campaigns.append_event(db, "camp_nope", "x", {}))
    _refused(store, "not_found", lambda db: campaigns.campaign_epoch_and_seq(db, "camp_nope"))


def test_pruning_keeps_the_newest_events_and_the_numbering(store: BridgeStore) -> None:
    """Old events go; seq keeps counting from where it was."""
    with store.session() as db:
        for _ in range(10):
            campaigns.append_event(db, CAMPAIGN, "x", {})
        assert campaigns.prune_events(db, CAMPAIGN, keep=3) == 7
        assert [e.seq for e in campaigns.events_since(db, CAMPAIGN, 0)] == [8, 9, 10]
        assert campaigns.append_event(db, CAMPAIGN, "x", {}).seq == 11


# -- restart -----------------------------------------------------------------------------------


def test_everything_survives_closing_and_reopening_the_store(store: BridgeStore, data_dir: Path) -> None:
    """A bridge restart keeps campaigns, memberships, state, canvas, roll log and event log."""
    with store.session() as db:
        _seat(db, "usr_ann", "player")
        state = campaigns.load_state(db, CAMPAIGN)
        apply_change(state, ["shared_notes"], "set", "Kept.", 0)
        campaigns.save_state(db, state)
        stroke = campaigns.add_stroke(db, CAMPAIGN, "usr_ann", _pen())
        _roll(db, "usr_ann", "public")
        campaigns.append_event(db, CAMPAIGN, "dice_roll", {"total": 7})
    store.close()
    reopened = _open(data_dir)
    try:
        with reopened.session(readonly=True) as db:
            assert campaigns.get_role(db, CAMPAIGN, "usr_ann") == "player"
            assert campaigns.load_state(db, CAMPAIGN).document["shared_notes"] == "Kept."
            assert [s["id"] for s in campaigns.canvas(db, CAMPAIGN)] == [stroke["id"]]
            assert len(campaigns.recent_rolls(db, CAMPAIGN, viewer_id="usr_bob", reveal_hidden=False)) == 1
            assert [e.payload for e in campaigns.events_since(db, CAMPAIGN, 0)] == [{"total": 7}]
            assert db.scalars(select(CanvasStroke.ordinal)).all() == [1]
    finally:
        reopened.close()
