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

A resumed session that accepts batches gets its missed events as a few ``event_batch`` frames
(:func:`event_batches`) instead of one frame each: a thousand frames cost a thousand trips
through the ASGI ``send`` path and the socket's framing, which is most of a resume. Each event
is encoded once, to measure it against :data:`REPLAY_BATCH_BYTES` and to become its part of
the batch's JSON (:class:`BatchFrame`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

__all__ = [
    "REPLAY_BATCH_BYTES",
    "BatchFrame",
    "SharedFrame",
    "encode",
    "encode_body",
    "event_batches",
    "session_copies",
    "shared_frame",
]

# The most JSON one ``event_batch`` frame carries (about 1,000 ordinary events): well under a
# client's usual message size limit (1 MiB in the ``websockets`` library) and under the default
# ``outbox_max_bytes``, so a batch queues like any large message. One event larger than this
# still goes, alone in its batch.
REPLAY_BATCH_BYTES = 256 * 1024

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


def session_copies(
    bodies: Iterable[tuple[dict[str, Any], str]], *, session_id: str, new_id: Callable[[], str]
) -> list[SharedFrame]:
    """One session's copies of many shared bodies (a replay), each with a fresh message id.

    Like :func:`shared_frame` for each, with each copy's JSON made here: the session's part
    is encoded once for all of them, so a copy costs its id's encoding and one concatenation.
    """
    session_part = ',"session_id":' + _dumps(session_id) + ","
    copies: list[SharedFrame] = []
    for body, body_json in bodies:
        message_id = new_id()
        copy = SharedFrame({"id": message_id, "session_id": session_id, **body}, body_json, len(body))
        if len(body_json) >= 3:  # else to_json encodes the whole copy
            copy._text = '{"id":' + _dumps(message_id) + session_part + body_json[1:]
        copies.append(copy)
    return copies


class BatchFrame(dict[str, Any]):
    """An ``event_batch`` message: the dict, plus its JSON spliced from its events' JSON.

    Whoever drops events from the batch (a connection that already sent some) puts a new list
    in ``events``; the spliced JSON then no longer applies and the message is encoded anew.
    """

    __slots__ = ("_events", "_json", "_size")

    def __init__(self, head: dict[str, Any], events: list[dict[str, Any]], texts: list[str]) -> None:
        super().__init__(head, events=events)
        self._events = events
        self._size = len(self)
        self._json = _dumps(head)[:-1] + ',"events":[' + ",".join(texts) + "]}"

    def to_json(self) -> str:
        if self.get("events") is not self._events or len(self) != self._size:
            return _dumps(dict(self))
        return self._json


def event_batches(
    head: Callable[[], dict[str, Any]],
    events: Iterable[dict[str, Any]],
    *,
    max_bytes: int = REPLAY_BATCH_BYTES,
) -> Iterator[BatchFrame]:
    """``events`` in order, as ``event_batch`` frames of at most ``max_bytes`` of events each.

    ``head()`` makes one batch's envelope (a fresh ``id`` each, the session, the campaign).
    """
    batch: list[dict[str, Any]] = []
    texts: list[str] = []
    size = 0
    for event in events:
        text = encode(event)
        if batch and size + len(text) > max_bytes:
            yield BatchFrame(head(), batch, texts)
            batch, texts, size = [], [], 0
        batch.append(event)
        texts.append(text)
        size += len(text) + 1
    if batch:
        yield BatchFrame(head(), batch, texts)


def encode(message: dict[str, Any]) -> str:
    """A message as the JSON text a transport sends."""
    if isinstance(message, (SharedFrame, BatchFrame)):
        return message.to_json()
    return _dumps(message)
