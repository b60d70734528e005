"""Access and refresh tokens: what is accepted, what is refused, and how rotation and revocation work."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge.auth import users
from ttrpg_mcp.bridge.auth.schemas import TokenPair
from ttrpg_mcp.bridge.auth.tokens import TokenService
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.store import BridgeStore, RefreshToken, User

SECRET = "test-secret-" + "x" * 52
ACCESS_TTL = 900
REFRESH_TTL = 86400


@pytest.fixture
def store(data_dir: Path) -> Iterator[BridgeStore]:
    """A migrated store in the scratch data directory."""
    store = BridgeStore(bridge_store_url(data_dir))
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def tokens() -> TokenService:
    return TokenService(SECRET, "HS256", ACCESS_TTL, REFRESH_TTL)


@pytest.fixture
def alice(store: BridgeStore) -> User:
    """An account to issue tokens for (its password hash is never checked here)."""
    with store.session() as db:
        return users.add_user_with_hash(db, "alice", "unused-hash", "Alice")


def _login(store: BridgeStore, tokens: TokenService, user: User) -> TokenPair:
    with store.session() as db:
        return tokens.issue_pair(db, user)


def _rotate(store: BridgeStore, tokens: TokenService, refresh_token: str) -> TokenPair:
    with store.session() as db:
        return tokens.rotate(db, refresh_token)


def _refused(code: str) -> pytest.RaisesExc[BridgeError]:
    return pytest.raises(BridgeError, check=lambda error: error.code == code)


def _access_claims(user: User, **overrides: object) -> dict[str, object]:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, object] = {
        "sub": user.id,
        "name": user.name,
        "typ": "access",
        "fam": "fam_x",
        "iat": now,
        "exp": now + 60,
        "jti": "j",
    }
    return claims | overrides


def test_a_fresh_access_token_decodes_to_its_user(
    store: BridgeStore, tokens: TokenService, alice: User
) -> None:
    """The claims of an issued access token name the user and expire access_ttl from now."""
    pair = _login(store, tokens, alice)
    claims = tokens.decode_access(pair.access_token)
    assert (claims.user_id, claims.name) == (alice.id, "alice")
    assert pair.expires_in == ACCESS_TTL
    assert pair.token_type == "bearer"  # noqa: S105  # the OAuth token type, not a secret
    assert pair.user_info.model_dump() == {
        "id": alice.id,
        "username": "alice",
        "name": "alice",
        "display_name": "Alice",
        "is_admin": alice.is_admin,
    }
    with store.session(readonly=True) as db:
        assert tokens.authenticate_access(db, pair.access_token).id == alice.id


def test_an_unsigned_alg_none_token_is_refused(tokens: TokenService, alice: User) -> None:
    """A token that declares no signature is refused, whatever it claims."""
    forged = jwt.encode(_access_claims(alice), key=None, algorithm="none")
    with _refused("invalid_token"):
        tokens.decode_access(forged)


def test_a_token_signed_with_another_key_is_refused(tokens: TokenService, alice: User) -> None:
    """Only the bridge's own key makes a valid signature."""
    forged = jwt.encode(_access_claims(alice), "another-secret-" + "y" * 50, algorithm="HS256")
    with _refused("invalid_token"):
        tokens.decode_access(forged)


def test_a_token_signed_with_another_algorithm_is_refused(tokens: TokenService, alice: User) -> None:
    """The algorithm is pinned: the right key under HS512 is still refused by an HS256 bridge."""
    forged = jwt.encode(_access_claims(alice), SECRET, algorithm="HS512")
    with _refused("invalid_token"):
        tokens.decode_access(forged)


def test_a_token_with_a_tampered_payload_is_refused(
    store: BridgeStore, tokens: TokenService, alice: User
) -> None:
    """Changing a claim (here the user id) breaks the signature."""
    header, payload, signature = _login(store, tokens, alice).access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "usr_someone_else"
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with _refused("invalid_token"):
        tokens.decode_access(f"{header}.{tampered}.{signature}")


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "ey.ey.ey"])
def test_malformed_tokens_are_refused(tokens: TokenService, garbage: str) -> None:
    """Anything that is not a JWT is an invalid token, not a crash."""
    with _refused("invalid_token"):
        tokens.decode_access(garbage)


def test_an_expired_access_token_is_refused_as_expired(tokens: TokenService, alice: User) -> None:
    """A genuine token past its exp gets token_expired, so the client knows to refresh."""
    long_ago = int(datetime.now(UTC).timestamp()) - 3600
    expired = jwt.encode(_access_claims(alice, iat=long_ago - 60, exp=long_ago), SECRET, algorithm="HS256")
    with _refused("token_expired"):
        tokens.decode_access(expired)


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "jti", "name", "fam"])
def test_a_token_missing_a_required_claim_is_refused(tokens: TokenService, alice: User, missing: str) -> None:
    """Every claim the bridge reads must be present."""
    claims = _access_claims(alice)
    del claims[missing]
    with _refused("invalid_token"):
        tokens.decode_access(jwt.encode(claims, SECRET, algorithm="HS256"))


def test_a_refresh_token_is_not_an_access_token(
    store: BridgeStore, tokens: TokenService, alice: User
) -> None:
    """A long-lived refresh token cannot be used where an access token is expected."""
    pair = _login(store, tokens, alice)
    with _refused("invalid_token"):
        tokens.decode_access(pair.refresh_token)


def test_an_access_token_is_not_a_refresh_token(
    store: BridgeStore, tokens: TokenService, alice: User
) -> None:
    """An access token cannot be rotated into a new pair."""
    pair = _login(store, tokens, alice)
    with _refused("invalid_token"):
        _rotate(store, tokens, pair.access_token)


def test_rotation_gives_a_new_pair_in_the_same_family_and_spends_the_old_token(
    store: BridgeStore, tokens: TokenService, alice: User
) -> None:
    """A refresh token buys one new pair; the new one carries on the family."""
    first = _login(store, tokens, alice)
    second = _rotate(store, tokens, first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.user_info == first.user_info
    old = tokens.decode_refresh(first.refresh_token)
    new = tokens.decode_refresh(second.refresh_token)
    assert new.family_id == old.family_id
    with store.session(readonly=True) as db:
        spent = db.get(RefreshToken, old.jti)
        assert spent is not None
        assert spent.used_at is not None
        assert tokens.authenticate_access(db, second.access_token).id == alice.id
    third = _rotate(store, tokens, second.refresh_token)
    assert tokens.decode_refresh(third.refresh_token).family_id == old.family_id


def test_reusing_a_spent_refresh_token_revokes_its_whole_family(
    store: BridgeStore, tokens: TokenService, alice: User
) -> None:
    """A replayed refresh token means it was copied: the newer tokens of its family stop working too."""
    first = _login(store, tokens, alice)
    second = _rotate(store, tokens, first.refresh_token)
    with pytest.raises(BridgeError, match="reuse detected") as caught:
        _rotate(store, tokens, first.refresh_token)
    assert caught.value.code == "invalid_token"
    assert caught.value.data == {"reason": "refresh_token_reuse"}
    with _refused("invalid_token"):
        _rotate(store, tokens, second.refresh_token)
    with store.session(readonly=True) as db, _refused("invalid_token"):
        tokens.authenticate_access(db, second.access_token)


def test_revoking_one_family_leaves_other_logins_alone(
    store: BridgeStore, tokens: TokenService, alice: User
) -> None:
    """Reuse on one device does not log the same user out on another."""
    phone = _login(store, tokens, alice)
    laptop = _login(store, tokens, alice)
    _rotate(store, tokens, phone.refresh_token)
    with _refused("invalid_token"):
        _rotate(store, tokens, phone.refresh_token)
    assert _rotate(store, tokens, laptop.refresh_token).user_info.id == alice.id


def test_logout_revokes_the_family(store: BridgeStore, tokens: TokenService, alice: User) -> None:
    """After logout neither the refresh token nor the access token of that login works."""
    pair = _login(store, tokens, alice)
    with store.session() as db:
        tokens.logout(db, pair.refresh_token)
    with pytest.raises(BridgeError, match="revoked"):
        _rotate(store, tokens, pair.refresh_token)
    with store.session(readonly=True) as db, _refused("invalid_token"):
        tokens.authenticate_access(db, pair.access_token)


def test_a_refresh_token_past_its_stored_expiry_is_refused_as_expired(
    store: BridgeStore, alice: User
) -> None:
    """The store's expiry counts even when the JWT's own exp has not passed."""
    now = datetime.now(UTC)
    issuer = TokenService(SECRET, "HS256", ACCESS_TTL, REFRESH_TTL, clock=lambda: now)
    pair = _login(store, issuer, alice)
    later = TokenService(SECRET, "HS256", ACCESS_TTL, REFRESH_TTL, clock=lambda: now + timedelta(days=2))
    with store.session() as db:
        db.get_one(RefreshToken, issuer.decode_refresh(pair.refresh_token).jti).expires_at = now + timedelta(
            days=1
        )
    with _refused("token_expired"):
        _rotate(store, later, pair.refresh_token)


def test_an_unknown_refresh_token_is_refused(store: BridgeStore, tokens: TokenService, alice: User) -> None:
    """A well-signed refresh token the store never issued is refused."""
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": alice.id, "typ": "refresh", "fam": "fam_x", "iat": now, "exp": now + 60, "jti": "nope"}
    with _refused("invalid_token"):
        _rotate(store, tokens, jwt.encode(claims, SECRET, algorithm="HS256"))


def test_a_disabled_users_tokens_are_refused(store: BridgeStore, tokens: TokenService, alice: User) -> None:
    """Disabling an account ends its access and refresh tokens at once."""
    pair = _login(store, tokens, alice)
    with store.session() as db:
        users.disable_user(db, "alice")
    with store.session(readonly=True) as db, _refused("invalid_token"):
        tokens.authenticate_access(db, pair.access_token)
    with _refused("invalid_token"):
        _rotate(store, tokens, pair.refresh_token)


def test_purging_deletes_only_expired_refresh_tokens(store: BridgeStore, alice: User) -> None:
    """Old rows are cleaned up; live ones stay."""
    now = datetime.now(UTC)
    past = TokenService(SECRET, "HS256", ACCESS_TTL, 60, clock=lambda: now - timedelta(hours=1))
    present = TokenService(SECRET, "HS256", ACCESS_TTL, REFRESH_TTL, clock=lambda: now)
    _login(store, past, alice)
    live = _login(store, present, alice)
    with store.session() as db:
        assert present.purge_expired(db) == 1
    with store.session(readonly=True) as db:
        assert db.get(RefreshToken, present.decode_refresh(live.refresh_token).jti) is not None


def test_token_reprs_do_not_show_tokens_or_the_secret(
    store: BridgeStore, tokens: TokenService, alice: User
) -> None:
    """Logging a pair or the service by accident does not leak a credential."""
    pair = _login(store, tokens, alice)
    assert pair.access_token not in repr(pair)
    assert pair.refresh_token not in repr(pair)
    assert SECRET not in repr(tokens)
