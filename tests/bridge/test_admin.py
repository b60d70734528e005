"""The ``user`` and ``invite`` admin commands, parsed and run as the CLI does."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from ttrpg_mcp.bridge.admin import run_admin_command
from ttrpg_mcp.bridge.admin_parsers import add_admin_commands
from ttrpg_mcp.bridge.auth import users
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.store import BridgeStore

PASSWORD = "correct horse battery"  # noqa: S105  # the test accounts' password, on purpose


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ttrpg-bridge")
    add_admin_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@pytest.fixture
def settings(data_dir: Path) -> BridgeSettings:
    return BridgeSettings(data_dir=data_dir)


@pytest.fixture
def store(settings: BridgeSettings) -> Iterator[BridgeStore]:
    """The store the commands write to, opened to check what they did."""
    store = BridgeStore(settings.resolved_database_url)
    yield store
    store.close()


def _run(settings: BridgeSettings, *argv: str) -> int:
    return run_admin_command(_parse(*argv), settings)


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_user_add_reads_the_password_from_stdin_and_creates_the_account(
    settings: BridgeSettings,
    store: BridgeStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With --password-stdin one line is the password; the account can then log in."""
    _stdin(monkeypatch, PASSWORD + "\n")
    assert _run(settings, "user", "add", "alice", "--password-stdin", "--display-name", "Alice") == 0
    assert "created user alice (usr_" in capsys.readouterr().out
    with store.session() as db:
        user = users.authenticate(db, "alice", PASSWORD)
    assert user.display_name == "Alice"


def test_user_add_without_stdin_asks_twice_and_refuses_a_mismatch(
    settings: BridgeSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two different answers to the password prompt create nothing and exit 1."""
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda _prompt="": next(answers))
    assert _run(settings, "user", "add", "alice") == 1
    assert "do not match" in capsys.readouterr().err


def test_user_add_with_matching_prompts_creates_the_account(
    settings: BridgeSettings, store: BridgeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same password typed twice is accepted."""
    monkeypatch.setattr("getpass.getpass", lambda _prompt="": PASSWORD)
    assert _run(settings, "user", "add", "alice") == 0
    with store.session(readonly=True) as db:
        assert users.find_login(db, "alice") is not None


def test_user_add_refusals_exit_1_with_the_reason_on_stderr(
    settings: BridgeSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A taken name, a short password or a bad name: exit 1 and a readable message."""
    _stdin(monkeypatch, PASSWORD + "\n")
    assert _run(settings, "user", "add", "alice", "--password-stdin") == 0
    capsys.readouterr()
    cases = [("ALICE", PASSWORD, "is taken"), ("bob", "short", "at least 8"), ("bad name", PASSWORD, "1-64")]
    for name, password, reason in cases:
        _stdin(monkeypatch, password + "\n")
        assert _run(settings, "user", "add", name, "--password-stdin") == 1
        captured = capsys.readouterr()
        assert reason in captured.err
        assert password not in captured.err + captured.out


def test_user_list_prints_a_table(
    settings: BridgeSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Name, display name, disabled, created and last login, one line per account."""
    assert _run(settings, "user", "list") == 0
    assert "no users yet" in capsys.readouterr().out
    _stdin(monkeypatch, PASSWORD + "\n")
    _run(settings, "user", "add", "alice", "--password-stdin", "--display-name", "Alice the Bold")
    capsys.readouterr()
    assert _run(settings, "user", "list") == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["NAME", "DISPLAY", "NAME", "DISABLED", "ADMIN", "CREATED", "LAST", "LOGIN"]
    assert row.startswith("alice  Alice the Bold  no        yes  ")
    assert row.endswith("never")


def test_user_disable_disables_and_unknown_names_exit_1(
    settings: BridgeSettings,
    store: BridgeStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A disabled account can no longer log in; disabling nobody is an error."""
    _stdin(monkeypatch, PASSWORD + "\n")
    _run(settings, "user", "add", "alice", "--password-stdin")
    assert _run(settings, "user", "disable", "alice") == 0
    assert "disabled user alice" in capsys.readouterr().out
    with store.session(readonly=True) as db:
        candidate = users.find_login(db, "alice")
    assert candidate is not None
    assert candidate.disabled
    assert _run(settings, "user", "disable", "nobody") == 1
    assert "no user named 'nobody'" in capsys.readouterr().err


def test_invite_create_prints_a_code_that_registration_accepts(
    data_dir: Path, store: BridgeStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """The code alone goes to stdout (for scripts); it is good for the number of uses asked."""
    settings = BridgeSettings(data_dir=data_dir, registration="invite")
    assert _run(settings, "invite", "create", "--uses", "2", "--days", "3") == 0
    captured = capsys.readouterr()
    code = captured.out.strip()
    assert "2 registrations within 3 days" in captured.err
    assert "note:" not in captured.err
    for _ in range(2):
        with store.session() as db:
            users.consume_invite(db, code)


def test_invite_create_notes_when_registration_is_not_by_invite(
    settings: BridgeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Making an invite while registration is open works, with a hint that it is not needed."""
    assert _run(settings, "invite", "create") == 0
    assert "registration is 'open'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["invite", "create", "--uses", "0"], ["user"], ["user", "add"]])
def test_bad_arguments_are_refused_by_the_parser(argv: list[str]) -> None:
    """argparse exits with status 2 for zero uses and missing actions or names."""
    with pytest.raises(SystemExit) as caught:
        _parse(*argv)
    assert caught.value.code == 2


def test_a_namespace_without_an_admin_command_exits_2(settings: BridgeSettings) -> None:
    """run_admin_command refuses what add_admin_commands did not parse."""
    assert run_admin_command(argparse.Namespace(command="serve"), settings) == 2
