"""``ttrpg-bridge user ...``, ``invite ...`` and ``campaign ...``: administration from a shell.

These commands work on the store directly, not through a running bridge, so they need no
token and work before the first start (they migrate the store themselves). They are safe to
run beside a live bridge on SQLite (WAL and a busy timeout let both write) or PostgreSQL.

Their parsers are in :mod:`ttrpg_mcp.bridge.admin_parsers`; the CLI calls
:func:`run_admin_command` once settings are loaded. Exit codes: 0 done, 1 refused (the reason
on stderr), 2 a command this module does not know. A password is read with ``getpass`` (asked
twice) or, with ``--password-stdin``, as one line of standard input for scripts; it is never
accepted as an argument, where ``ps`` and shell history would show it.

``campaign unclaimed`` and ``campaign claim`` read the content store the way the bridge does:
through a ``ttrpg-mcp`` child (the configured ``mcp.command``) over stdio, as its GM.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

import anyio
from sqlalchemy import select

from ttrpg_mcp.bridge import account_commands, audit, claims
from ttrpg_mcp.bridge.auth import passwords, users
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.store import BridgeStore, User
from ttrpg_mcp.server.secrecy import Viewer

__all__ = ["run_admin_command"]

# A fresh content store migrates and indexes the compendium before its first answer.
_CONTENT_TIMEOUT = 120.0


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
        user = users.add_user_with_hash(db, args.name, password_hash, args.display_name, admin=args.admin)
    print(f"created user {user.name} ({user.id}){', an administrator' if user.is_admin else ''}")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "never"


def _user_list(_args: argparse.Namespace, _settings: BridgeSettings, store: BridgeStore) -> None:
    with store.session(readonly=True) as db:
        accounts = users.list_users(db)
    if not accounts:
        print("no users yet; add one with: ttrpg-bridge user add NAME")
        return
    header = ("NAME", "DISPLAY NAME", "DISABLED", "ADMIN", "CREATED", "LAST LOGIN")
    rows = [header, *(_row(user) for user in accounts)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _row(user: User) -> tuple[str, str, str, str, str, str]:
    return (
        user.name,
        user.display_name,
        "yes" if user.disabled else "no",
        "yes" if user.is_admin else "no",
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


def _content_tool(settings: BridgeSettings, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call one tool of the content store as its GM, in a ``ttrpg-mcp`` child; its structured result."""
    # Imported here: the MCP client is the heaviest import, and only the campaign commands use it.
    from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: PLC0415
    from mcp.types import RequestParamsMeta  # noqa: PLC0415

    from ttrpg_mcp.bridge.mcp_pool.process import child_environment  # noqa: PLC0415

    command = settings.mcp_command
    environment = child_environment() | settings.mcp_environment  # the shared database, if any
    parameters = StdioServerParameters(command=command[0], args=command[1:], env=environment)

    async def call() -> dict[str, Any]:
        with anyio.fail_after(_CONTENT_TIMEOUT):
            async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                meta = cast("RequestParamsMeta", Viewer("gm").to_meta())
                result = await session.call_tool(name, arguments, meta=meta)
        if result.is_error:
            text = " ".join(getattr(block, "text", "") for block in result.content)
            raise BridgeError("not_found", text.strip() or f"{name} failed")
        return dict(result.structured_content or {})

    return anyio.run(call)


def _campaign_unclaimed(_args: argparse.Namespace, settings: BridgeSettings, store: BridgeStore) -> None:
    listed = _content_tool(settings, "list_campaigns", {"include_archived": True}).get("campaigns") or []
    with store.session(readonly=True) as db:
        found = claims.unclaimed_campaigns(db, listed)
    if not found:
        print("every campaign of the content store has members on the bridge")
    for campaign in found:
        print(f"{campaign.id}  {campaign.name}{'  (archived)' if campaign.archived else ''}")


def _campaign_claim(args: argparse.Namespace, settings: BridgeSettings, store: BridgeStore) -> None:
    with store.session(readonly=True) as db:
        gm = db.scalar(select(User).where(User.name_key == args.gm.lower()))
        if gm is None or gm.disabled:
            raise BridgeError("not_found", f"no enabled account named {args.gm!r}")
        gm_id = gm.id
    content = _content_tool(settings, "get_campaign", {"campaign_id": args.campaign_id})
    with store.session() as db:
        record = claims.claim_campaign(
            db, args.campaign_id, str(content.get("name") or args.campaign_id), gm_id
        )
        audit.record(
            db,
            campaign_id=record.id,
            user_id=gm_id,
            action="campaign_claimed",
            target=record.id,
            result="ok",
            detail={"by": "cli"},
        )
    print(f"{args.gm} is now the GM of {record.name!r} ({record.id})")


_COMMANDS: dict[str, Callable[[argparse.Namespace, BridgeSettings, BridgeStore], None]] = {
    "user add": _user_add,
    "user list": _user_list,
    "user disable": _user_disable,
    "invite create": _invite_create,
    "campaign unclaimed": _campaign_unclaimed,
    "campaign claim": _campaign_claim,
    **account_commands.COMMANDS,
}
