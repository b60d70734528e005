"""Text for people: a canonical spelling of terms, and the one-line account of a roll.

The rendering rebuilds each term from the tree instead of echoing the input, so that ``D20``,
``d20`` and ``1 d 20`` all read ``1d20``, and a term rewritten for advantage reads as what was
actually rolled (``2d20kh1``). It recurses over the tree, which is safe because the tree's depth
is bounded by the parenthesis limit (see tree.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

from .results import DieResult
from .tree import (
    Advantage,
    Dice,
    Drop,
    Explode,
    Group,
    Keep,
    Minimum,
    Negate,
    Node,
    Number,
    Op,
    Reroll,
    Selector,
    SelectorKind,
)

__all__ = ["RolledTerm", "quote", "render_roll", "term_text"]

# Longest excerpt of the input quoted in a message, so that messages stay one readable line.
_MAX_QUOTE = 40

# How each selector reads after its operation's letters; the number follows.
_SELECTOR_PREFIX = {
    SelectorKind.HIGHEST: "h",
    SelectorKind.LOWEST: "l",
    SelectorKind.EQUAL: "",
    SelectorKind.LESS: "<",
    SelectorKind.GREATER: ">",
}


class RolledTerm(NamedTuple):
    """A dice term as it was rolled (after any advantage rewrite) and the dice it produced."""

    term: Dice
    dice: Sequence[DieResult]


def quote(text: str) -> str:
    """Quote input for a message, shortened so that a 500-character expression stays readable."""
    if len(text) > _MAX_QUOTE:
        text = text[: _MAX_QUOTE - 3] + "..."
    return repr(text)


def _selector_text(selector: Selector) -> str:
    return f"{_SELECTOR_PREFIX[selector.kind]}{selector.value}"


def _op_text(op: Op) -> str:
    if isinstance(op, Keep):
        return f"k{_selector_text(op.selector)}"
    if isinstance(op, Drop):
        return f"d{_selector_text(op.selector)}"
    if isinstance(op, Reroll):
        return f"{'ro' if op.once else 'rr'}{_selector_text(op.selector)}"
    if isinstance(op, Explode):
        # A bare `!` is the common spelling; with a target, d20's `e` avoids the misleading `!=6`.
        return "!" if op.selector is None else f"e{_selector_text(op.selector)}"
    if isinstance(op, Minimum):
        return f"mi{op.value}"
    return f"ma{op.value}"


def term_text(term: Dice) -> str:
    """The canonical spelling of a dice term, such as ``4d6kh3`` or ``1d20adv``."""
    sides = "%" if term.percent else str(term.sides)
    ops = "".join(_op_text(op) for op in term.ops)
    suffix = {Advantage.NONE: "", Advantage.ADVANTAGE: "adv", Advantage.DISADVANTAGE: "dis"}
    return f"{term.count}d{sides}{ops}{suffix[term.advantage]}"


def _die_text(die: DieResult) -> str:
    text = f"{die.value}!" if die.exploded else str(die.value)
    # A die that no longer counts is struck through, Markdown style, so the arithmetic still adds up.
    return text if die.kept else f"~~{text}~~"


def _node_text(node: Node, terms: Iterator[RolledTerm]) -> str:
    if isinstance(node, Number):
        return str(node.value)
    if isinstance(node, Dice):
        rolled = next(terms)
        values = ", ".join(_die_text(die) for die in rolled.dice)
        return f"{term_text(rolled.term)} ({values})"
    if isinstance(node, Group):
        return f"({_node_text(node.inner, terms)})"
    if isinstance(node, Negate):
        return f"-{_node_text(node.operand, terms)}"
    parts = [_node_text(node.first, terms)]
    for operator, operand in node.rest:
        parts.extend((operator.value, _node_text(operand, terms)))
    return " ".join(parts)


def render_roll(root: Node, terms: Sequence[RolledTerm], total: int, label: str | None) -> str:
    """Render a roll as ``4d6kh3 (6, 5, 3, ~~1~~) = 14`` followed by ``[label]`` when labelled.

    ``terms`` are the rolled dice terms in reading order, the order in which the walk meets them.
    """
    text = f"{_node_text(root, iter(terms))} = {total}"
    return text if label is None else f"{text} [{label}]"
