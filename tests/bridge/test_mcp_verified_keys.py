"""/mcp's memory of verified API keys: trusted for a while, never past a withdrawal or an expiry."""

from __future__ import annotations

import time

from ttrpg_mcp.bridge import revocations
from ttrpg_mcp.bridge.auth.api_keys import KeyScope
from ttrpg_mcp.bridge.auth.service import NO_EXPIRY, AuthenticatedUser
from ttrpg_mcp.bridge.mcp_endpoint.auth import Principal, VerifiedKeys

TOKEN = "ttk_example-secret"  # noqa: S105  # made up, verified by no store


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _principal(
    key_id: str = "key_1", user_id: str = "user_1", expires_at: int = NO_EXPIRY, kind: str = "api_key"
) -> Principal:
    user = AuthenticatedUser(
        user_id=user_id,
        name="mira",
        display_name="Mira",
        token_expires_at=expires_at,
        scope=KeyScope(key_id=key_id, campaign_id="camp_1", role="player"),
    )
    return Principal(user=user, campaign_id="camp_1", kind=kind, role="player")  # type: ignore[arg-type]


def test_a_verified_key_is_trusted_until_the_recheck_is_due() -> None:
    clock = Clock()
    keys = VerifiedKeys(recheck_after=10.0, clock=clock)
    principal = _principal()
    keys.remember(TOKEN, principal, keys.generation)
    clock.now += 9.9
    assert keys.principal(TOKEN) is principal
    assert keys.principal("ttk_another-secret") is None
    clock.now += 0.1
    assert keys.principal(TOKEN) is None


def test_withdrawing_the_key_or_its_account_forgets_it_at_once() -> None:
    keys = VerifiedKeys()
    keys.remember(TOKEN, _principal(key_id="key_1", user_id="user_1"), keys.generation)
    keys.remember("ttk_other", _principal(key_id="key_2", user_id="user_2"), keys.generation)
    keys.forget(revocations.key_subject("key_1"))
    assert keys.principal(TOKEN) is None
    assert keys.principal("ttk_other") is not None
    keys.forget(revocations.user_subject("user_2"))
    assert keys.principal("ttk_other") is None


def test_a_verification_under_way_during_a_withdrawal_is_not_remembered() -> None:
    """Its read may predate the withdrawal: the next request verifies the key again."""
    keys = VerifiedKeys()
    generation = keys.generation  # taken before the store is read
    keys.forget(revocations.key_subject("key_9"))  # any withdrawal meanwhile, even another key's
    keys.remember(TOKEN, _principal(), generation)
    assert keys.principal(TOKEN) is None
    keys.remember(TOKEN, _principal(), keys.generation)
    assert keys.principal(TOKEN) is not None


def test_an_expired_key_is_verified_again_and_access_tokens_are_never_remembered() -> None:
    keys = VerifiedKeys()
    keys.remember(TOKEN, _principal(expires_at=int(time.time()) - 1), keys.generation)
    assert keys.principal(TOKEN) is None
    keys.remember("eyJ.token", _principal(kind="access_token"), keys.generation)
    assert keys.principal("eyJ.token") is None


def test_the_oldest_verification_goes_first_past_the_bound() -> None:
    keys = VerifiedKeys(max_keys=2)
    for index in range(3):
        keys.remember(f"ttk_{index}", _principal(key_id=f"key_{index}"), keys.generation)
    assert [keys.principal(f"ttk_{index}") is not None for index in range(3)] == [False, True, True]
