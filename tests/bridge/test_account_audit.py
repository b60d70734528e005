"""The audit of HTTP actions and the registration throttle, through the auth routes in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge.auth.service import AuthService
from ttrpg_mcp.bridge.http.auth_routes import install_error_handler, router
from ttrpg_mcp.bridge.ratelimit import AddressThrottle
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.store import AuditEntry, BridgeStore

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"  # noqa: S105  # the test accounts' password


@pytest.fixture
async def store(data_dir: Path) -> AsyncIterator[BridgeStore]:
    store = BridgeStore(bridge_store_url(data_dir))
    store.migrate()
    yield store
    store.close()


def _client(data_dir: Path, store: BridgeStore, throttle: AddressThrottle | None = None) -> httpx.AsyncClient:
    app = FastAPI()
    app.state.auth = AuthService.from_settings(BridgeSettings(data_dir=data_dir), store)
    app.state.register_throttle = throttle
    install_error_handler(app)
    app.include_router(router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://bridge")


def _entries(store: BridgeStore) -> list[dict[str, Any]]:
    with store.session(readonly=True) as db:
        rows = db.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        return [
            {"action": row.action, "user_id": row.user_id, "result": row.result, "detail": row.detail}
            for row in rows
        ]


async def test_sign_ins_refused_sign_ins_and_refresh_reuse_are_audited_without_secrets(
    data_dir: Path, store: BridgeStore
) -> None:
    """Each entry has the account (when known), the outcome and the address; never a password or token."""
    async with _client(data_dir, store) as client:
        registered = (
            await client.post("/api/auth/register", json={"username": "alice", "password": PASSWORD})
        ).json()
        user_id = registered["user_info"]["id"]
        await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
        await client.post("/api/auth/login", json={"username": "alice", "password": "wrong password!"})
        await client.post("/api/auth/login", json={"username": "nobody", "password": PASSWORD})
        refresh = {"Authorization": f"Bearer {registered['refresh_token']}"}
        assert (await client.post("/api/auth/refresh", headers=refresh)).status_code == 200
        assert (await client.post("/api/auth/refresh", headers=refresh)).status_code == 401
    entries = _entries(store)
    assert [(e["action"], e["user_id"], e["result"]) for e in entries] == [
        ("account_registered", user_id, "ok"),
        ("sign_in", user_id, "ok"),
        ("sign_in", user_id, "invalid_credentials"),
        ("sign_in", None, "invalid_credentials"),
        ("refresh_reuse_detected", user_id, "invalid_token"),
    ]
    assert all(entry["detail"]["address"] == "127.0.0.1" for entry in entries)
    text = repr(entries)
    for secret in (PASSWORD, "wrong password!", "nobody", registered["refresh_token"]):
        assert secret not in text


async def test_registration_is_throttled_per_address(data_dir: Path, store: BridgeStore) -> None:
    """Past the budget, 429 with Retry-After, before any Argon2 work; other addresses are unaffected."""
    throttle = AddressThrottle(2)
    async with _client(data_dir, store, throttle) as client:
        for name in ("one", "two"):
            response = await client.post("/api/auth/register", json={"username": name, "password": PASSWORD})
            assert response.status_code == 201
        refused = await client.post("/api/auth/register", json={"username": "three", "password": PASSWORD})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    throttle.check("192.0.2.7")  # another address still has its whole budget


def test_the_address_throttle_refills_with_time() -> None:
    """A spent budget comes back at its per-minute rate (time passed in, no waiting)."""
    throttle = AddressThrottle(60)
    for _ in range(60):
        throttle.check("198.51.100.1", now=0.0)
    with pytest.raises(Exception, match="too many registration attempts"):
        throttle.check("198.51.100.1", now=0.0)
    throttle.check("198.51.100.1", now=1.0)
