"""The change log: every write to campaign content records a change in its own transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import select

from ttrpg_mcp.server import campaigns, entities, play
from ttrpg_mcp.server.app import open_database
from ttrpg_mcp.server.errors import InvalidInputError
from ttrpg_mcp.server.launch import connect
from ttrpg_mcp.server.store.changes import Actor, acting_as, prune_changes
from ttrpg_mcp.server.store.database import Database, content_location
from ttrpg_mcp.server.store.models import ContentChange

CALL_TIMEOUT = 30.0


def _changes(database: Database) -> list[tuple[str, str, int, str, str]]:
    with database.read() as db:
        rows = db.scalars(select(ContentChange).order_by(ContentChange.id))
        return [(r.entity_kind, r.operation, r.version, r.actor, r.actor_role) for r in rows]


def test_each_write_records_one_change_per_entity_with_its_new_version(data_dir: Path) -> None:
    """Creates and updates, campaign versions, and one record for two flushes of one entity."""
    database = open_database(data_dir)
    try:
        with database.write() as db:
            campaign = campaigns.create_campaign(db, name="Ferry")
            mira = entities.create_character(db, campaign.id, name="Mira", hp_max=20)
        with database.write() as db:
            session = play.start_session(db, campaign.id)
            play.set_initiative(db, session.id, [play.CombatantInput(character_id=mira.id, initiative=12)])
        with database.write() as db:
            # The sheet and its line in the tracker: two entities, one record each.
            play.damage_or_heal(db, mira.id, 4, "damage")
            entities.update_hp(db, mira.id, 1, "healing")
            campaigns.save_campaign(db, campaign.id, {"description": "Fog."})
        assert _changes(database) == [
            ("campaign", "created", 1, "local", "gm"),
            ("character", "created", 1, "local", "gm"),
            ("play_session", "created", 1, "local", "gm"),
            ("character", "updated", 2, "local", "gm"),
            ("play_session", "updated", 2, "local", "gm"),
            ("campaign", "updated", 2, "local", "gm"),
        ]
    finally:
        database.close()


def test_a_write_that_fails_records_nothing_and_the_actor_is_whoever_acts(data_dir: Path) -> None:
    """The change rolls back with the write; acting_as names the author of the next one."""
    database = open_database(data_dir)
    try:
        with database.write() as db:
            campaign = campaigns.create_campaign(db, name="Ferry")
        with pytest.raises(InvalidInputError), database.write() as db:
            entities.create_character(db, campaign.id, name="Bad", hp_max=0)
        with acting_as(Actor("usr_kai", "player")), database.write() as db:
            entities.add_note(db, campaign.id, body="We took the ferry.")
        assert _changes(database) == [
            ("campaign", "created", 1, "local", "gm"),
            ("note", "created", 1, "usr_kai", "player"),
        ]
    finally:
        database.close()


@pytest.mark.anyio
async def test_a_request_names_its_actor_in_meta_and_a_stdio_client_is_the_local_gm(data_dir: Path) -> None:
    """The bridge's ttrpg/viewer in _meta becomes the change's actor; without it, 'local'."""
    with anyio.fail_after(120):
        async with connect(data_dir) as claude:

            async def call(tool: str, meta: dict[str, Any] | None = None, **arguments: Any) -> dict[str, Any]:
                with anyio.fail_after(CALL_TIMEOUT):
                    result = await claude.call_tool(tool, arguments, meta=meta)  # type: ignore[arg-type]
                assert not result.is_error, result.content
                assert result.structured_content is not None
                return result.structured_content

            campaign = await call("create_campaign", name="Ferry")
            mira = {"user_id": "usr_mira", "role": "player", "campaign_id": campaign["id"]}
            viewer = {"ttrpg/viewer": mira}
            await call("add_note", viewer, campaign_id=campaign["id"], body="The lantern is lit.")
    database = Database(content_location(data_dir))
    try:
        assert [(kind, actor, role) for kind, _op, _v, actor, role in _changes(database)] == [
            ("campaign", "local", "gm"),
            ("note", "usr_mira", "player"),
        ]
    finally:
        database.close()


def test_a_tool_roll_belongs_to_the_campaign_whose_session_is_live(data_dir: Path) -> None:
    """Without a campaign id a roll goes to the one running session's campaign, else it is not logged."""
    database = open_database(data_dir)
    result = {"expression": "1d20", "total": 12, "dice": [{"value": 12}], "text": "1d20 (12) = 12"}
    try:
        with database.write() as db:
            ferry = campaigns.create_campaign(db, name="Ferry")
            other = campaigns.create_campaign(db, name="Other")
            assert play.log_roll(db, None, result) is None  # nothing is running
            play.start_session(db, ferry.id)
            assert play.log_roll(db, None, result, purpose="stealth") is not None
            play.start_session(db, other.id)
            assert play.log_roll(db, None, result) is None  # two tables: which one is unclear
            assert play.log_roll(db, other.id, result, visibility="public") is not None
        rolls = [(kind, actor) for kind, _op, _v, actor, _role in _changes(database) if kind == "roll"]
        assert rolls == [("roll", "local"), ("roll", "local")]
    finally:
        database.close()


def test_pruning_keeps_the_newest_changes_and_each_entitys_latest_version(data_dir: Path) -> None:
    """Old changes go; an entity's newest change stays, so its next version still counts on."""
    database = open_database(data_dir)
    try:
        with database.write() as db:
            campaign = campaigns.create_campaign(db, name="Ferry")
            mira = entities.create_character(db, campaign.id, name="Mira", hp_max=50)
        for _ in range(5):
            with database.write() as db:
                entities.update_hp(db, mira.id, 1, "damage")
        with database.write() as db:
            assert prune_changes(db, keep=2) == 4  # character v1..v4 go; campaign v1, character v5, v6 stay
        with database.write() as db:
            entities.update_hp(db, mira.id, 1, "damage")
        assert [(kind, version) for kind, _op, version, _a, _r in _changes(database)] == [
            ("campaign", 1),
            ("character", 5),
            ("character", 6),
            ("character", 7),
        ]
    finally:
        database.close()
