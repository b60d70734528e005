"""Unknown tool arguments, found from the input schema alone, and the closest accepted name."""

from __future__ import annotations

from typing import Any

from ttrpg_mcp.tool_arguments import accepted_arguments, closest, find_unknown, sentence

CHARACTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        name: {}
        for name in (
            "campaign_id",
            "name",
            "character_class",
            "level",
            "hp_max",
            "armor_class",
            "player_name",
        )
    },
    "required": ["campaign_id", "name"],
}


def test_an_argument_missing_from_the_schema_is_named_with_the_accepted_ones() -> None:
    """``class`` is unknown; the refusal names it, suggests character_class and lists the rest."""
    unknown = find_unknown("create_character", {"campaign_id": "c", "class": "Wizard"}, CHARACTER_SCHEMA)
    assert unknown is not None
    assert unknown.unknown == ("class",)
    assert unknown.message.startswith("unknown argument 'class'; did you mean 'character_class'?")
    assert "create_character accepts: campaign_id, name, character_class" in unknown.message
    assert unknown.to_data()["suggestions"] == {"class": "character_class"}


def test_known_arguments_and_open_schemas_pass() -> None:
    """Nothing unknown, or a schema that takes any argument: no refusal."""
    assert find_unknown("create_character", {"campaign_id": "c", "name": "Ada"}, CHARACTER_SCHEMA) is None
    assert find_unknown("anything", {"x": 1}, {"type": "object"}) is None
    assert find_unknown("open", {"x": 1}, {"properties": {"a": {}}, "additionalProperties": True}) is None
    assert accepted_arguments({"type": "object", "additionalProperties": False}) == ()


def test_the_closest_name_prefers_case_then_whole_words_then_spelling() -> None:
    """Typical slips find their argument; a name like nothing accepted gets no suggestion."""
    accepted = list(CHARACTER_SCHEMA["properties"])
    assert closest("Name", accepted) == "name"
    assert closest("class", accepted) == "character_class"
    assert closest("levle", accepted) == "level"
    assert closest("player", accepted) == "player_name"
    assert closest("hp-max", accepted) == "hp_max"
    assert closest("zz", accepted) is None


def test_a_validation_message_becomes_a_sentence_without_internals() -> None:
    """pydantic's type tag and documentation link are cut; the location leads."""
    text = (
        "Input should be greater than or equal to 1 [type=greater_than_equal, input_value=0, "
        "input_type=int]\n    For further information visit https://errors.pydantic.dev/2/v/greater_than_equal"
    )
    assert sentence("create_character", ["level"], text) == (
        "create_character: level: input should be greater than or equal to 1"
    )
    assert sentence("search", [], "'query' is a required property") == (
        "search: arguments: 'query' is a required property"
    )
