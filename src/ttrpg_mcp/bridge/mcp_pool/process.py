"""Operating-system side of a child: its environment, its process group, dying with the bridge.

Each child starts in its own session, hence its own process group (``start_new_session``), so
that stopping it signals the whole group: a server that forks helpers leaves none behind. On
Linux the child also asks the kernel for ``PR_SET_PDEATHSIG = SIGKILL`` in a ``preexec_fn``
between fork and exec, so it dies even when the bridge is SIGKILLed and gets no chance to clean
up. That was chosen over wrapping the command in a watchdog process because it costs no extra
process or exec per child and the kernel delivers it on every kind of parent death. Two fine
points: the signal follows the *thread* that forked, which for asyncio is the event loop's
thread (the main thread under uvicorn), and the parent may die between fork and ``prctl``, so
the hook compares ``getppid()`` with the bridge's pid afterwards and exits at once if it
changed. The hook calls only a ``prctl`` looked up at import time, so it allocates and locks
nothing that another bridge thread could hold at fork time. Elsewhere (macOS) the backstop is
the stdio contract itself: the bridge's death closes the child's stdin and a stdio MCP server
exits on end of input.

The child gets a minimal environment unless one is given: no bridge secret (signing key,
database or Redis URL with a password) must reach a server that may be third-party code.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_MESSAGE_BYTES",
    "ResourceLimits",
    "child_environment",
    "describe_exit",
    "read_line",
    "signal_group",
    "spawn",
]

# One JSON-RPC message is one line; the StreamReader default (64 KiB) is far below what a
# tool result can be (a campaign export, many search hits). Beyond this a line is dropped.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "XDG_DATA_HOME")
# TTRPG_* variables configure the server too (TTRPG_DATA_DIR), but the bridge keeps its own
# secrets under the same prefix; any name containing one of these words stays behind.
_SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "KEY", "DATABASE_URL", "REDIS_URL", "DSN")

_PR_SET_PDEATHSIG = 1


def child_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed variables of ``source`` (default: ``os.environ``) for a child."""
    source = os.environ if source is None else source
    env = {name: source[name] for name in _INHERITED if name in source}
    for name, value in source.items():
        upper = name.upper()
        if upper.startswith("TTRPG_") and not any(word in upper for word in _SECRET_WORDS):
            env[name] = value
    return env


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return None
    return prctl


_PRCTL = _load_prctl()


@dataclass(frozen=True)
class ResourceLimits:
    """What one child may use; a runaway tool fails or is replaced instead of starving the bridge."""

    memory_bytes: int
    cpu_seconds: int
    open_files: int


def _child_setup_hook(limits: ResourceLimits | None) -> Callable[[], None] | None:
    """A ``preexec_fn``: die with this process (Linux) and apply the resource limits."""
    prctl = _PRCTL
    parent_pid = os.getpid()
    if prctl is None and limits is None:  # pragma: no cover - not Linux
        return None

    def setup() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
            if os.getppid() != parent_pid:  # the bridge died before prctl took effect
                os._exit(1)
        if limits is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
            # The soft limit sends SIGXCPU (the child exits and the pool replaces it); the hard
            # limit, a little later, SIGKILL for a child that ignores it.
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
            resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))

    return setup


async def spawn(
    command: list[str], env: dict[str, str], limits: ResourceLimits | None = None
) -> asyncio.subprocess.Process:
    """Start ``command`` with piped stdio in a new process group that dies with the bridge."""
    return await asyncio.create_subprocess_exec(
        command[0],
        *command[1:],
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        limit=MAX_MESSAGE_BYTES,
        start_new_session=True,
        # Safe with threads here: see the module docstring.
        preexec_fn=_child_setup_hook(limits),
    )


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the child's process group (its pid: it leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
        os.killpg(pid, sig)


def describe_exit(returncode: int | None) -> str:
    """How a child ended, for error messages: an exit code or a signal name."""
    if returncode is None:
        return "could not be reaped"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


async def read_line(reader: asyncio.StreamReader, on_oversized: Callable[[int], Any]) -> bytes | None:
    """The next newline-terminated line, or None at end of input.

    A line longer than the reader's limit is skipped whole (``on_oversized`` is told how many
    bytes were dropped) instead of being split into fragments that would then fail to parse.
    """
    dropped = 0
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:  # end of input, maybe after a last partial line
            return exc.partial if exc.partial and not dropped else None
        except asyncio.LimitOverrunError as exc:
            # Discard what is buffered (up to the separator when it was found) and read on.
            dropped += len(await reader.readexactly(exc.consumed))
            continue
        if dropped:
            on_oversized(dropped + len(line))
            dropped = 0
            continue
        return line
