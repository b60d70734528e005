"""Errors of the content layer, each a clear sentence for the person or model that caused it.

``ContentError`` is the base; the MCP tools turn every one into a tool error
(``isError: true`` with the message), so a wrong id or a bad field never takes the
server down::

    ContentError
    ├── NotFoundError      an id that does not exist (or belongs to another campaign)
    ├── InvalidInputError  a value the tool cannot use (empty name, bad ability, ...)
    └── ConflictError      the data changed since the caller read it
"""

from __future__ import annotations

__all__ = ["ConflictError", "ContentError", "InvalidInputError", "NotFoundError"]


class ContentError(Exception):
    """Base of every error the content layer reports to a caller."""

    code = "content_error"


class NotFoundError(ContentError):
    code = "not_found"


class InvalidInputError(ContentError):
    code = "invalid_input"


class ConflictError(ContentError):
    code = "conflict"
