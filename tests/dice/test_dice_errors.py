"""Every error the engine raises: its class, its message, and the limits behind it."""

from __future__ import annotations

import random
import re

import pytest

from ttrpg_mcp.dice import (
    MAX_DICE,
    MAX_EXPRESSION_LENGTH,
    MAX_SIDES,
    DiceError,
    DiceLimitError,
    DiceMathError,
    DiceSyntaxError,
    parse,
    roll,
)
from ttrpg_mcp.dice.limits import MAX_LABEL_LENGTH, MAX_LITERAL, MAX_NESTING_DEPTH


def _raises(error: type[DiceError], message: str, expression: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        roll(expression, rng=random.Random(0))


def test_every_error_is_a_dice_error_and_a_value_error() -> None:
    """Callers can catch one class, and a bad expression is a bad argument."""
    for error in (DiceSyntaxError, DiceLimitError, DiceMathError):
        assert issubclass(error, DiceError)
    assert issubclass(DiceError, ValueError)


def test_the_limits_have_their_documented_values() -> None:
    """The published limits are the ones the brief promises to callers."""
    assert (MAX_DICE, MAX_SIDES, MAX_EXPRESSION_LENGTH) == (1000, 10_000, 500)
    assert (MAX_LITERAL, MAX_LABEL_LENGTH) == (10**9, 100)


@pytest.mark.parametrize("expression", ["", "   ", "\n\t"])
def test_an_empty_expression_is_a_syntax_error(expression: str) -> None:
    """Nothing to roll is a syntax error that says so."""
    _raises(DiceSyntaxError, "the dice expression is empty", expression)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1d20x", "unexpected 'x' at column 5 in '1d20x'"),
        ("1 2", "unexpected '2' at column 3 in '1 2'"),
        ("1d20)", "unexpected ')' at column 5"),
        ("]", "unexpected ']' at column 1"),
        ("1d20+", "'1d20+' ends too early: expected a number, 'd', '(' or '+'/'-'"),
        ("4d6kh", "'4d6kh' ends too early: expected a number"),
        ("1d", "'1d' ends too early: expected a number or '%'"),
        ("((1)", "'((1)' ends too early: expected ')'"),
        ("4d6rrh1", "unexpected 'h' at column 6"),
        ("3d6mi>2", "unexpected '>' at column 6"),
        ("1d20adv ro1", "unexpected 'ro' at column 9"),
        ("1d20 [attack", "the label at column 6 in '1d20 [attack' is not closed with ']'"),
        ("1d20 [a [b]]", "the label at column 6"),
        ("\x00", "unexpected '\\x00' at column 1"),
    ],
)
def test_syntax_errors_point_at_the_problem(expression: str, message: str) -> None:
    """A syntax error names the unexpected token and its column, or the early end."""
    _raises(DiceSyntaxError, message, expression)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1001d6", "1001d6: at most 1000 dice per roll"),
        ("d0", "d0: a die needs at least 1 side"),
        ("3d0", "3d0: a die needs at least 1 side"),
        ("d10001", "d10001: at most 10000 sides per die"),
        ("0d6", "0d6: roll at least 1 die"),
        ("600d6 + 600d6", "'600d6 + 600d6' rolls 1200 dice: at most 1000 dice per roll"),
        ("12345678901", "'12345678901' is too large: numbers may be at most 1000000000"),
        ("4d6kh10000000000", "'10000000000' is too large"),
    ],
)
def test_size_limits_name_the_number_and_the_limit(expression: str, message: str) -> None:
    """Too many dice, too many or no sides, or too large a number are limit errors."""
    _raises(DiceLimitError, message, expression)


def test_the_largest_allowed_roll_and_die_are_accepted() -> None:
    """Exactly MAX_DICE dice, a MAX_SIDES die and a 10**9 literal are fine."""
    assert len(roll(f"{MAX_DICE}d6", rng=random.Random(0)).dice) == MAX_DICE
    assert 1 <= roll(f"1d{MAX_SIDES}").total <= MAX_SIDES
    assert roll("1000000000").total == 10**9
    assert roll("0000000000001").total == 1


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1d1!", "1d1!: every face of a d1 explodes, so the roll would never end"),
        ("1d6e>0", "1d6e>0: every face of a d6 explodes"),
        ("1d6!<7", "1d6e<7: every face of a d6 explodes"),
        ("1d1rr1", "1d1rr1: every face of a d1 is rerolled, so the roll would never end"),
        ("2d6rr<7", "2d6rr<7: every face of a d6 is rerolled"),
    ],
)
def test_rerolls_and_explosions_that_could_never_end_are_refused(expression: str, message: str) -> None:
    """A die whose every face explodes or is rerolled is refused before any die is rolled."""
    _raises(DiceLimitError, message, expression)
    with pytest.raises(DiceLimitError):
        parse(expression)


def test_reroll_once_on_every_face_is_fine() -> None:
    """`ro` rerolls only once, so matching every face still ends."""
    result = roll("3d6ro<7", rng=random.Random(0))
    assert [die.rerolled for die in result.dice] == [True, False] * 3


@pytest.mark.parametrize("expression", ["1000d2e1", "1000d2rr1", "1d10000e<10000"])
def test_rerolls_and_explosions_count_toward_the_dice_limit(expression: str) -> None:
    """A run of extra dice past MAX_DICE stops with a limit error instead of running on."""
    _raises(DiceLimitError, f"needs more than {MAX_DICE} dice, counting rerolls and explosions", expression)


def test_advantage_counts_toward_the_dice_limit() -> None:
    """`adv` adds a die, so 999 dice and a d20 with advantage is one too many."""
    _raises(DiceLimitError, "rolls 1001 dice", "999d6 + 1d20adv")
    with pytest.raises(DiceLimitError, match="needs more than 1000 dice"):
        roll("999d6 + 1d20", advantage="advantage", rng=random.Random(0))


@pytest.mark.parametrize("expression", ["1/0", "1d6 / (2 - 2)", "5 / (1d1 - 1)"])
def test_division_by_zero_is_a_math_error(expression: str) -> None:
    """Dividing by zero, written or rolled, has no answer."""
    _raises(DiceMathError, f"division by zero in {expression!r}", expression)


def test_division_by_zero_is_found_when_rolling_not_when_parsing() -> None:
    """`parse` validates the text; a zero divisor depends on the dice, so only `roll` sees it."""
    assert parse("1/0").source == "1/0"


def test_an_overlong_expression_is_a_limit_error() -> None:
    """600 characters is past MAX_EXPRESSION_LENGTH; exactly 500 is fine."""
    _raises(DiceLimitError, "the expression is 600 characters long: at most 500", "1+" * 299 + "10")
    at_limit = "1+" * 249 + "10"
    assert len(at_limit) == MAX_EXPRESSION_LENGTH
    assert roll(at_limit).total == 259


def test_an_overlong_label_is_a_limit_error() -> None:
    """A label of 101 characters is refused; 100 is fine."""
    _raises(DiceLimitError, "is 101 characters long: at most 100", f"1d6 [{'a' * 101}]")
    assert roll(f"1d6 [{'a' * 100}]").label == "a" * 100


def test_deep_nesting_is_a_limit_error_not_a_recursion_error() -> None:
    """200 levels of parentheses are refused with a DiceError, never a RecursionError."""
    _raises(
        DiceLimitError, f"parentheses nest 200 deep: at most {MAX_NESTING_DEPTH}", "(" * 200 + "1" + ")" * 200
    )


def test_three_hundred_nested_parentheses_are_refused() -> None:
    """300 levels (601 characters) trip the length limit before anything is parsed."""
    with pytest.raises(DiceLimitError):
        roll("(" * 300 + "1d6" + ")" * 300)


def test_nesting_up_to_the_limit_is_fine() -> None:
    """MAX_NESTING_DEPTH levels roll; one more is refused."""
    depth = MAX_NESTING_DEPTH
    assert roll("(" * depth + "-1d1" + ")" * depth).total == -1
    _raises(DiceLimitError, "parentheses nest 21 deep", "(" * (depth + 1) + "1" + ")" * (depth + 1))


def test_brackets_inside_labels_do_not_count_as_nesting() -> None:
    """Parentheses inside a label are text, not structure."""
    assert roll("1 [" + "(" * 30 + "]").label == "(" * 30
