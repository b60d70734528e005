"""How tool results and tool errors are shaped, shared by every tool.

A tool answers with both forms MCP offers: ``structuredContent`` for programs (the bridge,
the Python client) and one readable text block for a language model or a person. Every
failure the content layer or the dice engine knows about, and a storage failure (a full disk),
becomes a ``ToolError`` carrying its sentence, which the SDK returns as ``isError: true``:
the server never dies on a request.
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
from ttrpg_mcp.storage_faults import STORAGE_UNAVAILABLE, storage_failure

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
    except Exception as error:
        # A full disk or an I/O error is not the caller's mistake, but it is worth a sentence
        # with a stable code: the bridge turns it into its own storage_unavailable error.
        reason = storage_failure(error)
        if reason is None:
            raise
        message = f"{STORAGE_UNAVAILABLE}: the content store cannot save or read now ({reason})"
        raise ToolError(message) from None
