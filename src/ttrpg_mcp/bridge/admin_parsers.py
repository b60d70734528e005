"""The admin subcommands' argument parsers, kept apart from the code that runs them.

``ttrpg-bridge --help`` and every parse build these parsers; the commands themselves
(:mod:`ttrpg_mcp.bridge.admin`, :mod:`ttrpg_mcp.bridge.account_commands`) need SQLAlchemy,
Argon2 and the MCP client, so this module imports none of them and the CLI loads those only
for the command it runs.
"""

from __future__ import annotations

import argparse
import re

from ttrpg_mcp.bridge.permissions import ROLES

__all__ = ["add_admin_commands", "parse_duration"]

_DEFAULT_INVITE_DAYS = 7
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+)([smhdw])$")


def parse_duration(text: str) -> int | None:
    """Seconds in ``30d``, ``12h``, ``90m``, ``3600s`` or ``2w``; ``None`` for ``never``."""
    if text == "never":
        return None
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (like 30d, 12h, 90m or never)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _add_user_commands(user_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``user export NAME`` and ``user delete NAME`` beside ``user add|list|disable``."""
    export = user_commands.add_parser("export", help="print everything held about an account, as JSON")
    export.add_argument("name")
    export.set_defaults(admin_command="user export")
    remove = user_commands.add_parser(
        "delete", help="delete an account; what it wrote at shared tables shows 'deleted user'"
    )
    remove.add_argument("name")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(admin_command="user delete")


def _add_account_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``apikey create|list|revoke`` and ``prune``."""
    apikey = subparsers.add_parser("apikey", help="manage API keys (for bots, scripts and agents)")
    commands = apikey.add_subparsers(dest="apikey_command", metavar="ACTION", required=True)
    create = commands.add_parser("create", help="make a key for USER; it is printed once")
    create.add_argument("user", metavar="USER", help="the login name of the key's owner")
    create.add_argument("--name", default="API key", help="a label to tell keys apart")
    create.add_argument("--campaign", metavar="ID", help="limit the key to this campaign")
    create.add_argument("--role", choices=ROLES, help="the highest role it acts with (not above USER's)")
    create.add_argument(
        "--expires",
        type=parse_duration,
        default=None,
        metavar="DURATION",
        help="e.g. 30d, 12h (default never)",
    )
    create.set_defaults(admin_command="apikey create")
    listing = commands.add_parser("list", help="list USER's keys (never the keys themselves)")
    listing.add_argument("user", metavar="USER")
    listing.set_defaults(admin_command="apikey list")
    revoke = commands.add_parser("revoke", help="revoke a key by its id (key_...)")
    revoke.add_argument("key_id", metavar="ID")
    revoke.set_defaults(admin_command="apikey revoke")
    subparsers.add_parser(
        "prune", help="apply the retention settings now (the bridge also does it daily)"
    ).set_defaults(admin_command="prune")


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
    add.add_argument(
        "--admin", action="store_true", help="make it an administrator (the first account always is one)"
    )
    add.set_defaults(admin_command="user add")

    user_commands.add_parser("list", help="list accounts").set_defaults(admin_command="user list")

    disable = user_commands.add_parser("disable", help="disable an account and revoke its tokens")
    disable.add_argument("name")
    disable.set_defaults(admin_command="user disable")
    _add_user_commands(user_commands)

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

    campaign = subparsers.add_parser("campaign", help="campaigns of the content store")
    campaign_commands = campaign.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)
    campaign_commands.add_parser(
        "unclaimed", help="list campaigns nobody on the bridge is a member of (made over stdio, say)"
    ).set_defaults(admin_command="campaign unclaimed")
    claim = campaign_commands.add_parser("claim", help="make an account the GM of an unclaimed campaign")
    claim.add_argument("campaign_id", metavar="ID", help="the campaign's id, like camp_3f9a1c0b2d4e")
    claim.add_argument("--gm", required=True, metavar="NAME", help="the login name of its new GM")
    claim.set_defaults(admin_command="campaign claim")
    _add_account_commands(subparsers)
