"""The public surface of `ttrpg_mcp.dice`: its names, its documentation, and `parse`."""

from __future__ import annotations

from ttrpg_mcp import dice
from ttrpg_mcp.dice import Advantage, parse
from ttrpg_mcp.dice.tree import Dice, Expression, Keep, Selector, SelectorKind


def test_the_package_exports_exactly_the_public_api() -> None:
    """`__all__` lists the documented names and nothing else."""
    assert sorted(dice.__all__) == sorted(
        [
            "DiceError",
            "DiceSyntaxError",
            "DiceLimitError",
            "DiceMathError",
            "Advantage",
            "DieResult",
            "RollResult",
            "roll",
            "parse",
            "MAX_DICE",
            "MAX_SIDES",
            "MAX_EXPRESSION_LENGTH",
        ]
    )
    for name in dice.__all__:
        assert hasattr(dice, name)


def test_the_package_docstring_explains_the_parser_choice_and_the_errors() -> None:
    """The docstring says lark LALR, why not d20, and draws the exception tree."""
    doc = dice.__doc__ or ""
    for phrase in ("lark", "LALR", "lark-parser", "0.9", "3.11", "DiceError", "DiceSyntaxError", "└──"):
        assert phrase in doc


def test_advantage_values_are_their_names() -> None:
    """The enum's values are the strings the MCP tool accepts."""
    assert [member.value for member in Advantage] == ["none", "advantage", "disadvantage"]


def test_parse_returns_the_validated_tree() -> None:
    """`parse` returns the terms, operations and labels without rolling anything."""
    expression = parse(" 4d6kh3 + 2 [stat] ")
    assert isinstance(expression, Expression)
    assert expression.source == "4d6kh3 + 2 [stat]"
    assert expression.dice == (Dice(count=4, sides=6, ops=(Keep(Selector(SelectorKind.HIGHEST, 3)),)),)
    assert expression.labels == ("stat",)


def test_parse_records_advantage_written_on_a_term() -> None:
    """`1d20adv` parses to a one-die term marked with advantage; the roll doubles it."""
    (term,) = parse("1d20adv").dice
    assert (term.count, term.sides, term.advantage) == (1, 20, Advantage.ADVANTAGE)


def test_parse_reads_dice_in_reading_order() -> None:
    """Dice terms are listed left to right, including those inside parentheses."""
    expression = parse("(1d4 + 2d6) * 3d8 - d%")
    assert [(term.count, term.sides) for term in expression.dice] == [(1, 4), (2, 6), (3, 8), (1, 100)]
    assert expression.dice[-1].percent
