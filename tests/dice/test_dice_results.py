"""The result of a roll: crits and fumbles, advantage, and the rendered text."""

from __future__ import annotations

import random

import pydantic
import pytest

from ttrpg_mcp.dice import Advantage, DiceSyntaxError, RollResult, roll

# Seeds and the faces their first rolls show (random.Random(seed).randint(1, sides)).
D20_20 = 5
D20_1 = 31
D20_5_17 = 652
D20_20_1 = 252
D20_12_20_3 = 5218
D100_20 = 213


def test_a_natural_20_is_a_crit() -> None:
    """A kept d20 showing 20 sets `crit`, and the text shows the modifier and label."""
    result = roll("1d20+5 [attack]", rng=random.Random(D20_20))
    assert (result.crit, result.fumble) == (True, False)
    assert result.text == "1d20 (20) + 5 = 25 [attack]"


def test_a_natural_1_is_a_fumble() -> None:
    """A kept d20 showing 1 sets `fumble`."""
    result = roll("1d20+5", rng=random.Random(D20_1))
    assert (result.crit, result.fumble, result.total) == (False, True, 6)


def test_a_dropped_natural_20_is_no_crit() -> None:
    """Only dice that count can crit: disadvantage that drops the 20 keeps the fumble."""
    result = roll("2d20kl1", rng=random.Random(D20_20_1))
    assert (result.crit, result.fumble, result.text) == (False, True, "2d20kl1 (~~20~~, 1) = 1")


def test_only_d20s_crit() -> None:
    """A 20 on another die, or a plain number 20, is not a critical hit."""
    result = roll("1d100", rng=random.Random(D100_20))
    assert (result.total, result.crit) == (20, False)
    assert not roll("20").crit


@pytest.mark.parametrize("advantage", [Advantage.ADVANTAGE, "advantage", " Advantage "])
def test_advantage_rolls_the_d20_twice_and_keeps_the_higher(advantage: Advantage | str) -> None:
    """The `advantage` argument turns `1d20` into `2d20kh1`; the expression field is unchanged."""
    result = roll("1d20+2", advantage=advantage, rng=random.Random(D20_5_17))
    assert (result.total, result.text) == (19, "2d20kh1 (~~5~~, 17) + 2 = 19")
    assert result.expression == "1d20+2"


def test_disadvantage_rolls_the_d20_twice_and_keeps_the_lower() -> None:
    """The `disadvantage` argument turns `d20` into `2d20kl1`."""
    result = roll("d20+2", advantage=Advantage.DISADVANTAGE, rng=random.Random(D20_5_17))
    assert (result.total, result.text) == (7, "2d20kl1 (5, ~~17~~) + 2 = 7")


@pytest.mark.parametrize(
    ("expression", "text"),
    [("1d20adv", "2d20kh1 (~~5~~, 17) = 17"), ("D20 DIS", "2d20kl1 (5, ~~17~~) = 5")],
)
def test_advantage_can_be_written_on_the_d20(expression: str, text: str) -> None:
    """`adv`/`dis` directly after a lone d20 mean the same as the argument."""
    assert roll(expression, rng=random.Random(D20_5_17)).text == text


def test_advantage_and_disadvantage_cancel() -> None:
    """As in the rules, advantage asked for against `dis` written on the term is a plain roll."""
    result = roll("1d20dis", advantage="advantage", rng=random.Random(D20_5_17))
    assert result.text == "1d20 (5) = 5"


def test_advantage_applies_to_the_first_lone_d20_only() -> None:
    """In `2d6 + 1d20 + 1d20` only the first lone d20 is rolled twice."""
    result = roll("2d6 + 1d20 + 1d20", advantage="advantage", rng=random.Random(0))
    assert [die.group for die in result.dice] == [0, 0, 1, 1, 2]
    assert result.text.startswith("2d6 (")
    assert "+ 2d20kh1 (" in result.text
    assert result.text.count("2d20kh1") == 1


def test_advantage_keeps_rerolls_before_choosing() -> None:
    """A halfling's `ro1` applies to both dice before the better is kept."""
    result = roll("1d20ro1", advantage="advantage", rng=random.Random(0))
    assert result.text.startswith("2d20ro1kh1 (")


def test_advantage_without_a_lone_d20_is_refused() -> None:
    """Asking for advantage on a damage roll is an error, not silently ignored."""
    with pytest.raises(DiceSyntaxError, match=r"'2d6' has no 1d20 to roll with advantage"):
        roll("2d6", advantage="advantage")


def test_an_unknown_advantage_is_refused() -> None:
    """Only none, advantage and disadvantage are understood."""
    with pytest.raises(DiceSyntaxError, match=r"unknown advantage 'sideways'"):
        roll("1d20", advantage="sideways")


def test_adv_written_on_more_than_one_d20_is_refused() -> None:
    """`2d20adv` is ambiguous, so it is an error."""
    with pytest.raises(DiceSyntaxError, match=r"2d20: 'adv' and 'dis' roll a single d20 twice"):
        roll("2d20adv")


def test_rolls_lists_the_kept_values_in_order() -> None:
    """`rolls` leaves out dropped and rerolled dice."""
    result = roll("3d20kh2", rng=random.Random(D20_12_20_3))
    assert (result.rolls, result.total, result.crit) == ([12, 20], 32, True)
    assert result.text == "3d20kh2 (12, 20, ~~3~~) = 32"


def test_text_shows_parentheses_signs_and_canonical_terms() -> None:
    """Groups keep their parentheses, terms read in canonical form, and signs stay."""
    result = roll("-(2 * D6) + 10 / 3", rng=random.Random(D20_20))
    value = result.dice[0].value
    assert result.text == f"-(2 * 1d6 ({value})) + 10 / 3 = {-2 * value + 3}"


def test_the_expression_is_reported_stripped() -> None:
    """Surrounding whitespace is not part of the expression."""
    assert roll("  1d4 \n").expression == "1d4"


def test_results_are_frozen() -> None:
    """A roll is a record: its fields cannot be reassigned."""
    result = roll("1d6")
    with pytest.raises(pydantic.ValidationError):
        result.total = 99  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        result.dice[0].value = 99  # type: ignore[misc]


def test_results_round_trip_through_json() -> None:
    """The MCP layer can send a result as JSON and read it back unchanged."""
    result = roll("4d6ro1kh3 + 1d20 [x]", rng=random.Random(0))
    assert RollResult.model_validate_json(result.model_dump_json()) == result


def test_the_default_generator_rolls_within_the_faces() -> None:
    """Without an `rng`, the system generator still rolls fair faces."""
    values = {roll("1d6").total for _ in range(200)}
    assert values <= set(range(1, 7))
    assert len(values) > 1
