"""How tool results and tool errors are shaped, shared by every tool.

A tool answers with both forms MCP offers: ``structuredContent`` for programs (the bridge,
the Python client) and one readable text block for a language model or a person. Every
failure the content layer or the dice engine knows about becomes a ``ToolError`` carrying
its sentence, which the SDK returns as ``isError: true``: the server never dies on a request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel

from ttrpg_mcp.dice import DiceError
from ttrpg_mcp.server.errors import ContentError
from ttrpg_mcp.server.ingest import IngestError

__all__ = ["reply", "tool_errors"]


def reply(view: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=view.model_dump(mode="json"),
    )


@contextmanager
def tool_errors() -> Iterator[None]:
    """Turn the errors a caller can fix into tool errors with their message."""
    try:
        yield
    except ContentError as error:
        raise ToolError(f"{error.code}: {error}") from None
    except DiceError as error:
        raise ToolError(f"invalid_dice: {error}") from None
    except IngestError as error:
        raise ToolError(f"invalid_input: {error}") from None
