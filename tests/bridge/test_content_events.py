"""From the change log to table events, without processes: what each change becomes and who sees what."""

from __future__ import annotations

from pathlib import Path

from ttrpg_mcp.bridge.content_events import CONTENT_EVENTS, event_type_for, mask_content_event
from ttrpg_mcp.bridge.content_feed import read_changes
from ttrpg_mcp.bridge.visibility import Viewer
from ttrpg_mcp.server import campaigns, entities, play
from ttrpg_mcp.server.app import open_database
from ttrpg_mcp.server.store.changes import Actor, acting_as


def test_each_change_becomes_one_event_with_the_entity_as_it_is_now(data_dir: Path) -> None:
    """Kinds map to event types; a campaign's creation is no event; payloads carry by and change."""
    database = open_database(data_dir)
    try:
        with database.write() as db:
            campaign = campaigns.create_campaign(db, name="Ferry")
        with database.read() as db:
            start = max(change.change_id for change in read_changes(db, 0))
        with acting_as(Actor("usr_gm", "gm")), database.write() as db:
            mira = entities.create_character(db, campaign.id, name="Mira", hp_max=12)
            entities.create_npc(db, campaign.id, name="Ferryman")
            entities.add_note(db, campaign.id, body="The river is high.")
            session = play.start_session(db, campaign.id)
            play.set_initiative(
                db, session.id, [play.CombatantInput(name="Lurker", initiative=20, hidden=True)]
            )
        with database.write() as db:
            entities.update_hp(db, mira.id, 5, "damage")
        with database.read() as db:
            found = read_changes(db, start)
        assert [change.event_type for change in found] == [
            "character_update",
            "npc_update",
            "note_added",
            "combat_update",
            "character_update",
        ]
        assert {change.campaign_id for change in found} == {campaign.id}
        assert all(change.event_type in CONTENT_EVENTS for change in found)
        first, *_, last = found
        assert (first.payload["by"], first.payload["change"]["operation"]) == ("usr_gm", "created")
        assert first.payload["character"]["hp_current"] == 7  # as it is now, not as it was
        assert (last.payload["by"], last.payload["change"]["version"]) == ("local", 2)
        assert found[3].payload["order"][0]["name"] == "Lurker"
    finally:
        database.close()


def test_hidden_combatants_are_masked_for_players_and_spectators_only() -> None:
    """One masking point: GMs see the combat whole, everyone else a placeholder in place."""
    combat = {
        "order": [
            {"id": "cbt_1", "name": "Lurker", "initiative": 20, "hp": 40, "hidden": True},
            {"id": "char_1", "name": "Mira", "initiative": 12, "hp": 7, "hidden": False},
        ],
        "current": {"id": "cbt_1", "name": "Lurker", "initiative": 20, "hp": 40, "hidden": True},
        "active_turn": 0,
    }
    placeholder = {"id": "cbt_1", "name": "Hidden combatant", "hidden": True}
    assert mask_content_event("combat_update", combat, Viewer("usr_gm", "gm")) == combat
    for role in ("player", "spectator"):
        shown = mask_content_event("combat_update", combat, Viewer("usr_x", role))
        assert shown["order"] == [placeholder, combat["order"][1]]
        assert shown["current"] == placeholder
    assert combat["order"][0]["name"] == "Lurker"  # the logged payload is never changed


def test_event_types_follow_kind_and_operation() -> None:
    """New notes are note_added, other changes *_update, deletions content_deleted."""
    assert event_type_for("note", "created") == "note_added"
    assert event_type_for("note", "updated") == "note_update"
    assert event_type_for("play_session", "updated") == "combat_update"
    assert event_type_for("character", "deleted") == "content_deleted"
