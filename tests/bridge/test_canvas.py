"""Canvas strokes and canvas_draw actions: what a stroke may hold, checked before it is stored."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ttrpg_mcp.bridge.canvas import (
    MAX_COORDINATE,
    MAX_POINTS,
    MAX_TEXT_LENGTH,
    ClearCanvas,
    DrawStroke,
    EraseStroke,
    Stroke,
    parse_canvas_draw,
)
from ttrpg_mcp.bridge.errors import BridgeError


def _pen(**fields: Any) -> dict[str, Any]:
    return {"tool": "pen", "points": [[0, 0], [10.5, 3]], "color": "#ff0000", "width": 2, **fields}


def test_a_pen_stroke_parses_with_the_notes_layer_by_default() -> None:
    """Points become float pairs; the layer defaults to notes and the id is left to the server."""
    stroke = Stroke.model_validate(_pen())
    assert stroke.points == [(0.0, 0.0), (10.5, 3.0)]
    assert stroke.layer == "notes"
    assert stroke.id is None


@pytest.mark.parametrize("color", ["#fff", "#FFAA00", "#12345678", "#abcdef"])
def test_css_hex_colours_are_accepted(color: str) -> None:
    """#rgb, #rrggbb and #rrggbbaa, in either case."""
    assert Stroke.model_validate(_pen(color=color)).color == color


@pytest.mark.parametrize("color", ["red", "#ff", "#ggg", "ff0000", "#ff00001", "url(javascript:x)", ""])
def test_anything_but_a_hex_colour_is_refused(color: str) -> None:
    """Colour names, short or long hex and anything injected into CSS are refused."""
    with pytest.raises(ValidationError):
        Stroke.model_validate(_pen(color=color))


@pytest.mark.parametrize(
    "points",
    [
        [],
        [[0, 0]] * (MAX_POINTS + 1),
        [[float("nan"), 0]],
        [[0, float("inf")]],
        [[MAX_COORDINATE * 2, 0]],
        [[1, 2, 3]],
        [["a", 0]],
    ],
)
def test_points_must_be_a_bounded_list_of_finite_pairs(points: list[Any]) -> None:
    """1 to MAX_POINTS points, each two finite numbers within range."""
    with pytest.raises(ValidationError):
        Stroke.model_validate(_pen(points=points))


def test_the_largest_allowed_stroke_parses() -> None:
    """MAX_POINTS points is still one stroke."""
    assert len(Stroke.model_validate(_pen(points=[[1, 1]] * MAX_POINTS)).points) == MAX_POINTS


@pytest.mark.parametrize("width", [0.4, 100.5, float("nan")])
def test_width_is_bounded(width: float) -> None:
    """A width from half a unit to 100."""
    with pytest.raises(ValidationError):
        Stroke.model_validate(_pen(width=width))


@pytest.mark.parametrize(
    ("tool", "count"), [("line", 2), ("rect", 2), ("ellipse", 2), ("text", 1), ("pen", 3), ("eraser", 1)]
)
def test_each_shape_takes_the_points_that_define_it(tool: str, count: int) -> None:
    """Lines, rectangles and ellipses take two points, text one, pen and eraser any number."""
    fields: dict[str, Any] = {"tool": tool, "points": [[i, i] for i in range(count)]}
    if tool == "text":
        fields["text"] = "Here be dragons"
    assert Stroke.model_validate(_pen(**fields)).tool == tool


@pytest.mark.parametrize(("tool", "count"), [("line", 3), ("rect", 1), ("ellipse", 4), ("text", 2)])
def test_a_shape_with_the_wrong_number_of_points_is_refused(tool: str, count: int) -> None:
    """A three-point line is no line."""
    fields: dict[str, Any] = {"tool": tool, "points": [[i, i] for i in range(count)]}
    if tool == "text":
        fields["text"] = "x"
    with pytest.raises(ValidationError, match="exactly"):
        Stroke.model_validate(_pen(**fields))


def test_text_belongs_to_the_text_tool_alone_and_is_bounded() -> None:
    """The text tool needs text of at most MAX_TEXT_LENGTH characters; other tools have none."""
    with pytest.raises(ValidationError, match="needs its text"):
        Stroke.model_validate(_pen(tool="text", points=[[0, 0]]))
    with pytest.raises(ValidationError, match="only a text stroke"):
        Stroke.model_validate(_pen(text="hello"))
    with pytest.raises(ValidationError):
        Stroke.model_validate(_pen(tool="text", points=[[0, 0]], text="x" * (MAX_TEXT_LENGTH + 1)))


def test_unknown_fields_tools_and_layers_are_refused() -> None:
    """Typos surface instead of being dropped."""
    for fields in ({"opacity": 0.5}, {"tool": "spray"}, {"layer": "fog"}):
        with pytest.raises(ValidationError):
            Stroke.model_validate(_pen(**fields))


def test_canvas_draw_data_is_one_of_stroke_erase_or_clear() -> None:
    """The action picks the model."""
    assert isinstance(parse_canvas_draw({"action": "stroke", "stroke": _pen()}), DrawStroke)
    erase = parse_canvas_draw({"action": "erase", "stroke_id": "stk_1"})
    assert isinstance(erase, EraseStroke)
    assert erase.stroke_id == "stk_1"
    assert isinstance(parse_canvas_draw({"action": "clear"}), ClearCanvas)


@pytest.mark.parametrize(
    "data",
    [
        {"action": "paint"},
        {"action": "stroke"},
        {"action": "stroke", "stroke": _pen(color="blue")},
        {"action": "erase"},
        {"action": "erase", "stroke_id": ""},
        {"action": "clear", "everything": True},
        "clear",
    ],
)
def test_malformed_canvas_draw_data_is_an_invalid_message(data: Any) -> None:
    """Every bad shape is one invalid_message error listing the problems."""
    with pytest.raises(BridgeError) as bad:
        parse_canvas_draw(data)
    assert bad.value.code == "invalid_message"
    assert bad.value.data is not None
    assert bad.value.data["errors"]
