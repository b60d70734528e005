"""The bounds that keep one roll cheap, whoever sends the expression.

The engine answers text from people and from AI assistants alike, so every input is untrusted:
each bound below caps the time, memory or output size one call can cost. They are generous for
any real table (the largest printed rolls are a few dozen dice) and small enough that a hostile
expression costs milliseconds.
"""

from __future__ import annotations

__all__ = [
    "MAX_DICE",
    "MAX_EXPRESSION_LENGTH",
    "MAX_LABEL_LENGTH",
    "MAX_LITERAL",
    "MAX_NESTING_DEPTH",
    "MAX_SIDES",
]

# Dice rolled by one expression, counting every reroll and explosion: bounds the work of a roll
# and the length of its result, and turns a runaway `rr` or `!` into an error instead of a hang.
MAX_DICE: int = 1000

# Faces on one die: a d10000 is already beyond any game; larger dice only inflate numbers.
MAX_SIDES: int = 10_000

# Characters in one expression (after stripping): bounds parsing time and the size of messages.
MAX_EXPRESSION_LENGTH: int = 500

# Any integer written in the expression (a modifier, a keep count, a threshold): keeps the
# arithmetic on machine-sized numbers that every JSON client can represent exactly.
MAX_LITERAL: int = 10**9

# Parentheses inside parentheses: evaluation and rendering recurse once per level, so this bound
# is what keeps them far from Python's recursion limit; real expressions use two or three.
MAX_NESTING_DEPTH: int = 20

# Characters in one `[label]`: labels are echoed back in every result, so they stay short.
MAX_LABEL_LENGTH: int = 100
