"""How to start this package's MCP server as a child process and talk to it over stdio.

The demo, the tests and the benchmarks all start the server this way, exactly as Claude
Desktop does: a child process speaking JSON-RPC on its stdin and stdout, driven by the
SDK's stdio client. The SDK passes only an allow-list of environment variables to the
child, so the data directory travels as a command-line flag; ``TTRPG_DATABASE_URL``, when
set here, is added to that allow-list, so the child opens the same PostgreSQL database.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.stdio import get_default_environment

from ttrpg_mcp.config import DATABASE_URL_ENV, database_url_from_env

__all__ = ["STARTUP_TIMEOUT", "connect", "server_parameters"]

# A fresh server migrates its database and indexes the compendium before answering.
STARTUP_TIMEOUT = 60.0


def server_parameters(data_dir: Path | str) -> StdioServerParameters:
    """How to start this package's server as a child: the same interpreter, a given data dir,
    and this process's database when it has one."""
    url = database_url_from_env()
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "ttrpg_mcp.server.cli", "--data-dir", str(data_dir), "serve"],
        env=get_default_environment() | {DATABASE_URL_ENV: url} if url else None,
    )


@asynccontextmanager
async def connect(data_dir: Path | str) -> AsyncIterator[ClientSession]:
    """An initialized client session with a new server child; the child stops on exit."""
    async with (
        stdio_client(server_parameters(data_dir)) as (read, write),
        ClientSession(read, write) as session,
    ):
        with anyio.fail_after(STARTUP_TIMEOUT):
            await session.initialize()
        yield session
