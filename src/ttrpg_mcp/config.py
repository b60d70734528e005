"""Where the project keeps its data, shared by both programs.

The data directory is resolved the same way everywhere so that the MCP server started by
Claude Desktop and the one pooled by the bridge find the same campaigns: an explicit
``--data-dir`` wins, then ``TTRPG_DATA_DIR``, then the per-user data folder of the platform
(``$XDG_DATA_HOME/ttrpg-mcp``, else ``~/.local/share/ttrpg-mcp``; on macOS
``~/Library/Application Support/ttrpg-mcp``; on Windows ``%APPDATA%\\ttrpg-mcp``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["DATA_DIR_ENV", "default_data_dir", "resolve_data_dir"]

DATA_DIR_ENV = "TTRPG_DATA_DIR"
_APP_DIR_NAME = "ttrpg-mcp"


def default_data_dir() -> Path:
    """The per-user folder used when nothing else is configured."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":  # pragma: no cover - exercised on macOS only
        base = Path.home() / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / _APP_DIR_NAME


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory to use, created if missing (mode 0700: it holds campaign data)."""
    if explicit is not None and str(explicit):
        path = Path(explicit)
    elif os.environ.get(DATA_DIR_ENV):
        path = Path(os.environ[DATA_DIR_ENV])
    else:
        path = default_data_dir()
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
