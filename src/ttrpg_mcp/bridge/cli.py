"""The ``ttrpg-bridge`` command: serve, print the protocol schema, manage users and invites."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from ttrpg_mcp import __version__
from ttrpg_mcp.bridge.admin import add_admin_commands, run_admin_command
from ttrpg_mcp.bridge.logs import configure_logging
from ttrpg_mcp.bridge.settings import BridgeSettings, load_settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ttrpg-bridge",
        description="Real-time bridge between browsers (WebSocket, SSE) and the ttrpg-mcp MCP server.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--data-dir", type=Path, help="data directory (default: $TTRPG_DATA_DIR or per-user)")
    parser.add_argument("--config", type=Path, help="TOML settings file (see docs/configuration.md)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the bridge (HTTP API, /ws, /metrics)")
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8080)")
    commands.add_parser("schema", help="print the JSON Schema of client messages")
    add_admin_commands(commands)
    return parser


def _settings(args: argparse.Namespace) -> BridgeSettings:
    return load_settings(
        args.config,
        data_dir=args.data_dir,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "schema":
        from ttrpg_mcp.bridge.protocol import json_schema  # noqa: PLC0415  # keep other commands light

        json.dump(json_schema(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    try:
        settings = _settings(args)
    except (ValidationError, FileNotFoundError, ValueError) as exc:
        print(f"ttrpg-bridge: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "serve":
        from ttrpg_mcp.bridge.serve import serve  # noqa: PLC0415  # uvicorn only when serving

        return serve(settings)
    return run_admin_command(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
