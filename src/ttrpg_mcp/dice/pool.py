"""The dice of one term and the operations (keep, drop, reroll, explode, clamp) applied to them.

Operations apply left to right, each to the dice still in play, so ``4d6ro1kh3`` rerolls ones
first and keeps the best three of what results. A die that leaves play (dropped, or replaced by
a reroll) stays in the pool, marked, because the result shows every die that was rolled. Nothing
here loops on its own: each new die comes from ``draw``, which charges the roll's dice budget and
raises once it is spent, so a long run of rerolls or explosions ends in an error, not a hang.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .tree import Dice, Drop, Explode, Keep, Minimum, Op, Reroll, Selector, SelectorKind

__all__ = ["Draw", "PoolDie", "roll_pool"]

# Rolls one new die of the term's size; charged against the whole roll's dice budget.
Draw = Callable[[], int]


@dataclass(slots=True)
class PoolDie:
    """A die while its term is being rolled; mutable because operations mark it as they go."""

    value: int
    dropped: bool = False
    rerolled: bool = False
    exploded: bool = False

    @property
    def live(self) -> bool:
        """Whether the die is still in play: operations only ever look at live dice."""
        return not self.dropped and not self.rerolled


def _chosen(pool: list[PoolDie], selector: Selector) -> set[int]:
    """Indexes of the live dice a keep or drop selects."""
    live = [index for index, die in enumerate(pool) if die.live]
    if selector.by_value:
        return {index for index in live if selector.matches(pool[index].value)}
    sign = -1 if selector.kind is SelectorKind.HIGHEST else 1
    # Ties go to the die rolled first, so the choice is stable and reads naturally left to right.
    ranked = sorted(live, key=lambda index: (sign * pool[index].value, index))
    return set(ranked[: selector.value])


def _keep(pool: list[PoolDie], selector: Selector) -> list[PoolDie]:
    chosen = _chosen(pool, selector)
    for index, die in enumerate(pool):
        if die.live and index not in chosen:
            die.dropped = True
    return pool


def _drop(pool: list[PoolDie], selector: Selector) -> list[PoolDie]:
    for index in _chosen(pool, selector):
        pool[index].dropped = True
    return pool


def _reroll(pool: list[PoolDie], op: Reroll, draw: Draw) -> list[PoolDie]:
    result: list[PoolDie] = []
    for die in pool:
        result.append(die)
        current = die
        while current.live and op.selector.matches(current.value):
            current.rerolled = True
            # The replacement follows the die it replaces, so the result reads as it happened.
            current = PoolDie(draw())
            result.append(current)
            if op.once:
                break
    return result


def _explode(pool: list[PoolDie], op: Explode, sides: int, draw: Draw) -> list[PoolDie]:
    result: list[PoolDie] = []
    for die in pool:
        result.append(die)
        current = die
        # A die that already exploded (under an earlier `!` of the same term) does not again.
        while current.live and not current.exploded and _explodes(op, current.value, sides):
            current.exploded = True
            current = PoolDie(draw())
            result.append(current)
    return result


def _explodes(op: Explode, value: int, sides: int) -> bool:
    # Without a target a die explodes on its highest face, whatever mi/ma did to its value.
    return value == sides if op.selector is None else op.selector.matches(value)


def _clamp(pool: list[PoolDie], low: int | None, high: int | None) -> list[PoolDie]:
    for die in pool:
        if die.live:
            if low is not None:
                die.value = max(die.value, low)
            if high is not None:
                die.value = min(die.value, high)
    return pool


def _apply(op: Op, pool: list[PoolDie], sides: int, draw: Draw) -> list[PoolDie]:
    if isinstance(op, Keep):
        return _keep(pool, op.selector)
    if isinstance(op, Drop):
        return _drop(pool, op.selector)
    if isinstance(op, Reroll):
        return _reroll(pool, op, draw)
    if isinstance(op, Explode):
        return _explode(pool, op, sides, draw)
    if isinstance(op, Minimum):
        return _clamp(pool, op.value, None)
    return _clamp(pool, None, op.value)


def roll_pool(term: Dice, draw: Draw) -> list[PoolDie]:
    """Roll a term's dice and apply its operations in order."""
    pool = [PoolDie(draw()) for _ in range(term.count)]
    for op in term.ops:
        pool = _apply(op, pool, term.sides, draw)
    return pool
