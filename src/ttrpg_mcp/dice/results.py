"""What a roll returns: pydantic models, so that the MCP layer can hand them out as JSON as is.

They are frozen because a roll is a record of something that happened; the field descriptions
become the JSON schema that AI assistants read.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DieResult", "RollResult"]


class DieResult(BaseModel):
    """One die rolled, including those that were dropped or rerolled and no longer count."""

    model_config = ConfigDict(frozen=True)

    sides: int = Field(description="Faces on the die; 100 for d%.")
    value: int = Field(description="The face shown, after any mi/ma clamping.")
    kept: bool = Field(description="Whether the die counts toward the total.")
    dropped: bool = Field(description="Whether a keep or drop operation removed the die.")
    rerolled: bool = Field(description="Whether the die was replaced by a reroll, which follows it.")
    exploded: bool = Field(description="Whether the die exploded, adding the die that follows it.")
    group: int = Field(description="Index of the die's dice term in the expression, 0-based, left to right.")


class RollResult(BaseModel):
    """The outcome of one expression: its total, every die, and a line of text for people."""

    model_config = ConfigDict(frozen=True)

    expression: str = Field(description="The expression as given, stripped, before any advantage rewrite.")
    label: str | None = Field(description="The [labels] of the expression joined with ', ', if any.")
    total: int = Field(description="The result of the expression.")
    dice: list[DieResult] = Field(description="Every die rolled, in order, each after the die it replaced.")
    rolls: list[int] = Field(description="Values of the dice that count toward the total, in order.")
    crit: bool = Field(description="Whether a d20 that counts shows a natural 20.")
    fumble: bool = Field(description="Whether a d20 that counts shows a natural 1.")
    text: str = Field(description="A readable account, e.g. '1d20 (20) + 5 = 25 [attack]'.")
