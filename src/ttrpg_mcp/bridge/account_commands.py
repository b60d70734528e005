"""``ttrpg-bridge apikey ...``, ``user export|delete`` and ``prune``: accounts and data from a shell.

Like the other admin commands (``bridge/admin.py``) these work on the stores directly, with no
running bridge needed. ``apikey revoke``, ``user delete`` and ``user disable`` also write the
revocation ledger (:mod:`ttrpg_mcp.bridge.revocations`) in the same transaction, so a bridge
serving the same store closes that key's or user's live connections within a poll, as an HTTP
revoke does.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable

from sqlalchemy import select

from ttrpg_mcp.bridge import accounts, audit, retention
from ttrpg_mcp.bridge.auth import api_keys
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.permissions import ROLES
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.store import BridgeStore, User

__all__ = ["COMMANDS", "add_account_commands", "add_user_commands", "parse_duration"]

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


def add_user_commands(user_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def add_account_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _user_id(store: BridgeStore, name: str) -> str:
    with store.session(readonly=True) as db:
        user_id = db.scalar(select(User.id).where(User.name_key == name.lower()))
    if user_id is None:
        raise BridgeError("not_found", f"no user named {name!r}")
    return user_id


def _apikey_create(args: argparse.Namespace, _settings: BridgeSettings, store: BridgeStore) -> None:
    user_id = _user_id(store, args.user)
    with store.session() as db:
        row, key = api_keys.create_key(
            db, user_id, args.name, campaign_id=args.campaign, role=args.role, ttl_seconds=args.expires
        )
        audit.record(
            db,
            campaign_id=None,
            user_id=user_id,
            action="api_key_created",
            target=row.id,
            result="ok",
            detail={"prefix": row.prefix, "campaign_id": row.campaign_id, "role": row.role, "by": "cli"},
        )
        key_id = row.id
    print(key)
    limits = ", ".join(
        part
        for part in (
            f"campaign {args.campaign}" if args.campaign else "",
            f"role {args.role}" if args.role else "",
            f"expires in {args.expires} s" if args.expires else "no expiry",
        )
        if part
    )
    print(f"key {key_id} for {args.user} ({limits}); it is shown only now", file=sys.stderr)


def _apikey_list(args: argparse.Namespace, _settings: BridgeSettings, store: BridgeStore) -> None:
    user_id = _user_id(store, args.user)
    with store.session(readonly=True) as db:
        views = [api_keys.key_view(row) for row in api_keys.list_keys(db, user_id)]
    for view in views:
        state = "revoked" if view["revoked_at"] else "live"
        print(
            f"{view['id']}  {view['prefix']}...  {view['name']}  campaign={view['campaign_id'] or '*'}  "
            f"role={view['role'] or '*'}  expires={view['expires_at'] or 'never'}  "
            f"last_used={view['last_used_at'] or 'never'}  {state}"
        )


def _apikey_revoke(args: argparse.Namespace, _settings: BridgeSettings, store: BridgeStore) -> None:
    with store.session() as db:
        row = api_keys.revoke_key(db, None, args.key_id)
        audit.record(
            db,
            campaign_id=None,
            user_id=row.user_id,
            action="api_key_revoked",
            target=row.id,
            result="ok",
            detail={"prefix": row.prefix, "by": "cli"},
        )
    print(f"revoked {args.key_id}")


def _user_export(args: argparse.Namespace, settings: BridgeSettings, store: BridgeStore) -> None:
    user_id = _user_id(store, args.name)
    with store.session() as db:
        audit.record(
            db,
            campaign_id=None,
            user_id=user_id,
            action="account_exported",
            target=user_id,
            result="ok",
            detail={"by": "cli"},
        )
    content = accounts.content_database_path(settings.content_store)
    json.dump(accounts.export_everywhere(store, content, user_id), sys.stdout, indent=2)
    sys.stdout.write("\n")


def _user_delete(args: argparse.Namespace, settings: BridgeSettings, store: BridgeStore) -> None:
    user_id = _user_id(store, args.name)
    if not args.yes:
        answer = input(f"Delete the account {args.name!r} for good? Type its name to confirm: ")
        if answer.strip() != args.name:
            raise BridgeError("invalid_message", "not confirmed; nothing was deleted")
    content = accounts.content_database_path(settings.content_store)
    deletion = accounts.delete_everywhere(store, content, user_id)
    json.dump(deletion.to_dict(), sys.stdout, indent=2)
    sys.stdout.write("\n")


def _prune(_args: argparse.Namespace, settings: BridgeSettings, store: BridgeStore) -> None:
    content = accounts.content_database_path(settings.content_store)
    print(json.dumps(retention.run_pass(store, settings, content)))


COMMANDS: dict[str, Callable[[argparse.Namespace, BridgeSettings, BridgeStore], None]] = {
    "apikey create": _apikey_create,
    "apikey list": _apikey_list,
    "apikey revoke": _apikey_revoke,
    "user export": _user_export,
    "user delete": _user_delete,
    "prune": _prune,
}
