"""Argon2 hashing, the password policy and the rules for names, with no database."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from ttrpg_mcp.bridge.auth import passwords
from ttrpg_mcp.bridge.auth.users import check_display_name, check_name
from ttrpg_mcp.bridge.errors import BridgeError


def test_a_hash_verifies_its_password_and_no_other() -> None:
    """The right password matches its Argon2id hash; a wrong one does not."""
    hashed = passwords.hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify_password(hashed, "correct horse")
    assert not passwords.verify_password(hashed, "correct horsE")


def test_hashing_the_same_password_twice_gives_different_salted_hashes() -> None:
    """Each hash has its own salt, so equal passwords do not show as equal hashes."""
    assert passwords.hash_password("same password") != passwords.hash_password("same password")


def test_a_corrupt_hash_never_matches_and_asks_for_a_rehash() -> None:
    """A damaged stored hash is a failed login, not a crash."""
    assert not passwords.verify_password("not-a-hash", "whatever1")
    assert passwords.needs_rehash("not-a-hash")


def test_a_hash_made_with_weaker_parameters_needs_a_rehash() -> None:
    """A hash from older, cheaper settings is flagged; a current one is not."""
    old = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("password1")
    assert passwords.verify_password(old, "password1")
    assert passwords.needs_rehash(old)
    assert not passwords.needs_rehash(passwords.hash_password("password1"))


@pytest.mark.parametrize("password", ["", "short", "7chars!"])
def test_a_password_shorter_than_eight_characters_is_refused(password: str) -> None:
    """The policy refuses short passwords with invalid_message naming the field."""
    with pytest.raises(BridgeError) as caught:
        passwords.check_password_policy(password)
    assert caught.value.code == "invalid_message"
    assert caught.value.data == {"field": "password"}


def test_a_password_over_the_ceiling_is_refused_and_one_at_eight_accepted() -> None:
    """Eight characters is enough; more than the ceiling is refused."""
    passwords.check_password_policy("8 chars!")
    with pytest.raises(BridgeError, match="at most"):
        passwords.check_password_policy("x" * (passwords.MAX_PASSWORD_LENGTH + 1))


@pytest.mark.parametrize("name", ["a", "Alice", "bob_the-2nd.x", "x" * 64])
def test_names_of_letters_digits_and_underscore_dash_dot_are_accepted(name: str) -> None:
    """Valid login names pass through unchanged."""
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 65, "has space", "émile", "semi;colon", "new\nline", "tab\t"])
def test_other_names_are_refused(name: str) -> None:
    """Empty, too long, non-ASCII or punctuated names are refused with invalid_message."""
    with pytest.raises(BridgeError) as caught:
        check_name(name)
    assert caught.value.code == "invalid_message"


def test_a_display_name_defaults_to_the_name_and_is_trimmed() -> None:
    """No display name means the login name; surrounding spaces are dropped."""
    assert check_display_name(None, "alice") == "alice"
    assert check_display_name("   ", "alice") == "alice"
    assert check_display_name("  Alice the Bold ", "alice") == "Alice the Bold"


@pytest.mark.parametrize("display_name", ["x" * 101, "bell\x07"])
def test_an_overlong_or_unprintable_display_name_is_refused(display_name: str) -> None:
    """Display names are shown to everyone, so they stay short and printable."""
    with pytest.raises(BridgeError) as caught:
        check_display_name(display_name, "alice")
    assert caught.value.code == "invalid_message"
