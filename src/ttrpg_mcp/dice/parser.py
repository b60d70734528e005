"""From text to a validated :class:`~ttrpg_mcp.dice.tree.Expression`.

The grammar (``grammar.lark``) is compiled once, at import, into a LALR(1) parser whose callbacks
build the tree while parsing: lark's LALR driver keeps its own stack, so no input, however nested,
can make parsing recurse, and there is no second pass over a lark tree. Everything that can be
judged without rolling is judged here (limits, never-ending rerolls), so that :func:`parse` alone
validates an expression, and every lark exception is translated into a :class:`DiceSyntaxError`.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from importlib.resources import files

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from .errors import DiceLimitError, DiceSyntaxError
from .limits import (
    MAX_DICE,
    MAX_EXPRESSION_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_LITERAL,
    MAX_NESTING_DEPTH,
    MAX_SIDES,
)
from .render import quote, term_text
from .tree import (
    Advantage,
    Chain,
    Dice,
    Drop,
    Explode,
    Expression,
    Group,
    Keep,
    Maximum,
    Minimum,
    Negate,
    Node,
    Number,
    Op,
    Operator,
    Reroll,
    Selector,
    SelectorKind,
    walk,
)

__all__ = ["parse"]

# The most alternatives an error message lists: after a dice term nearly every token may follow,
# and a list of fifteen helps nobody.
_MAX_LISTED_ALTERNATIVES = 5

# How each terminal of the grammar is named to a person, in the order alternatives are listed.
_TERMINAL_NAMES = {
    "INT": "a number",
    "D": "'d'",
    "_LPAR": "'('",
    "_RPAR": "')'",
    "ADD_OP": "'+'/'-'",
    "MUL_OP": "'*'/'/'",
    "PERCENT": "'%'",
    "H": "'h'",
    "L": "'l'",
    "_EQ": "'='",
    "_LT": "'<'",
    "_GT": "'>'",
    "KEEP": "'k'",
    "P": "'p'",
    "RO": "'ro'",
    "RR": "'rr'",
    "E": "'e'",
    "BANG": "'!'",
    "MI": "'mi'",
    "MA": "'ma'",
    "ADV": "'adv'/'dis'",
    "LABEL": "a [label]",
    "$END": "the end",
}

# The die that advantage rolls twice.
_D20 = 20

# How many distinct expressions keep their parsed tree. A table rolls the same few (1d20+5,
# 2d6+3, 4d6kh3) over and over, and lark takes ~100 us for even the shortest; each entry is at
# most MAX_EXPRESSION_LENGTH characters plus its small tree.
_PARSED_CACHE_SIZE = 1024

_NODE_TYPES = (Number, Dice, Group, Negate, Chain)
_OP_TYPES = (Keep, Drop, Reroll, Explode, Minimum, Maximum)


def _literal(token: Token) -> int:
    """Read an integer, refusing huge ones before converting them (they could be 500 digits)."""
    digits = str(token).lstrip("0") or "0"
    if len(digits) > len(str(MAX_LITERAL)) or int(digits) > MAX_LITERAL:
        raise DiceLimitError(f"{quote(str(token))} is too large: numbers may be at most {MAX_LITERAL}")
    return int(digits)


def _token(item: object) -> Token:
    # The grammar guarantees the shape of each rule's children; these guards make that explicit
    # to the type checker and turn a grammar/builder mismatch into a loud error, not a wrong roll.
    if not isinstance(item, Token):
        raise TypeError(f"expected a token, got {item!r}")
    return item


def _node(item: object) -> Node:
    if not isinstance(item, _NODE_TYPES):
        raise TypeError(f"expected an expression node, got {item!r}")
    return item


def _selector(item: object) -> Selector | _Count:
    if not isinstance(item, Selector | _Count):
        raise TypeError(f"expected a selector, got {item!r}")
    return item


@dataclass(frozen=True, slots=True)
class _Count:
    """A bare number after ``k``/``d``/``p``: a count whose end (top or bottom) the operation decides."""

    value: int


def _never_ends(term: Dice) -> str | None:
    """Say what every face of the die would do, if an operation of ``term`` could never finish.

    Only a die whose every face matches is certain to go on forever; one whose faces match only
    mostly ends with probability 1, and the dice budget of the roll bounds it anyway.
    """
    for op in term.ops:
        if isinstance(op, Explode):
            endless = term.sides == 1 if op.selector is None else op.selector.matches_every_face(term.sides)
            if endless:
                return "explodes"
        elif isinstance(op, Reroll) and not op.once and op.selector.matches_every_face(term.sides):
            return "is rerolled"
    return None


class _TreeBuilder(Transformer[Token, object]):
    """LALR callbacks, one per rule or alias of the grammar, called as each rule is reduced.

    It holds no state: one instance serves every parse, from any thread.
    """

    def number(self, children: list[object]) -> Number:
        return Number(_literal(_token(children[0])))

    def group(self, children: list[object]) -> Group:
        return Group(_node(children[0]))

    def signed(self, children: list[object]) -> Node:
        sign, operand = _token(children[0]), _node(children[1])
        if sign == "+":
            return operand
        # Minus signs cancel in pairs here, so `------1` cannot build a deep tree.
        return operand.operand if isinstance(operand, Negate) else Negate(operand)

    def _chain(self, children: list[object]) -> Chain:
        rest = tuple(
            (Operator(str(_token(children[i]))), _node(children[i + 1])) for i in range(1, len(children), 2)
        )
        return Chain(_node(children[0]), rest)

    sum = _chain
    product = _chain

    def labelled(self, children: list[object]) -> Node:
        atom = _node(children[0])
        labels: list[str] = []
        for item in children[1:]:
            # Whitespace inside a label is collapsed so that the rendered roll stays on one line.
            text = " ".join(str(_token(item))[1:-1].split())
            if len(text) > MAX_LABEL_LENGTH:
                raise DiceLimitError(
                    f"label {quote(text)} is {len(text)} characters long: at most {MAX_LABEL_LENGTH}"
                )
            if text:
                labels.append(text)
        if not isinstance(atom, Number | Dice | Group):
            raise TypeError(f"labels follow a term, got {atom!r}")
        return dataclasses.replace(atom, labels=atom.labels + tuple(labels))

    def dice(self, children: list[object]) -> Dice:
        # The term's own tokens are `[N] d M [adv|dis]`; every token of an operation (a `d` for
        # drop among them) was already folded into that operation's object.
        tokens = [item for item in children if isinstance(item, Token)]
        at = next(index for index, token in enumerate(tokens) if token.type == "D")
        count_token = tokens[0] if at == 1 else None
        sides_token = tokens[at + 1]
        advantage = Advantage.NONE
        if len(tokens) > at + 2:
            written_advantage = str(tokens[at + 2]).lower()
            advantage = Advantage.ADVANTAGE if written_advantage == "adv" else Advantage.DISADVANTAGE
        ops: list[Op] = []
        for item in children:
            if isinstance(item, _OP_TYPES):
                ops.append(item)
            elif not isinstance(item, Token):
                raise TypeError(f"expected a dice operation, got {item!r}")

        count = 1 if count_token is None else _literal(count_token)
        percent = sides_token.type == "PERCENT"
        sides = 100 if percent else _literal(sides_token)
        # Messages quote the term as written (`d0`, `1001d6`), which is what the person will look for.
        written = f"{'' if count_token is None else count}d{'%' if percent else sides}"
        if count == 0:
            raise DiceLimitError(f"{written}: roll at least 1 die")
        if count > MAX_DICE:
            raise DiceLimitError(f"{written}: at most {MAX_DICE} dice per roll")
        if sides == 0:
            raise DiceLimitError(f"{written}: a die needs at least 1 side")
        if sides > MAX_SIDES:
            raise DiceLimitError(f"{written}: at most {MAX_SIDES} sides per die")
        if advantage is not Advantage.NONE and (count != 1 or sides != _D20 or percent):
            raise DiceSyntaxError(
                f"{written}: 'adv' and 'dis' roll a single d20 twice, so they only follow 1d20 or d20"
            )
        term = Dice(count, sides, percent, tuple(ops), advantage)
        problem = _never_ends(term)
        if problem is not None:
            raise DiceLimitError(
                f"{term_text(term)}: every face of a d{sides} {problem}, so the roll would never end"
            )
        return term

    def keep(self, children: list[object]) -> Keep:
        selector = _selector(children[1])
        if isinstance(selector, _Count):
            # `k3` keeps the three best, the way every table reads it.
            selector = Selector(SelectorKind.HIGHEST, selector.value)
        return Keep(selector)

    def drop(self, children: list[object]) -> Drop:
        selector = _selector(children[1])
        if isinstance(selector, _Count):
            # `d1` drops the worst die, as in `4d6d1`, the usual spelling of 4d6 drop lowest.
            selector = Selector(SelectorKind.LOWEST, selector.value)
        return Drop(selector)

    def _value_selector(self, children: list[object]) -> Selector:
        selector = _selector(children[1])
        if not isinstance(selector, Selector):
            raise TypeError(f"expected a value selector, got {selector!r}")
        return selector

    def reroll_once(self, children: list[object]) -> Reroll:
        return Reroll(self._value_selector(children), once=True)

    def reroll(self, children: list[object]) -> Reroll:
        return Reroll(self._value_selector(children), once=False)

    def explode(self, children: list[object]) -> Explode:
        return Explode(self._value_selector(children) if len(children) > 1 else None)

    def minimum(self, children: list[object]) -> Minimum:
        return Minimum(_literal(_token(children[1])))

    def maximum(self, children: list[object]) -> Maximum:
        return Maximum(_literal(_token(children[1])))

    def highest(self, children: list[object]) -> Selector:
        return Selector(SelectorKind.HIGHEST, _literal(_token(children[1])))

    def lowest(self, children: list[object]) -> Selector:
        return Selector(SelectorKind.LOWEST, _literal(_token(children[1])))

    def count(self, children: list[object]) -> _Count:
        return _Count(_literal(_token(children[0])))

    def equal(self, children: list[object]) -> Selector:
        return Selector(SelectorKind.EQUAL, _literal(_token(children[0])))

    def less(self, children: list[object]) -> Selector:
        return Selector(SelectorKind.LESS, _literal(_token(children[0])))

    def greater(self, children: list[object]) -> Selector:
        return Selector(SelectorKind.GREATER, _literal(_token(children[0])))


_PARSER = Lark(
    files("ttrpg_mcp.dice").joinpath("grammar.lark").read_text(encoding="utf-8"),
    parser="lalr",
    lexer="contextual",
    transformer=_TreeBuilder(),
)


def _nesting_depth(text: str) -> int:
    """How deep the parentheses nest, skipping labels (which may hold any bracket but ``[]``)."""
    depth = deepest = 0
    position = 0
    while position < len(text):
        char = text[position]
        if char == "[":
            close = text.find("]", position)
            if close < 0:
                break  # the parser reports the unclosed label, with its column
            position = close
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
        position += 1
    return deepest


def _alternatives(expected: set[str]) -> str:
    names = [name for terminal, name in _TERMINAL_NAMES.items() if terminal in expected]
    if not names or len(names) > _MAX_LISTED_ALTERNATIVES:
        return ""
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f": expected {listed}"


def _syntax_error(text: str, error: UnexpectedInput) -> DiceSyntaxError:
    """Say where the text stops making sense, and what could have come there instead."""
    where = f"in {quote(text)}"
    if isinstance(error, UnexpectedToken) and error.token.type == "$END":
        return DiceSyntaxError(f"{quote(text)} ends too early{_alternatives(set(error.expected))}")
    column = error.pos_in_stream + 1 if error.pos_in_stream is not None else error.column
    if isinstance(error, UnexpectedCharacters):
        if error.char == "[":
            return DiceSyntaxError(
                f"the label at column {column} {where} is not closed with ']' (labels cannot hold '[')"
            )
        return DiceSyntaxError(
            f"unexpected {error.char!r} at column {column} {where}{_alternatives(set(error.allowed))}"
        )
    if isinstance(error, UnexpectedToken):
        return DiceSyntaxError(
            f"unexpected {quote(str(error.token))} at column {column} {where}"
            f"{_alternatives(set(error.expected))}"
        )
    return DiceSyntaxError(f"cannot read {quote(text)} at column {column}")


def parse(expression: str) -> Expression:
    """Parse and validate an expression without rolling it.

    Raises the same :class:`~ttrpg_mcp.dice.errors.DiceError` subclasses a roll would, except those
    that depend on the dice (division by a rolled zero, a run of rerolls past the dice limit).
    """
    return _parse_text(expression.strip())


@functools.lru_cache(maxsize=_PARSED_CACHE_SIZE)
def _parse_text(text: str) -> Expression:
    """:func:`parse` of stripped text, remembered: the tree is immutable and depends on the text
    alone, so a repeated expression is rolled from the same tree. Failures are not remembered."""
    if not text:
        raise DiceSyntaxError("the dice expression is empty: write one such as '1d20+5'")
    # Checked before parsing so that no oversized input reaches the parser at all.
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise DiceLimitError(
            f"the expression is {len(text)} characters long: at most {MAX_EXPRESSION_LENGTH}"
        )
    depth = _nesting_depth(text)
    if depth > MAX_NESTING_DEPTH:
        raise DiceLimitError(f"parentheses nest {depth} deep: at most {MAX_NESTING_DEPTH}")
    try:
        root = _node(_PARSER.parse(text))
    except UnexpectedInput as error:
        raise _syntax_error(text, error) from error
    except LarkError as error:
        # Any other lark failure is still a text the grammar refuses, never a crash of the caller.
        raise DiceSyntaxError(f"cannot read {quote(text)}: {error}") from error

    nodes = list(walk(root))
    dice = tuple(node for node in nodes if isinstance(node, Dice))
    labels = tuple(label for node in nodes if not isinstance(node, Negate | Chain) for label in node.labels)
    wanted = sum(2 if term.advantage is not Advantage.NONE else term.count for term in dice)
    if wanted > MAX_DICE:
        raise DiceLimitError(f"{quote(text)} rolls {wanted} dice: at most {MAX_DICE} dice per roll")
    return Expression(source=text, root=root, dice=dice, labels=labels)
