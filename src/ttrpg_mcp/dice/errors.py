"""The exceptions of the dice engine.

Every failure, whatever its cause, is a :class:`DiceError`, so a caller (the MCP tool, a chat
command) can catch one class and show its message to a person as it is. The subclasses exist so
that callers and tests can tell a typo from an abuse of the limits from arithmetic that has no
answer. ``DiceError`` derives from ``ValueError`` because a bad expression is a bad argument.
"""

from __future__ import annotations

__all__ = ["DiceError", "DiceLimitError", "DiceMathError", "DiceSyntaxError"]


class DiceError(ValueError):
    """Base of every error the engine raises; its message names the problem for a person."""


class DiceSyntaxError(DiceError):
    """The text does not parse, or asks for something the grammar cannot give (``2d20adv``)."""


class DiceLimitError(DiceError):
    """The expression parses but would cost too much, or could never finish, to roll."""


class DiceMathError(DiceError):
    """The dice rolled, but the arithmetic has no integer answer (division by zero)."""
