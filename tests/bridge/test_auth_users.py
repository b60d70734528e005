"""Accounts and invites in the store: creating, authenticating, disabling, inviting."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge.auth import passwords, users
from ttrpg_mcp.bridge.auth.digests import secret_digest
from ttrpg_mcp.bridge.auth.tokens import TokenService
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.store import BridgeStore, RefreshToken, RegistrationInvite, User, utcnow

PASSWORD = "correct horse battery"  # noqa: S105  # the test accounts' password, on purpose


@pytest.fixture
def store(data_dir: Path) -> Iterator[BridgeStore]:
    """A migrated store holding one account, alice."""
    store = BridgeStore(bridge_store_url(data_dir))
    store.migrate()
    with store.session() as db:
        users.add_user(db, "alice", PASSWORD, "Alice")
    yield store
    store.close()


def _refused(code: str) -> pytest.RaisesExc[BridgeError]:
    return pytest.raises(BridgeError, check=lambda error: error.code == code)


def test_a_new_user_gets_an_id_a_hash_and_a_creation_time(store: BridgeStore) -> None:
    """add_user stores the names as given, an Argon2 hash (never the password) and timestamps."""
    with store.session() as db:
        user = users.add_user(db, "Bob.the-2nd", PASSWORD)
    assert user.id.startswith("usr_")
    assert (user.name, user.name_key, user.display_name) == ("Bob.the-2nd", "bob.the-2nd", "Bob.the-2nd")
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert not user.disabled
    assert user.last_login_at is None
    assert PASSWORD not in repr(user)
    assert user.password_hash not in repr(user)


@pytest.mark.parametrize("name", ["alice", "ALICE", "Alice"])
def test_a_name_taken_in_any_letter_case_is_refused(store: BridgeStore, name: str) -> None:
    """Names are unique regardless of case, so 'Alice' cannot impersonate 'alice'."""
    with store.session() as db, _refused("user_exists"):
        users.add_user(db, name, PASSWORD)


def test_a_short_password_is_refused_before_anything_is_stored(store: BridgeStore) -> None:
    """The password policy applies to accounts made below the API too."""
    with store.session() as db, _refused("invalid_message"):
        users.add_user(db, "bob", "short")
    with store.session(readonly=True) as db:
        assert users.find_login(db, "bob") is None


def test_authenticating_with_the_right_password_records_the_login(store: BridgeStore) -> None:
    """The right password, in any letter case of the name, returns the user and stamps last_login_at."""
    with store.session() as db:
        user = users.authenticate(db, "ALICE", PASSWORD)
    assert user.name == "alice"
    assert user.last_login_at is not None


@pytest.mark.parametrize(("name", "password"), [("nobody", PASSWORD), ("alice", "wrong password")])
def test_unknown_users_and_wrong_passwords_get_the_same_refusal(
    store: BridgeStore, name: str, password: str
) -> None:
    """The error does not tell an unknown name from a wrong password."""
    with store.session() as db, pytest.raises(BridgeError) as caught:
        users.authenticate(db, name, password)
    assert caught.value.code == "invalid_credentials"
    assert caught.value.message == "unknown user, wrong password or disabled account"


def test_a_disabled_user_cannot_log_in_even_with_the_right_password(store: BridgeStore) -> None:
    """Disabled accounts get the same invalid_credentials as a wrong password."""
    with store.session() as db:
        users.disable_user(db, "alice")
    with store.session() as db, pytest.raises(BridgeError) as caught:
        users.authenticate(db, "alice", PASSWORD)
    assert caught.value.code == "invalid_credentials"
    assert caught.value.message == "unknown user, wrong password or disabled account"


def test_a_login_with_an_outdated_hash_stores_a_current_one(store: BridgeStore) -> None:
    """A hash made with weaker parameters is replaced on the next successful login."""
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with store.session() as db:
        db.scalars(select(User).where(User.name == "alice")).one().password_hash = weak
    with store.session() as db:
        users.authenticate(db, "alice", PASSWORD)
    with store.session(readonly=True) as db:
        stored = db.scalars(select(User.password_hash).where(User.name == "alice")).one()
    assert stored != weak
    assert not passwords.needs_rehash(stored)
    assert passwords.verify_password(stored, PASSWORD)


def test_users_are_listed_by_name_regardless_of_case(store: BridgeStore) -> None:
    """The admin listing is alphabetical."""
    with store.session() as db:
        users.add_user_with_hash(db, "Carol", "h")
        users.add_user_with_hash(db, "bob", "h")
    with store.session(readonly=True) as db:
        assert [user.name for user in users.list_users(db)] == ["alice", "bob", "Carol"]


def test_disabling_a_user_revokes_all_their_refresh_tokens(store: BridgeStore) -> None:
    """Every live refresh token of a disabled user gets revoked_at."""
    tokens = TokenService("k" * 64, "HS256", 900, 3600)
    with store.session() as db:
        alice = users.get_user(db, db.scalars(select(User.id)).one())
        assert alice is not None
        tokens.issue_pair(db, alice)
        tokens.issue_pair(db, alice)
    with store.session() as db:
        users.disable_user(db, "Alice")
    with store.session(readonly=True) as db:
        rows = db.scalars(select(RefreshToken)).all()
    assert len(rows) == 2
    assert all(row.revoked_at is not None for row in rows)


def test_disabling_an_unknown_user_is_not_found(store: BridgeStore) -> None:
    """There is nobody to disable."""
    with store.session() as db, _refused("not_found"):
        users.disable_user(db, "nobody")


def test_an_invite_allows_as_many_registrations_as_it_has_uses(store: BridgeStore) -> None:
    """A two-use invite is consumed twice, then refused."""
    with store.session() as db:
        code = users.create_invite(db, uses=2)
    for _ in range(2):
        with store.session() as db:
            users.consume_invite(db, code)
    with store.session() as db, _refused("registration_closed"):
        users.consume_invite(db, code)


def test_an_expired_or_unknown_invite_is_refused(store: BridgeStore) -> None:
    """An invite past its lifetime, or a made-up code, opens nothing."""
    with store.session() as db:
        code = users.create_invite(db, ttl_seconds=60)
    with store.session() as db, _refused("registration_closed"):
        users.consume_invite(db, code, now=utcnow() + timedelta(seconds=61))
    with store.session() as db, _refused("registration_closed"):
        users.consume_invite(db, "made-up-code")


def test_an_invite_remembers_who_made_it_and_hides_its_code_in_repr(store: BridgeStore) -> None:
    """created_by links to the account; the code is a credential, stored only as its hash."""
    with store.session() as db:
        alice_id = db.scalars(select(User.id)).one()
        code = users.create_invite(db, created_by=alice_id)
    with store.session(readonly=True) as db:
        invite = db.get_one(RegistrationInvite, secret_digest(code))
        assert db.get(RegistrationInvite, code) is None
    assert invite.created_by == alice_id
    assert invite.uses_left == 1
    assert code not in repr(invite)
    assert invite.code_hash not in repr(invite)


@pytest.mark.parametrize(("uses", "ttl"), [(0, 60), (1, 0)])
def test_an_invite_needs_a_use_and_a_lifetime(store: BridgeStore, uses: int, ttl: int) -> None:
    """Zero uses or zero seconds would make a code that can never work."""
    with store.session() as db, _refused("invalid_message"):
        users.create_invite(db, uses=uses, ttl_seconds=ttl)
