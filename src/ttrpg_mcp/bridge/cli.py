"""The ``ttrpg-bridge`` command; the service itself lands with the bridge core."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ttrpg_mcp import __version__

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ttrpg-bridge",
        description="Real-time bridge between browsers (WebSocket, SSE) and the ttrpg-mcp server. "
        "Not implemented yet in this release: use `ttrpg-mcp` directly.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0
