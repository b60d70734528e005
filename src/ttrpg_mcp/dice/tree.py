"""The expression tree that :func:`ttrpg_mcp.dice.parse` returns and the roller walks.

The tree is plain frozen data, separate from the grammar, so that the roller, the renderer and the
tests never see a lark object, and a parsed expression can be checked, kept and rolled many times.

Its shape is deliberately shallow: a run of ``+``/``-`` (or ``*``/``/``) is one :class:`Chain`,
not a left-leaning ladder of binary nodes, and a run of unary minus signs collapses to at most one
:class:`Negate`. Only parentheses add depth, and their nesting is capped
(:data:`~ttrpg_mcp.dice.limits.MAX_NESTING_DEPTH`), so code that recurses over the tree is bounded
no matter how long the expression is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Advantage",
    "Chain",
    "Dice",
    "Drop",
    "Explode",
    "Expression",
    "Group",
    "Keep",
    "Maximum",
    "Minimum",
    "Negate",
    "Node",
    "Number",
    "Op",
    "Operator",
    "Reroll",
    "Selector",
    "SelectorKind",
    "walk",
]


class Advantage(StrEnum):
    """Whether a d20 is rolled twice, keeping the better or the worse result."""

    NONE = "none"
    ADVANTAGE = "advantage"
    DISADVANTAGE = "disadvantage"


class SelectorKind(StrEnum):
    """Which dice an operation applies to: a count of extremes, or the faces that compare true."""

    HIGHEST = "highest"
    LOWEST = "lowest"
    EQUAL = "equal"
    LESS = "less"
    GREATER = "greater"


# The kinds that pick dice by their face rather than by rank among the others.
_VALUE_KINDS = frozenset({SelectorKind.EQUAL, SelectorKind.LESS, SelectorKind.GREATER})


@dataclass(frozen=True, slots=True)
class Selector:
    """The target of a dice operation: ``h3`` is (HIGHEST, 3), ``<3`` is (LESS, 3)."""

    kind: SelectorKind
    value: int

    @property
    def by_value(self) -> bool:
        """Whether the selector judges each face on its own (``=N``, ``<N``, ``>N``)."""
        return self.kind in _VALUE_KINDS

    def matches(self, face: int) -> bool:
        """Whether a face is selected; rank selectors (h/l) select by position, never by face."""
        if self.kind is SelectorKind.EQUAL:
            return face == self.value
        if self.kind is SelectorKind.LESS:
            return face < self.value
        if self.kind is SelectorKind.GREATER:
            return face > self.value
        return False

    def matches_every_face(self, sides: int) -> bool:
        """Whether every face of a die would match, which makes rerolls and explosions endless.

        The three value selectors are monotone or a single point, so checking the two extreme
        faces decides it without looping over up to ``MAX_SIDES`` faces.
        """
        return self.matches(1) and self.matches(sides)


@dataclass(frozen=True, slots=True)
class Keep:
    """Keep the selected dice and drop the rest (``kh3``, ``kl1``, ``k>4``)."""

    selector: Selector


@dataclass(frozen=True, slots=True)
class Drop:
    """Drop the selected dice (``dl1``, ``dh1``, ``p=1``)."""

    selector: Selector


@dataclass(frozen=True, slots=True)
class Reroll:
    """Replace each selected die by a new roll; ``once`` (``ro``) or until it no longer matches (``rr``)."""

    selector: Selector
    once: bool


@dataclass(frozen=True, slots=True)
class Explode:
    """Add a die for each selected die, which may explode in turn; ``None`` means on the maximum face."""

    selector: Selector | None


@dataclass(frozen=True, slots=True)
class Minimum:
    """Raise every die below ``value`` to ``value`` (``mi2``)."""

    value: int


@dataclass(frozen=True, slots=True)
class Maximum:
    """Lower every die above ``value`` to ``value`` (``ma5``)."""

    value: int


Op = Keep | Drop | Reroll | Explode | Minimum | Maximum


class Operator(StrEnum):
    """A binary arithmetic operator; ``/`` divides rounding down, like the tables' rules do."""

    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"


@dataclass(frozen=True, slots=True)
class Number:
    """An integer written in the expression."""

    value: int
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Dice:
    """One dice term such as ``4d6kh3``: its operations apply left to right to its pool of dice."""

    count: int
    sides: int
    # Whether the term was written ``d%``, so that it is rendered the way it was asked for.
    percent: bool = False
    ops: tuple[Op, ...] = ()
    # ``adv``/``dis`` written on the term; the roll turns it into ``2d20kh1``/``2d20kl1``.
    advantage: Advantage = Advantage.NONE
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Group:
    """A parenthesized sub-expression, kept as a node so that rendering shows the parentheses."""

    inner: Node
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Negate:
    """Unary minus."""

    operand: Node


@dataclass(frozen=True, slots=True)
class Chain:
    """Operands of one precedence level joined left to right: ``a + b - c`` or ``a * b / c``."""

    first: Node
    rest: tuple[tuple[Operator, Node], ...]


Node = Number | Dice | Group | Negate | Chain


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed, validated expression: ready to roll, any number of times."""

    # The text as given, stripped of surrounding whitespace.
    source: str
    root: Node
    # Every dice term, left to right: their positions are the ``group`` of each rolled die.
    dice: tuple[Dice, ...]
    # Every ``[label]``, left to right.
    labels: tuple[str, ...]


def walk(root: Node) -> Iterator[Node]:
    """Yield every node in the order its text ends, left to right (children before parents).

    That order is the reading order of both dice terms and labels (a group's label follows its
    contents). The walk keeps its own stack, so it never recurses.
    """
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            yield node
            continue
        stack.append((node, True))
        children: list[Node] = []
        if isinstance(node, Group):
            children = [node.inner]
        elif isinstance(node, Negate):
            children = [node.operand]
        elif isinstance(node, Chain):
            children = [node.first, *(operand for _, operand in node.rest)]
        # Pushed in reverse so that the leftmost child is popped, and so yielded, first.
        stack.extend((child, False) for child in reversed(children))
