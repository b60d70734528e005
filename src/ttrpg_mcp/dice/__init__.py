"""The dice engine: parse and roll expressions such as ``4d6kh3``, ``8d6!`` or ``1d20+5 [attack]``.

The grammar is read by `lark <https://github.com/lark-parser/lark>`_ with its LALR(1) parser.
lark is maintained and its LALR mode is fast (a parse is a table-driven loop, with no backtracking
and no recursion, so even hostile input costs time linear in its length). avrae's ``d20`` library
set the field's standard for this syntax and we follow its spirit, but we do not depend on it:
its last release pins ``lark-parser`` 0.9, the abandoned predecessor of ``lark``, which installs
the same ``lark`` module and so clashes with the modern ``lark`` that this project uses, and which
emits deprecation warnings on Python 3.11.

The grammar, in short (letters in any case, whitespace anywhere between tokens)::

    1d20+5   d20   d%   (1d6+2)*3   -1d4   7/2 (rounds down)      dice and arithmetic
    4d6kh3   4d6k3   2d20kl1   4d6dl1   4d6d1   5d6dh1   4d6pl1   keep / drop (p = d20's drop)
    8d6!   1d6!>4   1d10e10   1d6e>5                              explode; new dice may explode
    1d20ro1   4d6ro<3   2d6rr1                                    reroll once / until it misses
    4d6mi2   1d20ma15                                             clamp each die
    4d6ro1kh3   8d6!kh4                                           operations chain, left to right
    1d20adv   d20dis                                              advantage on a lone d20
    1d20+5 [attack]   2d6 [fire] + 1d4 [cold]                     labels

Operations select dice with ``N`` (a face; for keep/drop a count), ``=N``, ``<N``, ``>N``, and for
keep/drop ``hN``/``lN`` (the N highest/lowest).

Every error the engine raises is a :class:`DiceError`, and no input string raises anything else::

    ValueError
     └── DiceError              every failure; the message says what is wrong
          ├── DiceSyntaxError   the text does not parse (names the column and the token)
          ├── DiceLimitError    too many dice or sides, too long or deep, would never end
          └── DiceMathError     the arithmetic has no answer (division by zero)
"""

from __future__ import annotations

from .errors import DiceError, DiceLimitError, DiceMathError, DiceSyntaxError
from .limits import MAX_DICE, MAX_EXPRESSION_LENGTH, MAX_SIDES
from .parser import parse
from .results import DieResult, RollResult
from .roller import roll
from .tree import Advantage

__all__ = [
    "MAX_DICE",
    "MAX_EXPRESSION_LENGTH",
    "MAX_SIDES",
    "Advantage",
    "DiceError",
    "DiceLimitError",
    "DiceMathError",
    "DiceSyntaxError",
    "DieResult",
    "RollResult",
    "parse",
    "roll",
]
