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

import itertools
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
    "seat_ids",
    "session_copies",
    "shared_frame",
]

# The most JSON one ``event_batch`` frame carries (about 1,000 ordinary events): well under a
# client's usual message size limit (1 MiB in the ``websockets`` library) and under the default
# ``outbox_max_bytes``, so a batch queues like any large message. One event larger than this
# still goes, alone in its batch.
REPLAY_BATCH_BYTES = 256 * 1024

_SEPARATORS = (",", ":")
# The seat-number suffixes of a table's ids (see seat_ids), made once.
_SEAT_SUFFIXES = tuple(f"-{number:x}" for number in range(256))


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: what only the standard library takes
        return json.dumps(value, separators=_SEPARATORS, ensure_ascii=False)


def encode_body(body: dict[str, Any]) -> str:
    """The JSON of a message body shared by many sessions (no ``id``, no ``session_id``)."""
    return _dumps(body)


class SharedFrame(dict[str, Any]):
    """One session's copy of a shared message: the dict, plus the shared body's JSON.

    Made by :func:`shared_frame`. Its text is the two per-seat fields spliced as text in front
    of the body's JSON: the ids are plain ASCII (hex digits, ``ses_`` and the like) with nothing
    to escape in JSON, which :func:`_plain` checks; an id that is not plain is encoded.
    """

    __slots__ = ("_body_json", "_body_size", "_text")

    _body_json: str
    _body_size: int
    _text: str | None

    def to_json(self) -> str:
        """The message as JSON; encoded in full only if someone added or removed a key since.

        Made once and kept: the outbox measures the frame with it and the writer sends it, so a
        seat's copy costs a splice of a few strings, not an encoding of the whole message.
        """
        if len(self) != self._body_size + 2 or len(self._body_json) < 3:
            return _dumps(dict(self))
        if self._text is None:
            message_id, session_id = self["id"], self["session_id"]
            plain = isinstance(message_id, str) and isinstance(session_id, str)
            if plain and _plain(message_id + session_id):
                head = '{"id":"' + message_id + '","session_id":"' + session_id + '",'
            else:
                head = _dumps({"id": message_id, "session_id": session_id})[:-1] + ","
            self._text = head + self._body_json[1:]
        return self._text


def _plain(text: str) -> bool:
    """True when ``text`` is its own JSON string body: printable ASCII, no quote, no backslash.

    Three scans in C, several times cheaper than a regular expression for an id this short.
    """
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def seat_ids(base: str) -> Iterator[str]:
    """Envelope ids for one event's seats: ``base`` (a fresh message id), ``-``, the seat's number.

    Each is still unique: no two events share a base, and a plain message id never holds a
    ``-``. A concatenation per seat instead of a fresh id's formatting.
    """
    for suffix in _SEAT_SUFFIXES:
        yield base + suffix
    for number in itertools.count(len(_SEAT_SUFFIXES)):
        yield f"{base}-{number:x}"


def shared_frame(body: dict[str, Any], body_json: str, *, message_id: str, session_id: str) -> SharedFrame:
    """A session's copy of ``body`` (whose JSON is ``body_json``) with its own id and session."""
    frame = SharedFrame(id=message_id, session_id=session_id)
    frame.update(body)
    frame._body_json = body_json
    frame._body_size = len(body)
    frame._text = None
    return frame


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
        copy = shared_frame(body, body_json, message_id=message_id, session_id=session_id)
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
