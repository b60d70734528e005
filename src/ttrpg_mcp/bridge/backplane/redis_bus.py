"""Campaign events and presence across nodes through Redis (streams, keys with TTLs).

With ``redis_url`` set, every bridge node shares one SQL store (PostgreSQL) and one Redis:

- **Order.** A campaign event gets its ``seq`` in the SQL transaction that logs it (the campaign
  row's counter; the row lock serialises writers on every node), so ``seq`` is gap-free and the
  SQL log is the record. After the commit the node appends the event to the campaign's stream
  ``events:<campaign>`` with the explicit entry id ``<seq>-0``: the stream is in ``seq`` order by
  construction, and an append that arrives after a later one is refused by Redis (ids only grow).
  The key also names the log's epoch, so a store restored from a backup never meets old entries.
- **Fan-out.** Each node follows the streams of the tables it has seats at (``XREAD BLOCK``) and
  delivers each event once, in ``seq`` order. A jump in the stream (an append refused as above,
  a node killed between its commit and its append, a Redis that restarted empty) is filled from
  SQL before going on; an idle stream is checked against SQL at every read timeout, so an event
  whose node died before appending it still arrives. While Redis is unreachable the nodes carry
  on from SQL alone (slower, nothing lost) and ``/readyz`` says why it is 503.
- **Presence.** Each node refreshes ``node:<id>`` with a TTL; its seats are fields
  ``<node>|<seat>`` of ``presence:<campaign>``, written again at each heartbeat (so they come
  back after a Redis restart), and never without the node key. A seat whose node key expired
  is gone for everyone: the first live node to claim it removes it and announces
  ``participant_left`` for seats (a person's or an agent's) left on no live node.
- **Restarts.** A Redis that restarted empty has no node keys until every node has beaten
  again, so no node reaps until :data:`NODE_TTL` after it last found Redis unreachable or found
  a new Redis (``instance``, a random id each heartbeat sets if missing): seats still connected
  are never announced as gone.

Replay after a reconnect reads the SQL log (the record), which any node reaches. Every key starts
with ``redis_key_prefix`` (empty by default), so deployments may share one Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import defaultdict
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from ttrpg_mcp.bridge.backplane.base import Backfill, Deliver, LoggedEvent, Reap

__all__ = ["RedisBackplane"]

log = structlog.get_logger("ttrpg_mcp.bridge.backplane")

# A node key lives this long without a heartbeat: a dead node's seats go within about this.
NODE_TTL = 5.0
HEARTBEAT = 1.5
# A follower's XREAD blocks this long; on timeout it checks SQL for an event nobody appended.
READ_BLOCK_MS = 1000
# How often followers read SQL while Redis is unreachable.
OUTAGE_POLL = 0.25
STREAM_MAXLEN = 10_000
_BATCH = 500


class RedisBackplane:
    """Streams for order and fan-out, TTL keys for presence; the SQL log fills every gap."""

    shared = True

    def __init__(self, url: str, *, node_id: str | None = None, key_prefix: str = "") -> None:
        self._prefix = key_prefix
        self.node_id = node_id or uuid.uuid4().hex[:12]
        self._redis: Redis = Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=2.0, socket_timeout=READ_BLOCK_MS / 1000 + 3.0
        )
        self._followers: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self._seats: dict[tuple[str, str], dict[str, Any]] = {}
        self._error: str | None = None
        # Since when Redis has answered, as the same instance: no reaping for NODE_TTL after.
        self._up_since = time.monotonic()
        self._instance: str | None = None
        self._reaping = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._deliver: Deliver | None = None
        self._backfill: Backfill | None = None
        self._reap: Reap | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, deliver: Deliver, backfill: Backfill, reap: Reap) -> None:
        self._deliver, self._backfill, self._reap = deliver, backfill, reap
        try:
            await self._redis.set(self._node_key(self.node_id), "1", ex=int(NODE_TTL))
        except (RedisError, OSError) as exc:  # serve anyway: SQL carries the table meanwhile
            self._down(exc)
        loop = asyncio.get_running_loop()
        self._heartbeat = loop.create_task(self._heartbeat_loop(), name="node-heartbeat")
        log.info("backplane_started", kind="redis", node=self.node_id)

    async def stop(self) -> None:
        self._stopping = True
        tasks = [*self._followers.values(), *([self._heartbeat] if self._heartbeat else [])]
        self._followers.clear()
        for task in tasks:
            task.cancel()
        # redis-py (8.2) catches a cancel that lands in a blocking XREAD and returns the read's
        # answer: the loops also watch ``_stopping`` (and a follower its own registration), so
        # each ends within one read instead of following forever.
        if tasks:
            await asyncio.wait(tasks, timeout=READ_BLOCK_MS / 1000 + 2.0)
        with contextlib.suppress(RedisError, OSError):
            # A clean stop takes this node's seats away at once rather than after the TTL.
            pipe = self._redis.pipeline(transaction=False)
            for campaign_id, seat_id in self._seats:
                pipe.hdel(self._presence_key(campaign_id), f"{self.node_id}|{seat_id}")
            pipe.delete(self._node_key(self.node_id))
            await pipe.execute()
        await self._redis.aclose()

    # -- events -------------------------------------------------------------------------------

    async def publish(self, campaign_id: str, epoch: str, events: list[LoggedEvent]) -> None:
        if not events:
            return
        pipe = self._redis.pipeline(transaction=False)
        for event in events:
            fields = {"type": event.type, "data": json.dumps(event.data, separators=(",", ":"))}
            pipe.xadd(
                self._stream_key(campaign_id, epoch),
                fields,  # type: ignore[arg-type]
                id=f"{event.seq}-0",
                maxlen=STREAM_MAXLEN,
                approximate=True,
            )
        try:
            results = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            self._down(exc)  # committed in SQL: the followers take it from there
            return
        for result in results:
            if isinstance(result, ResponseError):
                # A later seq was appended first: followers fill this one from SQL.
                log.debug("stream_append_late", campaign_id=campaign_id, error=str(result))
            elif isinstance(result, Exception):
                self._down(result)

    def follow(self, campaign_id: str, epoch: str, after_seq: int) -> None:
        if campaign_id in self._followers:
            return
        self._followers[campaign_id] = asyncio.get_running_loop().create_task(
            self._follow_loop(campaign_id, epoch, after_seq), name=f"follow-{campaign_id}"
        )

    def unfollow(self, campaign_id: str) -> None:
        task = self._followers.pop(campaign_id, None)
        if task is not None:
            task.cancel()

    async def _follow_loop(self, campaign_id: str, epoch: str, last: int) -> None:
        """Deliver the campaign's events after ``last`` to this node's seats, in order, each once."""
        key = self._stream_key(campaign_id, epoch)
        me = asyncio.current_task()
        while not self._stopping and self._followers.get(campaign_id) is me:
            try:
                reply: Any = await self._redis.xread({key: f"{last}-0"}, count=_BATCH, block=READ_BLOCK_MS)
            except (RedisError, OSError) as exc:
                self._down(exc)
                last = await self._catch_up(campaign_id, last) or last
                await asyncio.sleep(OUTAGE_POLL)
                continue
            self._up()
            entries = reply[0][1] if reply else []
            if not entries:
                last = await self._catch_up(campaign_id, last) or last
                continue
            streamed = []
            for entry_id, fields in entries:
                seq = int(str(entry_id).split("-", 1)[0])
                if seq > last:
                    streamed.append(LoggedEvent(seq, fields["type"], json.loads(fields["data"])))
            last = await self._deliver_in_order(campaign_id, last, streamed)

    async def _deliver_in_order(self, campaign_id: str, last: int, streamed: list[LoggedEvent]) -> int:
        """Deliver ``streamed`` after ``last``, taking from SQL whatever the stream skipped."""
        run: list[LoggedEvent] = []
        expected = last  # the highest seq delivered or waiting in ``run``
        for event in streamed:
            if event.seq <= expected:
                continue
            if event.seq > expected + 1:
                last = await self._flush(campaign_id, last, run)
                run = []
                caught = await self._catch_up(campaign_id, last, upto=event.seq - 1)
                if caught is None:  # SQL unreachable: read the stream again from here next turn
                    return last
                last = caught
                if event.seq > last + 1:
                    log.warning("events_not_retained", campaign_id=campaign_id, after=last, next=event.seq)
                    last = event.seq - 1
            run.append(event)
            expected = event.seq
        return await self._flush(campaign_id, last, run)

    async def _catch_up(self, campaign_id: str, last: int, *, upto: int | None = None) -> int | None:
        """Deliver from the SQL record what follows ``last`` (up to ``upto``); the new ``last``.

        None when the store could not be read (the caller tries again later).
        """
        assert self._backfill is not None
        limit = _BATCH if upto is None else upto - last
        try:
            missing = await self._backfill(campaign_id, last, limit)
        except Exception:  # the store is down too: try again at the next turn
            log.exception("backfill_failed", campaign_id=campaign_id)
            return None
        return await self._flush(campaign_id, last, missing)

    async def _flush(self, campaign_id: str, last: int, events: list[LoggedEvent]) -> int:
        events = [event for event in events if event.seq > last]
        if not events:
            return last
        assert self._deliver is not None
        try:
            await self._deliver(campaign_id, events)
        except Exception:  # one table's failure must not stop this follower
            log.exception("delivery_failed", campaign_id=campaign_id)
        return max(last, events[-1].seq)

    # -- presence -----------------------------------------------------------------------------

    async def set_presence(self, campaign_id: str, seat_id: str, view: dict[str, Any] | None) -> None:
        field = f"{self.node_id}|{seat_id}"
        key = self._presence_key(campaign_id)
        try:
            if view is None:
                self._seats.pop((campaign_id, seat_id), None)
                await self._redis.hdel(key, field)
            else:
                self._seats[(campaign_id, seat_id)] = view
                # The node key first: a seat is never there without its node, even on a Redis
                # that restarted empty since this node's last heartbeat.
                pipe = self._redis.pipeline(transaction=False)
                pipe.set(self._node_key(self.node_id), "1", ex=int(NODE_TTL))
                pipe.hset(key, field, json.dumps(view))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._down(exc)  # the heartbeat writes every seat again once Redis is back

    async def participants(self, campaign_id: str) -> list[dict[str, Any]] | None:
        try:
            seats = _strings(await self._redis.hgetall(self._presence_key(campaign_id)))
            alive = await self._alive({field.split("|", 1)[0] for field in seats})
        except (RedisError, OSError) as exc:
            self._down(exc)
            return None
        people: dict[str, dict[str, Any]] = {}
        for field, raw in seats.items():
            if field.split("|", 1)[0] not in alive:
                continue
            view = json.loads(raw)
            seat = _seat_of(view)
            seen = people.get(seat)
            if seen is None:
                people[seat] = view
            else:
                seen["sessions"] = seen.get("sessions", 0) + view.get("sessions", 0)
        return list(people.values())

    async def _alive(self, nodes: set[str]) -> set[str]:
        ordered = sorted(nodes)
        if not ordered:
            return set()
        flags = await self._redis.mget([self._node_key(node) for node in ordered])
        return {node for node, flag in zip(ordered, flags, strict=True) if flag is not None}

    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            try:
                pipe = self._redis.pipeline(transaction=False)
                pipe.set(self._node_key(self.node_id), "1", ex=int(NODE_TTL))
                for (campaign_id, seat_id), view in self._seats.items():
                    pipe.hset(self._presence_key(campaign_id), f"{self.node_id}|{seat_id}", json.dumps(view))
                pipe.set(self._instance_key(), uuid.uuid4().hex, nx=True)
                pipe.get(self._instance_key())
                replies = await pipe.execute()
                self._up()
                self._same_instance(str(replies[-1]))
                if time.monotonic() - self._up_since > NODE_TTL:  # every live node has beaten since
                    await self._reap_dead()
            except (RedisError, OSError) as exc:
                self._down(exc)
            except Exception:
                log.exception("heartbeat_failed")
            await asyncio.sleep(HEARTBEAT)

    def _same_instance(self, instance: str) -> None:
        """Note the Redis instance answering; a new one (restarted empty) holds reaping off."""
        if instance != self._instance:
            if self._instance is not None:
                log.info("redis_instance_changed")
            self._instance = instance
            self._up_since = time.monotonic()
            self._reaping = False

    async def _reap_dead(self) -> None:
        """Remove the seats of nodes whose key expired, and announce who left with them."""
        assert self._reap is not None
        if await self._redis.get(self._instance_key()) != self._instance:
            return  # Redis restarted since the heartbeat: the next one holds reaping off
        for campaign_id in list(self._followers):
            key = self._presence_key(campaign_id)
            seats = _strings(await self._redis.hgetall(key))
            alive = await self._alive({field.split("|", 1)[0] for field in seats})
            dead: dict[str, list[str]] = defaultdict(list)
            for field in seats:
                node = field.split("|", 1)[0]
                if node not in alive:
                    dead[node].append(field)
            if not dead:
                continue
            still_seated = {field.split("|", 1)[1] for field in seats if field.split("|", 1)[0] in alive}
            gone: dict[str, dict[str, Any]] = {}
            for node, fields in dead.items():
                claim = f"{self._prefix}reaped:{node}:{campaign_id}"
                if not await self._redis.set(claim, self.node_id, nx=True, ex=60):
                    continue  # another live node is announcing these
                await self._redis.hdel(key, *fields)
                for field in fields:
                    view = json.loads(seats[field])
                    if _seat_of(view) not in still_seated:
                        gone[_seat_of(view)] = view
            if gone:
                log.info("dead_node_seats_removed", campaign_id=campaign_id, seats=len(gone))
                await self._reap(campaign_id, list(gone.values()))
        if not self._reaping:  # the first pass since start, an outage or a new Redis is done
            self._reaping = True
            log.info("presence_reaping_resumed")

    # -- health -------------------------------------------------------------------------------

    def problem(self) -> str | None:
        return self._error

    def _down(self, exc: BaseException) -> None:
        if self._error is None:
            log.warning("redis_unreachable", error=f"{type(exc).__name__}: {exc}")
        self._error = f"unreachable: {type(exc).__name__}"

    def _up(self) -> None:
        if self._error is not None:
            log.info("redis_reachable_again")
            self._error = None
            self._up_since = time.monotonic()
            self._reaping = False

    def _stream_key(self, campaign_id: str, epoch: str) -> str:
        # The epoch names one numbering of the log: a stream never mixes two (a restored store).
        return f"{self._prefix}events:{campaign_id}:{epoch}"

    def _presence_key(self, campaign_id: str) -> str:
        return f"{self._prefix}presence:{campaign_id}"

    def _node_key(self, node_id: str) -> str:
        return f"{self._prefix}node:{node_id}"

    def _instance_key(self) -> str:
        return f"{self._prefix}instance"


def _seat_of(view: dict[str, Any]) -> str:
    """The seat a presence view is for: a person's or an agent's (older views: the user)."""
    return str(view.get("participant_id") or view["user_id"])


def _strings(mapping: Any) -> dict[str, str]:
    """A hash as read with ``decode_responses`` (typed loosely by the client)."""
    return {str(key): str(value) for key, value in dict(mapping).items()}
