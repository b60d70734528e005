"""Rolling a parsed expression: dice, arithmetic, advantage, and the assembled result.

Evaluation recurses over the tree, which is safe because the tree's depth is bounded by the
parenthesis limit (see tree.py), and it draws every die through one budget so that no expression,
however its rerolls and explosions go, rolls more than :data:`~ttrpg_mcp.dice.limits.MAX_DICE`.
"""

from __future__ import annotations

import dataclasses
import random
import secrets

from .errors import DiceLimitError, DiceMathError, DiceSyntaxError
from .limits import MAX_DICE
from .parser import parse
from .pool import PoolDie, roll_pool
from .render import RolledTerm, quote, render_roll
from .results import DieResult, RollResult
from .tree import (
    Advantage,
    Dice,
    Expression,
    Group,
    Keep,
    Negate,
    Node,
    Number,
    Operator,
    Selector,
    SelectorKind,
)

__all__ = ["roll"]

# Real rolls use the operating system's randomness: players should not be able to predict or
# replay them from earlier results, which a seeded Mersenne Twister would allow.
_SYSTEM_RANDOM = secrets.SystemRandom()

# The face of a d20 that is a critical hit, and the one that is a fumble.
_D20 = 20
_NATURAL_20 = 20
_NATURAL_1 = 1


def _advantage(value: Advantage | str) -> Advantage:
    if isinstance(value, Advantage):
        return value
    try:
        return Advantage(str(value).strip().lower())
    except ValueError:
        raise DiceSyntaxError(
            f"unknown advantage {quote(str(value))}: use 'none', 'advantage' or 'disadvantage'"
        ) from None


def _combined(written: Advantage, asked: Advantage) -> Advantage:
    """Advantage written on the term and asked for by the caller; the rules let the two cancel."""
    if written is Advantage.NONE:
        return asked
    if asked is Advantage.NONE or asked is written:
        return written
    return Advantage.NONE


def _as_rolled(term: Dice, advantage: Advantage) -> Dice:
    """The term actually rolled: with advantage a lone d20 becomes ``2d20kh1`` (``kl1`` with dis)."""
    if advantage is Advantage.NONE:
        return dataclasses.replace(term, advantage=Advantage.NONE)
    kind = SelectorKind.HIGHEST if advantage is Advantage.ADVANTAGE else SelectorKind.LOWEST
    # The keep goes last, so that rerolls such as a halfling's `ro1` apply to both dice first.
    ops = (*term.ops, Keep(Selector(kind, 1)))
    return dataclasses.replace(term, count=2, ops=ops, advantage=Advantage.NONE)


class _Roll:
    """One evaluation of an expression: the dice budget and the terms rolled so far."""

    def __init__(self, expression: Expression, rng: random.Random, asked: Advantage) -> None:
        self._expression = expression
        self._rng = rng
        self._dice_left = MAX_DICE
        self._asked = asked
        self._target: int | None = None
        if asked is not Advantage.NONE:
            # The caller's advantage goes to the first lone d20, the attack or check of the roll.
            self._target = next(
                (
                    index
                    for index, term in enumerate(expression.dice)
                    if term.count == 1 and term.sides == _D20 and not term.percent
                ),
                None,
            )
            if self._target is None:
                raise DiceSyntaxError(f"{quote(expression.source)} has no 1d20 to roll with {asked.value}")
        self.terms: list[RolledTerm] = []

    def _draw(self, sides: int) -> int:
        if self._dice_left == 0:
            raise DiceLimitError(
                f"{quote(self._expression.source)} needs more than {MAX_DICE} dice, counting rerolls"
                f" and explosions: at most {MAX_DICE} dice per roll"
            )
        self._dice_left -= 1
        return self._rng.randint(1, sides)

    def _term(self, term: Dice) -> int:
        index = len(self.terms)
        asked = self._asked if index == self._target else Advantage.NONE
        rolled = _as_rolled(term, _combined(term.advantage, asked))
        pool = roll_pool(rolled, lambda: self._draw(rolled.sides))
        dice = [_die_result(die, rolled.sides, index) for die in pool]
        self.terms.append(RolledTerm(rolled, dice))
        return sum(die.value for die in dice if die.kept)

    def value(self, node: Node) -> int:
        """Evaluate a node, rolling its dice terms left to right."""
        if isinstance(node, Number):
            return node.value
        if isinstance(node, Dice):
            return self._term(node)
        if isinstance(node, Group):
            return self.value(node.inner)
        if isinstance(node, Negate):
            return -self.value(node.operand)
        total = self.value(node.first)
        for operator, operand in node.rest:
            total = self._apply(operator, total, self.value(operand))
        return total

    def _apply(self, operator: Operator, left: int, right: int) -> int:
        if operator is Operator.ADD:
            return left + right
        if operator is Operator.SUB:
            return left - right
        if operator is Operator.MUL:
            return left * right
        if right == 0:
            raise DiceMathError(f"division by zero in {quote(self._expression.source)}")
        # Floor division, so that halving a negative number rounds down like a positive one does.
        return left // right


def _die_result(die: PoolDie, sides: int, group: int) -> DieResult:
    return DieResult(
        sides=sides,
        value=die.value,
        kept=die.live,
        dropped=die.dropped,
        rerolled=die.rerolled,
        exploded=die.exploded,
        group=group,
    )


def roll(
    expression: str,
    *,
    advantage: Advantage | str = Advantage.NONE,
    rng: random.Random | None = None,
) -> RollResult:
    """Roll a dice expression such as ``4d6kh3`` or ``1d20+5 [attack]``.

    ``advantage`` rolls the first lone d20 (``1d20`` or ``d20``) twice and keeps the better
    (``"advantage"``) or worse (``"disadvantage"``) result; against ``adv``/``dis`` written on
    that term it cancels, as the rules say. ``rng`` makes a roll reproducible, for tests and
    replays; by default the operating system's randomness is used.

    Every failure is a :class:`~ttrpg_mcp.dice.errors.DiceError`, whatever the input.
    """
    asked = _advantage(advantage)
    parsed = parse(expression)
    evaluation = _Roll(parsed, _SYSTEM_RANDOM if rng is None else rng, asked)
    total = evaluation.value(parsed.root)
    dice = [die for term in evaluation.terms for die in term.dice]
    kept_d20s = [die.value for die in dice if die.kept and die.sides == _D20]
    label = ", ".join(parsed.labels) or None
    return RollResult(
        expression=parsed.source,
        label=label,
        total=total,
        dice=dice,
        rolls=[die.value for die in dice if die.kept],
        crit=_NATURAL_20 in kept_d20s,
        fumble=_NATURAL_1 in kept_d20s,
        text=render_roll(parsed.root, evaluation.terms, total, label),
    )
