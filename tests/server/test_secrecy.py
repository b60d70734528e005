"""The secrecy rules on their own: pure functions over JSON, one viewer at a time."""

from __future__ import annotations

from typing import Any

import pytest

from ttrpg_mcp.server import secrecy
from ttrpg_mcp.server.secrecy import LOCAL_GM, META_KEY, Viewer, redact, redact_all, viewer_from_meta

CAMPAIGN = "camp_1"
GM = Viewer("gm", "usr_gm", CAMPAIGN)
PLAYER = Viewer("player", "usr_p", CAMPAIGN)
SPECTATOR = Viewer("spectator", "usr_s", CAMPAIGN)


def _note(visibility: str, author: str = "") -> dict[str, Any]:
    return {"id": "note_1", "campaign_id": CAMPAIGN, "body": "x", "visibility": visibility, "author": author}


def test_no_meta_is_the_local_gm_and_a_bad_entry_is_a_spectator() -> None:
    """Claude Desktop sends no _meta (full view); a malformed viewer entry never widens the view."""
    assert viewer_from_meta(None) is LOCAL_GM
    assert viewer_from_meta({"progressToken": 3}) is LOCAL_GM
    assert viewer_from_meta(GM.to_meta()) == GM
    for entry in ({"role": "admin"}, "gm", {"role": "gm", "user_id": 5}, {"role": "gm", "campaign_id": []}):
        assert viewer_from_meta({META_KEY: entry}).role == "spectator"


def test_a_gm_sees_everything_only_in_their_own_campaign() -> None:
    """The GM role is per campaign: elsewhere a GM reads like a player."""
    npc = {"campaign_id": CAMPAIGN, "name": "Ferryman", "notes": "n", "secrets": ["s"]}
    assert redact("npc", npc, GM) == npc
    assert redact("npcs", npc, Viewer("gm", "usr_gm", "camp_2")) == npc | {"notes": "", "secrets": []}
    assert redact("npc", npc, LOCAL_GM) == npc


@pytest.mark.parametrize(
    ("kind", "data", "hidden"),
    [
        ("character", {"notes": "mine", "gm_notes": "g"}, {"gm_notes": ""}),
        ("npc", {"notes": "n", "secrets": ["s"], "description": "d"}, {"notes": "", "secrets": []}),
        ("location", {"notes": "n", "description": "d"}, {"notes": ""}),
        ("item", {"gm_notes": "cursed", "description": "an oar"}, {"gm_notes": ""}),
    ],
)
def test_gm_only_fields_are_emptied_for_players_and_spectators(
    kind: str, data: dict[str, Any], hidden: dict[str, Any]
) -> None:
    """The same shape (so a result still fits its schema), with the GM's parts empty."""
    entity = {"campaign_id": CAMPAIGN, **data}
    for viewer in (PLAYER, SPECTATOR):
        assert redact(kind, entity, viewer) == entity | hidden
    assert redact(kind, entity, GM) == entity


def test_secret_world_state_keys_and_their_list_are_left_out() -> None:
    """Players see the open facts of the world, not the secret ones nor which keys are secret."""
    campaign = {
        "id": CAMPAIGN,
        "world_state": {"weather": "fog", "lurker": "ferryman"},
        "secret_keys": ["lurker"],
    }
    assert redact("campaign", campaign, PLAYER) == {
        "id": CAMPAIGN,
        "world_state": {"weather": "fog"},
        "secret_keys": [],
    }
    assert redact("campaign", campaign, GM) == campaign


def test_who_reads_a_note() -> None:
    """gm: the GM and its author; players: everyone; a user id: that player, the author and the GM."""
    assert redact("note", _note("gm"), PLAYER) is None
    assert redact("note", _note("gm", author="usr_p"), PLAYER) is not None
    assert redact("note", _note("gm"), GM) is not None
    assert redact("note", _note("players"), SPECTATOR) is not None
    assert redact("note", _note("usr_p"), PLAYER) is not None
    assert redact("note", _note("usr_p"), Viewer("player", "usr_q", CAMPAIGN)) is None
    assert redact("note", _note("usr_p"), GM) is not None
    assert redact("note", {"campaign_id": CAMPAIGN, "body": "old"}, PLAYER) is None  # no visibility: GM-only
    notes = [_note("gm"), _note("players"), _note("usr_p")]
    assert len(redact_all("notes", notes, PLAYER)) == 2


def test_hidden_combatants_become_placeholders_that_keep_the_order() -> None:
    """A hidden combatant keeps its id and place; its name, hit points and conditions are gone."""
    ambusher = {"id": "cbt_1", "name": "Lurker", "initiative": 18, "hp": 30, "max_hp": 30, "hidden": True}
    hero = {"id": "char_1", "name": "Mira", "initiative": 12, "hp": 9, "max_hp": 12, "hidden": False}
    view = {"campaign_id": CAMPAIGN, "order": [ambusher, hero], "current": ambusher, "active_turn": 0}
    seen = redact("initiative", view, PLAYER)
    assert seen is not None
    assert [c["name"] for c in seen["order"]] == [secrecy.HIDDEN_COMBATANT_NAME, "Mira"]
    assert seen["current"]["id"] == "cbt_1"
    assert seen["current"]["hp"] is None
    assert "Lurker" not in str(seen)
    assert redact("initiative", view, GM) == view
    session = {"campaign_id": CAMPAIGN, "initiative": [ambusher, hero]}
    assert "Lurker" not in str(redact("session", session, SPECTATOR))


def test_an_unknown_kind_is_refused_not_passed_through() -> None:
    """Content the rules do not know cannot be judged safe."""
    with pytest.raises(ValueError, match="no secrecy rule"):
        redact("handout", {"text": "x"}, PLAYER)


def test_note_visibility_is_checked() -> None:
    """A visibility is a named one or a user id, never empty nor huge."""
    assert secrecy.check_note_visibility(" players ") == "players"
    for bad in ("", "   ", "x" * 101):
        with pytest.raises(ValueError, match="visibility"):
            secrecy.check_note_visibility(bad)
    assert secrecy.default_note_visibility(LOCAL_GM) == "gm"
    assert secrecy.default_note_visibility(PLAYER) == "players"
