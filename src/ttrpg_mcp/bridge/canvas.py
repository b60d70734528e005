"""The shared canvas's messages: a stroke, and the ``canvas_draw`` actions (stroke, erase, clear).

Strokes are durable (ARCHITECTURE decision 8): each one is stored and replayed to every late
joiner, so what a stroke may hold is bounded here, before anything is stored or broadcast. The
bounds are generous for drawing by hand and small enough that one stroke is a few hundred KiB
at most: up to :data:`MAX_POINTS` finite points within :data:`MAX_COORDINATE` of the origin, a
CSS hex colour, a width, and for the text tool a short text.

Shapes take the points they are defined by: ``line``, ``rect`` and ``ellipse`` two (from one
corner, or end, to the other), ``text`` one (where it starts); ``pen`` and ``eraser`` any number.
The stroke ``id`` is the server's: whatever a client puts there is replaced when it is stored.

This module is pure.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from ttrpg_mcp.bridge.errors import BridgeError

__all__ = [
    "COLOR_PATTERN",
    "MAX_COORDINATE",
    "MAX_POINTS",
    "MAX_TEXT_LENGTH",
    "CanvasDrawData",
    "ClearCanvas",
    "DrawStroke",
    "EraseStroke",
    "Layer",
    "Stroke",
    "Tool",
    "parse_canvas_draw",
]

Tool = Literal["pen", "line", "rect", "ellipse", "text", "eraser"]
Layer = Literal["map", "tokens", "notes"]

MAX_POINTS = 5000
# Canvas units; far beyond any screen, near enough that a client's float maths stays exact.
MAX_COORDINATE = 1_000_000.0
MAX_TEXT_LENGTH = 500
COLOR_PATTERN = r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$"

_POINTS_PER_SHAPE: dict[str, int] = {"line": 2, "rect": 2, "ellipse": 2, "text": 1}

Coordinate = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_COORDINATE, le=MAX_COORDINATE)]


class Stroke(BaseModel):
    """One thing drawn on the canvas."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=64, description="Set by the server when stored.")
    tool: Tool
    points: list[tuple[Coordinate, Coordinate]] = Field(min_length=1, max_length=MAX_POINTS)
    color: str = Field(pattern=COLOR_PATTERN, description="CSS hex: #rgb, #rrggbb or #rrggbbaa.")
    width: float = Field(ge=0.5, le=100, allow_inf_nan=False)
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_LENGTH)
    layer: Layer = "notes"

    @model_validator(mode="after")
    def _fits_its_tool(self) -> Stroke:
        wanted = _POINTS_PER_SHAPE.get(self.tool)
        if wanted is not None and len(self.points) != wanted:
            raise ValueError(f"a {self.tool} stroke has exactly {wanted} point{'s' if wanted > 1 else ''}")
        if self.tool == "text" and self.text is None:
            raise ValueError("a text stroke needs its text")
        if self.tool != "text" and self.text is not None:
            raise ValueError("only a text stroke has text")
        return self


class DrawStroke(BaseModel):
    """Add a stroke to the canvas."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["stroke"]
    stroke: Stroke


class EraseStroke(BaseModel):
    """Remove one stroke by its id (one's own, or anyone's for a GM)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["erase"]
    stroke_id: str = Field(min_length=1, max_length=64)


class ClearCanvas(BaseModel):
    """Remove every stroke (GM only)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["clear"]


CanvasDrawData = Annotated[DrawStroke | EraseStroke | ClearCanvas, Field(discriminator="action")]
_ADAPTER: TypeAdapter[CanvasDrawData] = TypeAdapter(CanvasDrawData)


def parse_canvas_draw(data: Any) -> CanvasDrawData:
    """The action in a ``canvas_draw`` message's data, or ``invalid_message``."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as error:
        problems = [
            {"loc": list(problem["loc"]), "msg": problem["msg"], "type": problem["type"]}
            for problem in error.errors(include_url=False, include_input=False)
        ]
        raise BridgeError(
            "invalid_message", "the canvas_draw data does not match its schema", {"errors": problems}
        ) from None
