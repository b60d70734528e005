"""The async auth service as the HTTP routes and the WebSocket gateway use it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Literal

import anyio
import pytest

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge.auth import users
from ttrpg_mcp.bridge.auth.service import AuthenticatedUser, AuthService
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.store import BridgeStore

pytestmark = pytest.mark.anyio

# In-process SQLite and Argon2: a few hundred milliseconds of work at most per test.
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


@pytest.fixture
def make_auth(data_dir: Path, store: BridgeStore) -> Callable[[Mode], AuthService]:
    """Build the service as the bridge does, from settings, in a given registration mode."""

    def make(registration: Mode = "open") -> AuthService:
        return AuthService.from_settings(BridgeSettings(data_dir=data_dir, registration=registration), store)

    return make


def _refused(code: str) -> pytest.RaisesExc[BridgeError]:
    return pytest.raises(BridgeError, check=lambda error: error.code == code)


async def test_open_registration_creates_a_logged_in_account(
    make_auth: Callable[[Mode], AuthService],
) -> None:
    """Anyone may register; the returned access token verifies to the new account."""
    auth = make_auth("open")
    with anyio.fail_after(TEST_TIMEOUT):
        pair = await auth.register("alice", PASSWORD, "Alice")
        user = await auth.verify_access(pair.access_token)
    claims = auth.tokens.decode_access(pair.access_token)
    assert claims.issued_at is not None
    assert user == AuthenticatedUser(
        user_id=pair.user_info.id,
        name="alice",
        display_name="Alice",
        token_expires_at=int(claims.expires_at.timestamp()),
        token_issued_at=int(claims.issued_at.timestamp()) if claims.issued_at else None,
    )


async def test_closed_registration_refuses_everyone(make_auth: Callable[[Mode], AuthService]) -> None:
    """With registration closed, even a valid-looking request makes no account."""
    auth = make_auth("closed")
    with anyio.fail_after(TEST_TIMEOUT), _refused("registration_closed"):
        await auth.register("alice", PASSWORD)


async def test_invite_registration_needs_a_valid_code(
    make_auth: Callable[[Mode], AuthService], store: BridgeStore
) -> None:
    """No code, or a wrong one, is refused; a real code works once."""
    auth = make_auth("invite")
    with anyio.fail_after(TEST_TIMEOUT):
        code = await store.run(users.create_invite)
        with _refused("registration_closed"):
            await auth.register("alice", PASSWORD)
        with _refused("registration_closed"):
            await auth.register("alice", PASSWORD, invite_code="wrong")
        pair = await auth.register("alice", PASSWORD, invite_code=code)
        assert pair.user_info.name == "alice"
        with _refused("registration_closed"):
            await auth.register("bob", PASSWORD, invite_code=code)


async def test_a_failed_registration_does_not_spend_the_invite(
    make_auth: Callable[[Mode], AuthService], store: BridgeStore
) -> None:
    """Registering a taken name with an invite leaves the invite usable."""
    auth = make_auth("invite")
    with anyio.fail_after(TEST_TIMEOUT):
        code = await store.run(users.create_invite)
        await store.run(lambda db: users.add_user(db, "alice", PASSWORD))
        with _refused("user_exists"):
            await auth.register("Alice", PASSWORD, invite_code=code)
        assert (await auth.register("bob", PASSWORD, invite_code=code)).user_info.name == "bob"


@pytest.mark.parametrize(
    ("name", "password", "display_name"),
    [("bad name", PASSWORD, None), ("alice", "short", None), ("alice", PASSWORD, "x" * 101)],
)
async def test_registration_checks_name_password_and_display_name(
    make_auth: Callable[[Mode], AuthService], name: str, password: str, display_name: str | None
) -> None:
    """Invalid input is refused with invalid_message before any hashing or writing."""
    with anyio.fail_after(TEST_TIMEOUT), _refused("invalid_message"):
        await make_auth("open").register(name, password, display_name)


async def test_login_refresh_and_logout_round_trip(make_auth: Callable[[Mode], AuthService]) -> None:
    """Login gives a pair, refresh rotates it, logout ends it."""
    auth = make_auth("open")
    with anyio.fail_after(TEST_TIMEOUT):
        await auth.register("alice", PASSWORD)
        login = await auth.login("ALICE", PASSWORD)
        refreshed = await auth.refresh(login.refresh_token)
        assert (await auth.verify_access(refreshed.access_token)).name == "alice"
        await auth.logout(refreshed.refresh_token)
        with _refused("invalid_token"):
            await auth.refresh(refreshed.refresh_token)
        with _refused("invalid_token"):
            await auth.verify_access(refreshed.access_token)


async def test_a_wrong_password_is_refused(make_auth: Callable[[Mode], AuthService]) -> None:
    """Login with the wrong password fails with invalid_credentials."""
    auth = make_auth("open")
    with anyio.fail_after(TEST_TIMEOUT):
        await auth.register("alice", PASSWORD)
        with _refused("invalid_credentials"):
            await auth.login("alice", "not the password")
        with _refused("invalid_credentials"):
            await auth.login("nobody", PASSWORD)


async def test_a_disabled_user_can_neither_log_in_nor_use_a_live_token(
    make_auth: Callable[[Mode], AuthService], store: BridgeStore
) -> None:
    """Disabling takes effect at once, for new logins and for tokens already handed out."""
    auth = make_auth("open")
    with anyio.fail_after(TEST_TIMEOUT):
        pair = await auth.register("alice", PASSWORD)
        await store.run(lambda db: users.disable_user(db, "alice"))
        with _refused("invalid_token"):
            await auth.verify_access(pair.access_token)
        with _refused("invalid_credentials"):
            await auth.login("alice", PASSWORD)


async def test_a_restarted_service_accepts_the_tokens_of_the_previous_one(
    make_auth: Callable[[Mode], AuthService],
) -> None:
    """The generated signing key is kept in the data directory, so tokens survive a restart."""
    with anyio.fail_after(TEST_TIMEOUT):
        pair = await make_auth("open").register("alice", PASSWORD)
        assert (await make_auth("open").verify_access(pair.access_token)).name == "alice"


async def test_two_concurrent_refreshes_with_one_token_get_one_new_pair(
    make_auth: Callable[[Mode], AuthService],
) -> None:
    """A refresh token raced from two places is honoured once; the loser revokes the family."""
    auth = make_auth("open")
    outcomes: list[str] = []

    async def refresh(token: str) -> None:
        try:
            await auth.refresh(token)
            outcomes.append("ok")
        except BridgeError as error:
            outcomes.append(error.code)

    with anyio.fail_after(TEST_TIMEOUT):
        pair = await auth.register("alice", PASSWORD)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(refresh, pair.refresh_token)
            tasks.start_soon(refresh, pair.refresh_token)
        with _refused("invalid_token"):
            await auth.verify_access(pair.access_token)
    assert sorted(outcomes) == ["invalid_token", "ok"]
