"""``ttrpg-bridge user ...`` and ``ttrpg-bridge invite ...``: account administration from a shell.

These commands work on the store directly, not through a running bridge, so they need no
token and work before the first start (they migrate the store themselves). They are safe to
run beside a live bridge on SQLite (WAL and a busy timeout let both write) or PostgreSQL.

The CLI calls :func:`add_admin_commands` while it builds its parser and
:func:`run_admin_command` once settings are loaded. Exit codes: 0 done, 1 refused (the reason
on stderr), 2 a command this module does not know. A password is read with ``getpass`` (asked
twice) or, with ``--password-stdin``, as one line of standard input for scripts; it is never
accepted as an argument, where ``ps`` and shell history would show it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from datetime import datetime

from ttrpg_mcp.bridge.auth import passwords, users
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.store import BridgeStore, User

__all__ = ["add_admin_commands", "run_admin_command"]

_DEFAULT_INVITE_DAYS = 7


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_admin_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``user add|list|disable`` and ``invite create`` on the CLI's subcommands."""
    user = subparsers.add_parser("user", help="manage accounts")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)

    add = user_commands.add_parser("add", help="create an account")
    add.add_argument("name", help="login name: 1-64 letters, digits, '_', '-' or '.'")
    add.add_argument("--display-name", help="name shown to other players (default: the login name)")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from one line of standard input"
    )
    add.set_defaults(admin_command="user add")

    user_commands.add_parser("list", help="list accounts").set_defaults(admin_command="user list")

    disable = user_commands.add_parser("disable", help="disable an account and revoke its tokens")
    disable.add_argument("name")
    disable.set_defaults(admin_command="user disable")

    invite = subparsers.add_parser("invite", help="manage registration invites")
    invite_commands = invite.add_subparsers(dest="invite_command", metavar="ACTION", required=True)
    create = invite_commands.add_parser("create", help="make an invite code (for registration = 'invite')")
    create.add_argument("--uses", type=_positive_int, default=1, help="registrations it allows (default 1)")
    create.add_argument(
        "--days",
        type=_positive_int,
        default=_DEFAULT_INVITE_DAYS,
        help=f"days it stays valid (default {_DEFAULT_INVITE_DAYS})",
    )
    create.set_defaults(admin_command="invite create")


def run_admin_command(args: argparse.Namespace, settings: BridgeSettings) -> int:
    """Run the admin command ``args`` names against the store ``settings`` point at."""
    command = _COMMANDS.get(getattr(args, "admin_command", ""))
    if command is None:
        print(f"ttrpg-bridge: not an admin command: {args}", file=sys.stderr)
        return 2
    store = BridgeStore(settings.resolved_database_url)
    try:
        store.migrate()
        command(args, settings, store)
    except BridgeError as error:
        print(f"ttrpg-bridge: {error.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    try:
        first = getpass.getpass("Password: ")
        second = getpass.getpass("Password (again): ")
    except EOFError:
        raise BridgeError("invalid_message", "no password given (use --password-stdin in scripts)") from None
    if first != second:
        raise BridgeError("invalid_message", "the passwords do not match")
    return first


def _user_add(args: argparse.Namespace, _settings: BridgeSettings, store: BridgeStore) -> None:
    users.check_name(args.name)  # before asking for a password that would be wasted
    password = _read_password(args.password_stdin)
    passwords.check_password_policy(password)
    password_hash = passwords.hash_password(password)  # before the transaction: it takes a while
    with store.session() as db:
        user = users.add_user_with_hash(db, args.name, password_hash, args.display_name)
    print(f"created user {user.name} ({user.id})")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "never"


def _user_list(_args: argparse.Namespace, _settings: BridgeSettings, store: BridgeStore) -> None:
    with store.session(readonly=True) as db:
        accounts = users.list_users(db)
    if not accounts:
        print("no users yet; add one with: ttrpg-bridge user add NAME")
        return
    header = ("NAME", "DISPLAY NAME", "DISABLED", "CREATED", "LAST LOGIN")
    rows = [header, *(_row(user) for user in accounts)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _row(user: User) -> tuple[str, str, str, str, str]:
    return (
        user.name,
        user.display_name,
        "yes" if user.disabled else "no",
        _when(user.created_at),
        _when(user.last_login_at),
    )


def _user_disable(args: argparse.Namespace, _settings: BridgeSettings, store: BridgeStore) -> None:
    with store.session() as db:
        user = users.disable_user(db, args.name)
    print(f"disabled user {user.name}; its tokens no longer work")


def _invite_create(args: argparse.Namespace, settings: BridgeSettings, store: BridgeStore) -> None:
    with store.session() as db:
        code = users.create_invite(db, uses=args.uses, ttl_seconds=args.days * 86400)
    print(code)
    plural = "s" if args.uses != 1 else ""
    print(f"valid for {args.uses} registration{plural} within {args.days} days", file=sys.stderr)
    if settings.registration != "invite":
        print(
            f"note: registration is {settings.registration!r}; invite codes are asked for only "
            "when it is 'invite'",
            file=sys.stderr,
        )


_COMMANDS: dict[str, Callable[[argparse.Namespace, BridgeSettings, BridgeStore], None]] = {
    "user add": _user_add,
    "user list": _user_list,
    "user disable": _user_disable,
    "invite create": _invite_create,
}
