"""A message's JSON text, made once for every session that gets the same rendering.

A table event goes to every seat, and each copy differs only in its envelope ``id`` and the
receiving ``session_id``; what a seat may see depends on its visibility class (GM or not, the
roller or not), not on the seat. So the room renders and encodes the body once per class and
each seat's copy is a :class:`SharedFrame`: a plain ``dict`` (every reader of messages keeps
working) that also carries the body's JSON, so the transport splices the two per-seat fields
in front of it instead of encoding the whole message again. :func:`encode` is the one way a
transport turns a message into text.

Encoding is orjson's (several times faster than the standard library, the same compact UTF-8
text); a value orjson refuses (an integer past 64 bits, a key that is not a string) falls back
to :mod:`json`, so every message that encoded before still does.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["SharedFrame", "encode", "encode_body", "shared_frame"]

_SEPARATORS = (",", ":")
_PER_SEAT = ("id", "session_id")


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: what only the standard library takes
        return json.dumps(value, separators=_SEPARATORS, ensure_ascii=False)


def encode_body(body: dict[str, Any]) -> str:
    """The JSON of a message body shared by many sessions (no ``id``, no ``session_id``)."""
    return _dumps(body)


class SharedFrame(dict[str, Any]):
    """One session's copy of a shared message: the dict, plus the shared body's JSON."""

    __slots__ = ("_body_json", "_body_size", "_text")

    def __init__(self, message: dict[str, Any], body_json: str, body_size: int) -> None:
        super().__init__(message)
        self._body_json = body_json
        self._body_size = body_size
        self._text: str | None = None

    def to_json(self) -> str:
        """The message as JSON; encoded in full only if someone added or removed a key since.

        Made once and kept: the outbox measures the frame with it and the writer sends it, so a
        seat's copy costs one small encoding (its two fields), not two of the whole message.
        """
        if len(self) != self._body_size + len(_PER_SEAT) or len(self._body_json) < 3:
            return _dumps(dict(self))
        if self._text is None:
            head = _dumps({key: self[key] for key in _PER_SEAT})
            self._text = head[:-1] + "," + self._body_json[1:]
        return self._text


def shared_frame(body: dict[str, Any], body_json: str, *, message_id: str, session_id: str) -> SharedFrame:
    """A session's copy of ``body`` (whose JSON is ``body_json``) with its own id and session."""
    return SharedFrame({"id": message_id, "session_id": session_id, **body}, body_json, len(body))


def encode(message: dict[str, Any]) -> str:
    """A message as the JSON text a transport sends."""
    if isinstance(message, SharedFrame):
        return message.to_json()
    return _dumps(message)
