"""Which campaign events one connection has been sent, so that none goes out twice.

A client that joins a table (``authenticate`` with ``campaign_id``, as the design document's
client does) receives live events at once; if it then sends ``session_attach`` with an older
``last_seq`` (from a previous connection), the replay covers events it already holds on this
connection. :class:`DeliveredEvents` sits in front of a connection's outbox and drops a
campaign event whose ``seq`` the connection was already sent, so after ``session_attach`` the
client sees each event after ``last_seq`` exactly once, in increasing ``seq``. An
``event_batch`` keeps only the events not sent yet (in a new list, so that its ready-made
JSON is not used), and is dropped when none is left.

Sent seqs are kept as a few merged ranges per campaign (one range on an ordinary night), not
one entry per event. The ranges are forgotten when a snapshot shows another epoch of the
campaign's log, where the same seq would name another event. Pure logic: no I/O.
"""

from __future__ import annotations

import bisect
from typing import Any

__all__ = ["DeliveredEvents"]


class _SeqRanges:
    """A set of integers kept as sorted, disjoint, non-adjacent inclusive ranges."""

    __slots__ = ("_highs", "_lows")

    def __init__(self) -> None:
        self._lows: list[int] = []
        self._highs: list[int] = []

    def add(self, value: int) -> bool:
        """Add ``value``; False when it was already in the set."""
        index = bisect.bisect_right(self._lows, value) - 1
        if index >= 0 and value <= self._highs[index]:
            return False
        joins_left = index >= 0 and self._highs[index] == value - 1
        right = index + 1
        joins_right = right < len(self._lows) and self._lows[right] == value + 1
        if joins_left and joins_right:
            self._highs[index] = self._highs[right]
            del self._lows[right], self._highs[right]
        elif joins_left:
            self._highs[index] = value
        elif joins_right:
            self._lows[right] = value
        else:
            self._lows.insert(right, value)
            self._highs.insert(right, value)
        return True

    def __len__(self) -> int:
        return len(self._lows)


class DeliveredEvents:
    """The campaign events a connection was sent; :meth:`admit` says whether to send one."""

    def __init__(self) -> None:
        self._epochs: dict[str, str | None] = {}
        self._sent: dict[str, _SeqRanges] = {}

    def admit(self, message: dict[str, Any]) -> bool:
        """True to send ``message``; False for a campaign event this connection already got."""
        kind = message.get("type")
        if kind == "campaign_snapshot":
            self._note_snapshot(message.get("data"))
            return True
        if kind == "event_batch":
            events = message.get("events", [])
            kept = [event for event in events if self._admit_event(event)]
            if len(kept) != len(events):
                message["events"] = kept
            return bool(kept)
        return self._admit_event(message)

    def _admit_event(self, message: dict[str, Any]) -> bool:
        seq, campaign_id = message.get("seq"), message.get("campaign_id")
        if not isinstance(seq, int) or not isinstance(campaign_id, str):
            return True
        return self._sent.setdefault(campaign_id, _SeqRanges()).add(seq)

    def ranges(self, campaign_id: str) -> int:
        """How many separate runs of seqs are recorded for a campaign (for tests and logs)."""
        sent = self._sent.get(campaign_id)
        return len(sent) if sent is not None else 0

    def _note_snapshot(self, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("campaign_id"), str):
            return
        campaign_id, epoch = data["campaign_id"], data.get("epoch")
        if campaign_id in self._epochs and self._epochs[campaign_id] != epoch:
            self._sent.pop(campaign_id, None)  # a new log: old seqs name other events
        self._epochs[campaign_id] = epoch if isinstance(epoch, str) else None
