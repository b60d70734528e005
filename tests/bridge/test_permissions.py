"""The permission table, the tool policy and roll visibility, checked directly (no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.permissions import (
    ACTION_DESCRIPTIONS,
    PERMISSIONS,
    ROLES,
    TOOL_POLICY,
    VISIBILITIES,
    Action,
    Role,
    allowed,
    audience_includes,
    permission_table_markdown,
    require,
    roll_audience,
    roll_visible_to,
    tool_allowed,
)

DOCS = Path(__file__).parents[2] / "docs" / "protocol.md"


def test_every_action_has_a_row_and_a_description() -> None:
    """No action is missing from the table, so nothing falls through to an accidental default."""
    assert set(PERMISSIONS) == set(Action)
    assert set(ACTION_DESCRIPTIONS) == set(Action)
    assert ROLES == ("gm", "player", "spectator")


def test_a_game_master_may_do_everything() -> None:
    """The GM column is all ticks."""
    assert all(allowed("gm", action) for action in Action)


def test_players_may_play_but_not_run_the_table() -> None:
    """Players roll, draw and edit their own things; initiative, members and other sheets are the GM's."""
    granted = {action for action in Action if allowed("player", action)}
    assert granted == {
        Action.ROLL,
        Action.ROLL_HIDDEN,
        Action.EDIT_STATE,
        Action.EDIT_OWN_CHARACTER,
        Action.DRAW,
        Action.ERASE_OWN,
        Action.MOVE_CURSOR,
        Action.UPDATE_PRESENCE,
        Action.CALL_TOOL,
    }


def test_spectators_only_watch() -> None:
    """A spectator moves a cursor, sets presence and calls read-only tools; nothing else."""
    granted = {action for action in Action if allowed("spectator", action)}
    assert granted == {Action.MOVE_CURSOR, Action.UPDATE_PRESENCE, Action.CALL_TOOL}


def test_require_refuses_with_forbidden_naming_the_role_and_action() -> None:
    """The refusal is a forbidden error whose message and data say who was refused what."""
    require("player", Action.ROLL, "roll dice")
    with pytest.raises(BridgeError) as refused:
        require("spectator", Action.ROLL, "roll dice")
    assert refused.value.code == "forbidden"
    assert refused.value.message == "a spectator may not roll dice"
    assert refused.value.data == {"role": "spectator", "action": "roll"}


@pytest.mark.parametrize(
    ("role", "tool", "expected"),
    [
        ("gm", "delete_campaign", True),
        ("gm", "anything_new", True),
        ("player", "roll_dice", True),
        ("player", "get_character", True),
        ("player", "list_sources", True),
        ("player", "save_campaign", False),
        ("spectator", "search", True),
        ("spectator", "get_campaign", True),
        ("spectator", "roll_dice", False),
        ("spectator", "get_character", False),
    ],
)
def test_the_tool_policy_limits_players_and_spectators(role: str, tool: str, expected: bool) -> None:
    """GMs call any tool; players the spike's allow list plus list_sources; spectators the lookups."""
    assert tool_allowed(role, tool) is expected  # type: ignore[arg-type]


def test_a_custom_tool_policy_can_be_passed() -> None:
    """Settings may narrow the policy; a role missing from it may call nothing."""
    policy: dict[Role, frozenset[str] | None] = {"gm": frozenset({"roll_dice"}), "player": None}
    assert tool_allowed("player", "save_campaign", policy)
    assert not tool_allowed("gm", "save_campaign", policy)
    assert not tool_allowed("spectator", "search", policy)


def test_the_spectator_tools_are_a_subset_of_the_player_tools() -> None:
    """Whatever a spectator may call, a player may call too."""
    spectator, player = TOOL_POLICY["spectator"], TOOL_POLICY["player"]
    assert spectator is not None
    assert player is not None
    assert spectator <= player


@pytest.mark.parametrize(
    ("visibility", "roller", "gm", "other"),
    [
        # (visibility, the rolling player sees it, a GM sees it, another player sees it)
        ("public", True, True, True),
        ("gm", True, True, False),
        ("blind", False, True, False),
        ("self", True, False, False),
    ],
)
def test_roll_visibility_follows_the_issue(visibility: str, roller: bool, gm: bool, other: bool) -> None:
    """public: all; gm: roller and GMs; blind: GMs only, not the rolling player; self: the roller only."""

    def sees(viewer: str, *, reveal_hidden: bool) -> bool:
        return roll_visible_to(
            visibility,  # type: ignore[arg-type]
            roller_id="usr_roller",
            viewer_id=viewer,
            reveal_hidden=reveal_hidden,
        )

    assert sees("usr_roller", reveal_hidden=False) is roller
    assert sees("usr_gm", reveal_hidden=True) is gm
    assert sees("usr_other", reveal_hidden=False) is other


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_a_roll_event_audience_matches_roll_visibility(visibility: str) -> None:
    """The audience put on a roll's event reaches exactly the members roll_visible_to lets see it."""
    audience = roll_audience(visibility, "usr_roller")  # type: ignore[arg-type]
    for user_id in ("usr_roller", "usr_someone"):
        for role in ROLES:
            reveal = allowed(role, Action.VIEW_HIDDEN)
            expected = roll_visible_to(
                visibility,  # type: ignore[arg-type]
                roller_id="usr_roller",
                viewer_id=user_id,
                reveal_hidden=reveal,
            )
            assert audience_includes(audience, user_id=user_id, role=role) is expected, (user_id, role)


def test_an_audience_of_none_is_the_whole_campaign() -> None:
    """No audience means every member; roles and users lists each let their members in."""
    assert audience_includes(None, user_id="u", role="spectator")
    assert audience_includes({"roles": ["gm"]}, user_id="u", role="gm")
    assert not audience_includes({"roles": ["gm"]}, user_id="u", role="player")
    assert audience_includes({"users": ["u"]}, user_id="u", role="player")


def test_the_markdown_table_has_a_row_per_action_and_the_tool_policy() -> None:
    """Each action is a row with a tick per allowed role; the tool lists follow the table."""
    table = permission_table_markdown()
    lines = table.splitlines()
    assert lines[0] == "| action | what it allows | gm | player | spectator |"
    rows = [line for line in lines if line.startswith("| `")]
    assert len(rows) == len(Action)
    assert "| `clear_canvas` | Clear the whole canvas (`canvas_draw` `clear`). | ✓ | — | — |" in lines
    assert "- `gm`: every tool" in lines
    assert "- `spectator`: `get_campaign`, `list_items`, `list_sources`, `search`" in lines


def test_the_protocol_reference_embeds_the_current_table() -> None:
    """docs/protocol.md shows the permission table the code enforces, word for word."""
    assert permission_table_markdown() in DOCS.read_text(encoding="utf-8")
