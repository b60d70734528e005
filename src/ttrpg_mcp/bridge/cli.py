"""The ``ttrpg-bridge`` command: serve, print the protocol schema, manage users and invites.

``--data-dir`` and ``--config`` are accepted before the subcommand and after it
(``ttrpg-bridge serve --data-dir DIR``), at every level; one given after the subcommand wins.

Building the parser imports nothing heavy (no pydantic, SQLAlchemy, MCP or web framework):
each command imports what it runs, so ``--help`` and the small admin commands start quickly.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttrpg_mcp import __version__
from ttrpg_mcp.bridge.admin_parsers import add_admin_commands

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.settings import BridgeSettings

__all__ = ["main", "subcommand_parsers"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ttrpg-bridge",
        description="Real-time bridge between browsers (WebSocket, SSE) and the ttrpg-mcp MCP server.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, default=None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the bridge (HTTP API, /ws, /metrics)")
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8080)")
    schema = commands.add_parser("schema", help="print a JSON Schema (client messages by default)")
    schema.add_argument(
        "--messages",
        choices=("client", "server", "http"),
        default="client",
        help="client or server messages, or the HTTP API's bodies (default: client)",
    )
    add_admin_commands(commands)
    for command in subcommand_parsers(parser):
        # SUPPRESS: an option not given after the subcommand keeps the value given before it.
        _add_global_options(command, default=argparse.SUPPRESS)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, default: Any) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default,
        help="data directory (default: $TTRPG_DATA_DIR or per-user)",
    )
    parser.add_argument(
        "--config", type=Path, default=default, help="TOML settings file (see docs/configuration.md)"
    )


def subcommand_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subcommand's parser below ``parser``, nested ones (``user add``) included."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:  # argparse offers no public walk of subparsers
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found.append(child)
                found.extend(subcommand_parsers(child))
    return found


def _settings(args: argparse.Namespace) -> BridgeSettings:
    from ttrpg_mcp.bridge.settings import load_settings  # noqa: PLC0415  # pydantic: not for --help

    return load_settings(
        args.config,
        data_dir=args.data_dir,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
    )


def _schema(messages: str) -> dict[str, Any]:
    # Imported here: the other commands stay light.
    if messages == "server":
        from ttrpg_mcp.bridge.server_messages import server_json_schema  # noqa: PLC0415

        return server_json_schema()
    if messages == "http":
        from ttrpg_mcp.bridge.http.schema import http_json_schema  # noqa: PLC0415

        return http_json_schema()
    from ttrpg_mcp.bridge.protocol import json_schema  # noqa: PLC0415

    return json_schema()


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "schema":
        json.dump(_schema(args.messages), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    # Imported here: the commands below need them, --help and schema do not.
    from pydantic import ValidationError  # noqa: PLC0415

    from ttrpg_mcp.bridge.logs import configure_logging  # noqa: PLC0415

    try:
        settings = _settings(args)
    except (ValidationError, FileNotFoundError, ValueError) as exc:
        print(f"ttrpg-bridge: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "serve":
        from ttrpg_mcp.bridge.serve import serve  # noqa: PLC0415  # uvicorn only when serving

        return serve(settings)
    from ttrpg_mcp.bridge.admin import run_admin_command  # noqa: PLC0415  # the store, only for admin

    return run_admin_command(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
