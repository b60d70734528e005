"""The /api/auth routes through a tiny FastAPI app, driven in-process over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx
import pytest
from fastapi import FastAPI

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge.auth import users
from ttrpg_mcp.bridge.auth.service import AuthService
from ttrpg_mcp.bridge.http.auth_routes import install_error_handler, router
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.store import BridgeStore

pytestmark = pytest.mark.anyio

# In-process ASGI and SQLite, plus a few Argon2 hashes per test.
TEST_TIMEOUT = 20.0
PASSWORD = "correct horse battery"  # noqa: S105  # the test accounts' password, on purpose

Mode = Literal["open", "invite", "closed"]


@pytest.fixture
async def store(data_dir: Path) -> AsyncIterator[BridgeStore]:
    """A migrated store in the scratch data directory."""
    store = BridgeStore(bridge_store_url(data_dir))
    store.migrate()
    yield store
    store.close()


def _app(auth: AuthService) -> FastAPI:
    app = FastAPI()
    app.state.auth = auth
    install_error_handler(app)
    app.include_router(router)
    return app


@pytest.fixture
async def client(data_dir: Path, store: BridgeStore) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with open registration."""
    auth = AuthService.from_settings(BridgeSettings(data_dir=data_dir), store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(_app(auth)), base_url="http://bridge"
    ) as client:
        yield client


async def _client_in_mode(data_dir: Path, store: BridgeStore, mode: Mode) -> httpx.AsyncClient:
    auth = AuthService.from_settings(BridgeSettings(data_dir=data_dir, registration=mode), store)
    return httpx.AsyncClient(transport=httpx.ASGITransport(_app(auth)), base_url="http://bridge")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "data"}
    return dict(body["error"])


async def _register(client: httpx.AsyncClient, name: str = "alice") -> dict[str, Any]:
    response = await client.post("/api/auth/register", json={"name": name, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_register_returns_a_token_pair_with_user_info(client: httpx.AsyncClient) -> None:
    """201 with access and refresh tokens, bearer type, lifetime and who they belong to; never cached."""
    with anyio.fail_after(TEST_TIMEOUT):
        response = await client.post(
            "/api/auth/register", json={"name": "alice", "password": PASSWORD, "display_name": "Alice"}
        )
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "user_info"}
    assert body["token_type"] == "bearer"  # noqa: S105  # the OAuth token type, not a secret
    assert body["expires_in"] == 900
    assert body["user_info"]["name"] == "alice"
    assert body["user_info"]["display_name"] == "Alice"
    assert body["user_info"]["id"].startswith("usr_")


async def test_registering_a_taken_name_is_a_409(client: httpx.AsyncClient) -> None:
    """The second account with the same name, in another case, gets user_exists."""
    with anyio.fail_after(TEST_TIMEOUT):
        await _register(client, "alice")
        response = await client.post("/api/auth/register", json={"name": "ALICE", "password": PASSWORD})
    assert response.status_code == 409
    assert _error(response)["code"] == "user_exists"


async def test_an_invalid_body_is_a_422_that_does_not_echo_the_password(client: httpx.AsyncClient) -> None:
    """Validation failures use the API's error body, list the problems and leave the values out."""
    with anyio.fail_after(TEST_TIMEOUT):
        response = await client.post("/api/auth/register", json={"name": "bad name!", "password": "s3cr3t"})
    assert response.status_code == 422
    error = _error(response)
    assert error["code"] == "invalid_message"
    assert {tuple(problem["loc"]) for problem in error["data"]["errors"]} == {
        ("body", "name"),
        ("body", "password"),
    }
    assert "s3cr3t" not in response.text


async def test_a_body_that_is_not_json_is_a_422(client: httpx.AsyncClient) -> None:
    """Garbage instead of JSON is answered with the same error body, not a crash."""
    with anyio.fail_after(TEST_TIMEOUT):
        response = await client.post(
            "/api/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422
    assert _error(response)["code"] == "invalid_message"


@pytest.mark.parametrize("mode", ["closed", "invite"])
async def test_registration_without_permission_is_a_403(
    data_dir: Path, store: BridgeStore, mode: Mode
) -> None:
    """Closed registration, or invite registration without a code, is refused."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with await _client_in_mode(data_dir, store, mode) as client:
            response = await client.post("/api/auth/register", json={"name": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert _error(response)["code"] == "registration_closed"


async def test_invite_registration_with_a_code_is_a_201(data_dir: Path, store: BridgeStore) -> None:
    """An invite code in the body lets a new player in."""
    with anyio.fail_after(TEST_TIMEOUT):
        code = await store.run(users.create_invite)
        async with await _client_in_mode(data_dir, store, "invite") as client:
            response = await client.post(
                "/api/auth/register", json={"name": "alice", "password": PASSWORD, "invite_code": code}
            )
    assert response.status_code == 201


async def test_login_gives_a_pair_and_bad_credentials_a_401(client: httpx.AsyncClient) -> None:
    """Right password: 200 and tokens. Wrong password or unknown user: 401 invalid_credentials."""
    with anyio.fail_after(TEST_TIMEOUT):
        await _register(client)
        ok = await client.post("/api/auth/login", json={"name": "alice", "password": PASSWORD})
        wrong = await client.post("/api/auth/login", json={"name": "alice", "password": "wrong password"})
        unknown = await client.post("/api/auth/login", json={"name": "nobody", "password": PASSWORD})
    assert ok.status_code == 200
    assert ok.json()["user_info"]["name"] == "alice"
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert _error(response)["code"] == "invalid_credentials"
    assert wrong.json() == unknown.json()


async def test_refresh_rotates_and_a_replayed_refresh_token_is_a_401(client: httpx.AsyncClient) -> None:
    """The refresh token buys one new pair; sending it again is refused as reuse."""
    with anyio.fail_after(TEST_TIMEOUT):
        first = await _register(client)
        rotated = await client.post("/api/auth/refresh", headers=_bearer(first["refresh_token"]))
        replayed = await client.post("/api/auth/refresh", headers=_bearer(first["refresh_token"]))
    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"] != first["refresh_token"]
    assert replayed.status_code == 401
    assert _error(replayed)["data"] == {"reason": "refresh_token_reuse"}


async def test_logout_is_a_204_and_ends_the_session(client: httpx.AsyncClient) -> None:
    """After logout, neither token of that login works."""
    with anyio.fail_after(TEST_TIMEOUT):
        pair = await _register(client)
        logout = await client.post("/api/auth/logout", headers=_bearer(pair["refresh_token"]))
        refresh = await client.post("/api/auth/refresh", headers=_bearer(pair["refresh_token"]))
        me = await client.get("/api/auth/me", headers=_bearer(pair["access_token"]))
    assert logout.status_code == 204
    assert logout.content == b""
    assert (refresh.status_code, me.status_code) == (401, 401)


async def test_me_tells_who_an_access_token_belongs_to(client: httpx.AsyncClient) -> None:
    """GET /me with an access token returns the user's info."""
    with anyio.fail_after(TEST_TIMEOUT):
        pair = await _register(client)
        response = await client.get("/api/auth/me", headers=_bearer(pair["access_token"]))
    assert response.status_code == 200
    assert response.json() == pair["user_info"]


async def test_me_refuses_a_missing_a_malformed_or_a_refresh_token(client: httpx.AsyncClient) -> None:
    """No header is unauthenticated; garbage or the wrong kind of token is invalid_token."""
    with anyio.fail_after(TEST_TIMEOUT):
        pair = await _register(client)
        missing = await client.get("/api/auth/me")
        basic = await client.get("/api/auth/me", headers={"Authorization": "Basic YWxpY2U6eA=="})
        garbage = await client.get("/api/auth/me", headers=_bearer("garbage"))
        wrong_kind = await client.get("/api/auth/me", headers=_bearer(pair["refresh_token"]))
    assert [_error(r)["code"] for r in (missing, basic, garbage, wrong_kind)] == [
        "unauthenticated",
        "unauthenticated",
        "invalid_token",
        "invalid_token",
    ]
    assert {r.status_code for r in (missing, basic, garbage, wrong_kind)} == {401}


async def test_the_openapi_document_declares_the_error_responses(client: httpx.AsyncClient) -> None:
    """Each route lists its error statuses with the error body, for clients and schemathesis."""
    with anyio.fail_after(TEST_TIMEOUT):
        spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert set(paths["/api/auth/register"]["post"]["responses"]) == {"201", "403", "409", "422", "429"}
    assert set(paths["/api/auth/login"]["post"]["responses"]) == {"200", "401", "422", "429"}
    assert set(paths["/api/auth/logout"]["post"]["responses"]) == {"204", "401"}
    error_schema = paths["/api/auth/me"]["get"]["responses"]["401"]["content"]["application/json"]["schema"]
    assert error_schema == {"$ref": "#/components/schemas/ErrorResponse"}
    assert {"accessToken", "refreshToken"} <= set(spec["components"]["securitySchemes"])


async def test_login_and_register_take_username_as_the_design_document_names_it(
    client: httpx.AsyncClient,
) -> None:
    """``{"username", "password"}`` registers and logs in; ``user_info`` carries ``username``."""
    with anyio.fail_after(TEST_TIMEOUT):
        registered = await client.post("/api/auth/register", json={"username": "mira", "password": PASSWORD})
        login = await client.post("/api/auth/login", json={"username": "mira", "password": PASSWORD})
        by_name = await client.post("/api/auth/login", json={"name": "mira", "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    for response in (login, by_name):
        assert response.status_code == 200, response.text
        info = response.json()["user_info"]
        assert info["username"] == info["name"] == "mira"
    assert registered.json()["user_info"]["username"] == "mira"
