"""The ``ttrpg-mcp`` command: serve MCP over stdio (the default), import documents, or demo.

``--data-dir`` and ``--log-level`` are accepted before the subcommand and after it
(``ttrpg-mcp import FILE --data-dir DIR``); one given after the subcommand wins.

stdout belongs to the protocol when serving, so everything this command logs goes to
stderr; Claude Desktop shows that stream in its MCP log.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ttrpg_mcp import __version__
from ttrpg_mcp.config import DATA_DIR_ENV, DATABASE_URL_ENV, resolve_data_dir

__all__ = ["main"]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ttrpg-mcp",
        description="MCP server for tabletop RPG campaigns: dice, campaigns, characters, rules search.",
        epilog=f"Data lives in --data-dir, else ${DATA_DIR_ENV}, else the per-user data folder; "
        f"with ${DATABASE_URL_ENV}=postgresql://... the campaigns live in that database instead.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, data_dir=None, log_level="WARNING")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="serve MCP over stdio (the default)")
    importer = commands.add_parser("import", help="index Markdown, text or PDF files for search")
    importer.add_argument("path", type=Path, help="a file or a folder")
    importer.add_argument("--source", help="the source's short name (default: from the file or folder name)")
    importer.add_argument("--kind", help="rule, spell, monster, item or lore (default: from the document)")
    importer.add_argument("--title", default="", help="the source's display title")
    importer.add_argument(
        "--gm-only", action="store_true", help="GM material (an adventure): players never see it"
    )
    commands.add_parser("demo", help="run a short scripted session against a fresh server and print it")
    for command in dict.fromkeys(commands.choices.values()):
        # SUPPRESS: an option not given after the subcommand keeps the value given before it.
        _add_global_options(command, data_dir=argparse.SUPPRESS, log_level=argparse.SUPPRESS)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, data_dir: Any, log_level: Any) -> None:
    parser.add_argument("--data-dir", default=data_dir, help="where the campaign database lives")
    parser.add_argument(
        "--log-level", choices=_LOG_LEVELS, default=log_level, help="stderr log level (default WARNING)"
    )


def _import(
    data_dir: Path, path: Path, source: str | None, kind: str | None, title: str, *, gm_only: bool = False
) -> int:
    from ttrpg_mcp.server.app import open_database  # noqa: PLC0415  # keep --help fast
    from ttrpg_mcp.server.ingest import IngestError, load_path  # noqa: PLC0415
    from ttrpg_mcp.server.rules import import_sections  # noqa: PLC0415

    try:
        sections = load_path(path, source=source, kind=kind)
    except IngestError as error:
        print(f"ttrpg-mcp import: {error}", file=sys.stderr)
        return 2
    database = open_database(data_dir)
    try:
        with database.write() as db:
            counts = import_sections(db, sections, title=title, origin=str(path.resolve()), gm_only=gm_only)
    finally:
        database.close()
    for name, count in counts.items():
        print(f"indexed {count} sections into source {name!r}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "demo":
        from ttrpg_mcp.server.demo import run_demo  # noqa: PLC0415

        return run_demo(args.data_dir)
    data_dir = resolve_data_dir(args.data_dir)
    if args.command == "import":
        return _import(data_dir, args.path, args.source, args.kind, args.title, gm_only=args.gm_only)
    from ttrpg_mcp.server.app import build_server, open_database  # noqa: PLC0415
    from ttrpg_mcp.server.pipes import serve_stdio  # noqa: PLC0415

    database = open_database(data_dir)
    try:
        serve_stdio(build_server(database))
    finally:
        database.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
