"""Rate limits: token buckets (with a given clock) and their effect on a live connection and on login."""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import httpx
import pytest
from bridge_process import run_bridge

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.ratelimit import LoginThrottle, RateLimiter
from ttrpg_mcp.client import BridgeClient, BridgeClientError, ConnectionClosed

TEST_TIMEOUT = 60.0


def test_a_bucket_allows_its_burst_then_names_the_wait() -> None:
    """Five at once, the sixth waits a fifth of a second at five per second."""
    limiter = RateLimiter(rate=5, burst=5)
    assert [limiter.take("k", now=0.0) for _ in range(5)] == [None] * 5
    wait = limiter.take("k", now=0.0)
    assert wait == pytest.approx(0.2)
    assert limiter.take("k", now=0.2) is None
    assert limiter.take("other", now=0.2) is None  # keys do not share a bucket


def test_buckets_are_bounded_in_number() -> None:
    """A flood of new keys keeps only the most recent ones."""
    limiter = RateLimiter(rate=1, burst=1, max_keys=100)
    for n in range(1_000):
        limiter.take(f"k{n}", now=0.0)
    assert len(limiter) == 100


def test_login_attempts_are_throttled_per_account_and_per_address() -> None:
    """Ten tries for one account from ten addresses: the eleventh waits; other accounts go on."""
    throttle = LoginThrottle(per_minute_account=10, per_minute_ip=100)
    for n in range(10):
        throttle.check("Mira", f"10.0.0.{n}", now=0.0)
    with pytest.raises(BridgeError) as slowed:
        throttle.check(" mira ", "10.0.0.99", now=0.0)
    assert slowed.value.code == "rate_limited"
    assert slowed.value.data == {"retry_after": 6.0}
    throttle.check("kai", "10.0.0.1", now=0.0)


@pytest.mark.anyio
async def test_a_flooding_connection_is_slowed_then_closed_and_others_are_untouched(data_dir: Path) -> None:
    """Over budget: rate_limited with retry_after; on and on: closed with 1008; a neighbour plays on."""
    env = {
        "TTRPG_RATE_MESSAGES_PER_SECOND": "2",
        "TTRPG_RATE_MESSAGES_BURST": "5",
        "TTRPG_RATE_ABUSE_STRIKES": "20",
    }
    with run_bridge(data_dir, env) as running, anyio.fail_after(TEST_TIMEOUT):
        async with BridgeClient(running.base_url) as flooder, BridgeClient(running.base_url) as neighbour:
            await flooder.register(f"flood-{uuid.uuid4().hex[:6]}", "password123")
            await neighbour.register(f"calm-{uuid.uuid4().hex[:6]}", "password123")
            async with flooder.connect() as table, neighbour.connect() as calm:
                codes = []
                for _ in range(10):
                    reply = await table.request_raw({"id": uuid.uuid4().hex, "type": "heartbeat"})
                    codes.append(reply.get("error", {}).get("code"))
                assert codes[:5] == [None] * 5
                assert set(codes[5:]) == {"rate_limited"}
                assert (await calm.heartbeat())["type"] == "ack"

                async def flood() -> None:
                    for _ in range(40):
                        await table.request_raw({"id": uuid.uuid4().hex, "type": "heartbeat"})

                with pytest.raises(ConnectionClosed):
                    await flood()
                code, reason = await table.wait_closed()
                assert code == 1008
                assert "rate limit" in reason
                assert (await calm.roll_dice("1d6"))["total"] in range(1, 7)


@pytest.mark.anyio
async def test_password_guessing_is_throttled_with_retry_after(data_dir: Path) -> None:
    """Three tries a minute for an account: the fourth is 429 with Retry-After, even if right."""
    env = {"TTRPG_LOGIN_PER_MINUTE_ACCOUNT": "3"}
    with run_bridge(data_dir, env) as running, anyio.fail_after(TEST_TIMEOUT):
        async with BridgeClient(running.base_url) as client:
            await client.register("guarded", "password123")
            for _ in range(3):
                with pytest.raises(BridgeClientError) as wrong:
                    await client.login("guarded", "not-the-password")
                assert wrong.value.code == "invalid_credentials"
            async with httpx.AsyncClient(base_url=running.base_url) as http:
                response = await http.post(
                    "/api/auth/login", json={"name": "guarded", "password": "password123"}
                )
            assert response.status_code == 429
            assert response.json()["error"]["code"] == "rate_limited"
            assert int(response.headers["Retry-After"]) >= 1
