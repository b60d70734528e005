"""The JWT signing key: generated once per data directory with mode 0600, or configured."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from ttrpg_mcp.bridge.auth.signing_key import SECRET_FILE_NAME, load_or_create_secret, signing_key
from ttrpg_mcp.bridge.settings import BridgeSettings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_missing_key_is_generated_into_a_file_only_its_owner_can_read(data_dir: Path) -> None:
    """The first call writes a long random key to data_dir/jwt-secret with mode 0600."""
    key = load_or_create_secret(data_dir)
    path = data_dir / SECRET_FILE_NAME
    assert _mode(path) == 0o600
    assert path.read_text().strip() == key
    assert len(key) >= 64
    assert [p.name for p in data_dir.iterdir()] == [SECRET_FILE_NAME]  # no temporary left behind


def test_the_generated_key_is_reused_by_later_calls(data_dir: Path) -> None:
    """A restart (another call, another settings object) reads the same key back."""
    first = signing_key(BridgeSettings(data_dir=data_dir))
    assert signing_key(BridgeSettings(data_dir=data_dir)) == first
    assert load_or_create_secret(data_dir) == first


def test_two_data_directories_get_different_keys(tmp_path: Path) -> None:
    """Keys are random, not derived from anything predictable."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert load_or_create_secret(tmp_path / "a") != load_or_create_secret(tmp_path / "b")


def test_a_key_file_others_can_read_is_narrowed_to_0600(data_dir: Path) -> None:
    """An existing key with loose permissions keeps working but loses them."""
    path = data_dir / SECRET_FILE_NAME
    path.write_text("k" * 64 + "\n")
    path.chmod(0o644)
    assert load_or_create_secret(data_dir) == "k" * 64
    assert _mode(path) == 0o600


def test_a_key_file_too_short_for_the_algorithm_is_refused(data_dir: Path) -> None:
    """A hand-edited key shorter than the algorithm needs stops the start with a clear message."""
    (data_dir / SECRET_FILE_NAME).write_text("short")
    with pytest.raises(ValueError, match="shorter than"):
        signing_key(BridgeSettings(data_dir=data_dir))


def test_a_configured_secret_wins_and_writes_no_file(data_dir: Path) -> None:
    """With jwt_secret set, that is the key, and the data directory is left alone."""
    secret = "s" * 48
    assert signing_key(BridgeSettings(data_dir=data_dir, jwt_secret=SecretStr(secret))) == secret
    assert not (data_dir / SECRET_FILE_NAME).exists()


@pytest.mark.parametrize(("algorithm", "length"), [("HS256", 31), ("HS384", 47), ("HS512", 63)])
def test_a_configured_secret_shorter_than_its_algorithm_needs_is_refused(
    data_dir: Path, algorithm: str, length: int
) -> None:
    """RFC 7518's minimum key length per HMAC algorithm is enforced on the configured secret."""
    settings = BridgeSettings(data_dir=data_dir, jwt_secret=SecretStr("s" * length), jwt_algorithm=algorithm)
    with pytest.raises(ValueError, match=f"{algorithm} needs at least {length + 1}"):
        signing_key(settings)
