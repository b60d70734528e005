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
import sys
from collections.abc import Callable

from sqlalchemy import select

from ttrpg_mcp.bridge import audit
from ttrpg_mcp.bridge.auth import api_keys
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.store import BridgeStore, User

__all__ = ["COMMANDS"]


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
    # Imported here: the content store's models load only for the commands that read it.
    from ttrpg_mcp.bridge import accounts  # noqa: PLC0415

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
    # Imported here: the content store's models load only for the commands that read it.
    from ttrpg_mcp.bridge import accounts  # noqa: PLC0415

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
    # Imported here: the content store's models load only for the commands that read it.
    from ttrpg_mcp.bridge import accounts, retention  # noqa: PLC0415

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
