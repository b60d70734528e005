"""Rate-limit buckets every node shares (Redis): one budget, however many nodes a client uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import RedisServer, redis_server
from redis import Redis

from ttrpg_mcp.bridge.backplane.buckets import RedisBuckets
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.ratelimit import LoginThrottle

pytestmark = pytest.mark.anyio


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


async def test_two_nodes_spend_from_one_bucket(redis: RedisServer) -> None:
    first, second = RedisBuckets(redis.url), RedisBuckets(redis.url)
    try:
        taken = [await node.take("user:u1", 0.01, 4) for node in (first, second, first, second)]
        refused = await second.take("user:u1", 0.01, 4)
        other_key = await first.take("user:u2", 0.01, 4)
    finally:
        await first.close()
        await second.close()
    assert taken == [None, None, None, None]
    assert refused is not None
    assert refused > 0
    assert other_key is None


async def test_deployments_with_their_own_key_prefix_keep_their_own_buckets(redis: RedisServer) -> None:
    """Two deployments sharing one Redis: the same key under two prefixes is two budgets."""
    table_a, table_b = RedisBuckets(redis.url, key_prefix="a:"), RedisBuckets(redis.url, key_prefix="b:")
    try:
        spent = await table_a.take("address:10.0.0.1", 0.01, 1)
        refused = await table_a.take("address:10.0.0.1", 0.01, 1)
        elsewhere = await table_b.take("address:10.0.0.1", 0.01, 1)
        with Redis.from_url(redis.url) as client:
            keys = sorted(client.keys("*"))
    finally:
        await table_a.close()
        await table_b.close()
    assert spent is None
    assert refused is not None
    assert elsewhere is None
    assert keys == [b"a:ratelimit:address:10.0.0.1", b"b:ratelimit:address:10.0.0.1"]


async def test_password_guesses_spread_over_nodes_meet_one_account_budget(redis: RedisServer) -> None:
    buckets = [RedisBuckets(redis.url), RedisBuckets(redis.url)]
    throttles = [LoginThrottle(3, 1000, shared=bucket) for bucket in buckets]
    try:
        for attempt in range(3):
            await throttles[attempt % 2].check_shared("Mira", f"10.0.0.{attempt}")
        with pytest.raises(BridgeError) as refused:
            await throttles[1].check_shared(" mira ", "10.0.0.9")
    finally:
        for bucket in buckets:
            await bucket.close()
    assert refused.value.code == "rate_limited"
    assert refused.value.data["retry_after"] > 0


async def test_with_redis_gone_each_node_still_applies_its_own_budget(redis: RedisServer) -> None:
    bucket = RedisBuckets(redis.url)
    throttle = LoginThrottle(2, 1000, shared=bucket)
    redis.stop()
    try:
        await throttle.check_shared("kai", "10.0.0.1")
        await throttle.check_shared("kai", "10.0.0.2")
        with pytest.raises(BridgeError) as refused:
            await throttle.check_shared("kai", "10.0.0.3")
    finally:
        await bucket.close()
    assert refused.value.code == "rate_limited"
