"""Where the project keeps its data, shared by both programs.

The data directory is resolved the same way everywhere so that the MCP server started by
Claude Desktop and the one pooled by the bridge find the same campaigns: an explicit
``--data-dir`` wins, then ``TTRPG_DATA_DIR``, then the per-user data folder of the platform
(``$XDG_DATA_HOME/ttrpg-mcp``, else ``~/.local/share/ttrpg-mcp``; on macOS
``~/Library/Application Support/ttrpg-mcp``; on Windows ``%APPDATA%\\ttrpg-mcp``).

The database is resolved alike: ``TTRPG_DATABASE_URL`` (a PostgreSQL server shared by several
bridge nodes and by every ``ttrpg-mcp`` process) puts both stores in that database; without it
each store is a SQLite file in the data directory. ``postgresql://`` URLs are read as psycopg 3
(``postgresql+psycopg://``), the driver this package ships with.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = [
    "CONTENT_DB_NAME",
    "DATABASE_URL_ENV",
    "DATA_DIR_ENV",
    "content_location",
    "database_url_from_env",
    "default_data_dir",
    "normalize_database_url",
    "resolve_data_dir",
]

DATA_DIR_ENV = "TTRPG_DATA_DIR"
DATABASE_URL_ENV = "TTRPG_DATABASE_URL"
CONTENT_DB_NAME = "content.db"
# SQLAlchemy reads a bare postgresql:// as psycopg2, which is not installed; these schemes mean
# PostgreSQL through psycopg 3.
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
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


def normalize_database_url(url: str) -> str:
    """``url`` with a bare ``postgresql://`` (or ``postgres://``) scheme mapped to psycopg 3."""
    for scheme in _POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def database_url_from_env() -> str | None:
    """``TTRPG_DATABASE_URL`` (normalised), or None when the stores live in the data directory."""
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    return normalize_database_url(url) if url else None


def content_location(data_dir: Path, url: str | None = None) -> Path | str:
    """Where the MCP content store is: a PostgreSQL URL (``url``, else ``TTRPG_DATABASE_URL``),
    else ``content.db`` in ``data_dir``. A SQLite URL names the bridge's own file only."""
    # Imported here: both command lines load this module, and most of their commands need no SQLAlchemy.
    from sqlalchemy import make_url  # noqa: PLC0415

    url = normalize_database_url(url) if url else database_url_from_env()
    if url and make_url(url).get_backend_name() != "sqlite":
        return url
    return data_dir / CONTENT_DB_NAME
