"""One stdio MCP server process: handshake, id mapping, timeouts, cancellation, health, stop.

A :class:`McpChildProcess` owns one process and three tasks: the stdout reader (parses lines,
resolves replies, answers the child's own requests, hands notifications to the pool), the
stderr reader (each line logged at info with the pid, so the pipe never fills up) and, once
ready, the health watcher (pings an idle child and kills one that does not answer).

Ids, progress tokens and deadlines are kept by an :class:`InFlightTable` (see ``inflight.py``).
When a request's deadline passes, or the caller's task is cancelled, the child is sent
``notifications/cancelled`` for that id so it can stop the work (except for ``initialize``,
which the spec forbids cancelling).

Writes are whole lines, so concurrent requests never interleave, and are not drained: the
transport buffers and flushes as the pipe allows, and each caller's wait is bounded by its own
deadline, which also covers a child that stopped reading its stdin. The lines queued during one
pass of the event loop go to the pipe in one ``write()`` (one system call, one wake-up of the
child for the lot) at the end of that pass, in the order they were queued.

End of a child. End of stdout means the process is gone or going: every request still in flight
fails at once with ``mcp_child_crashed`` naming the exit code or signal (or with the error
``stop()`` was given, when the pool asked for it), the group is swept with SIGKILL, and the
pool is told through ``on_exit``. ``stop(error, grace)`` is the orderly way, the MCP stdio
shutdown sequence: fail in-flight requests with ``error``; close stdin (a stdio server exits at
end of input); after ``grace / 2`` send SIGTERM to the group; after ``grace`` SIGKILL; then reap.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import signal
from collections.abc import Callable
from typing import Any

import structlog

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.mcp_pool import jsonrpc
from ttrpg_mcp.bridge.mcp_pool.inflight import InFlightTable, PendingRequest
from ttrpg_mcp.bridge.mcp_pool.process import ResourceLimits, describe_exit, read_line, signal_group, spawn

__all__ = ["ChildState", "McpChildProcess"]

# A child that closed its stdout is exiting; one still running after this is wedged: kill it.
EXIT_AFTER_EOF_TIMEOUT = 2.0
# SIGKILL cannot be caught, but a process in uninterruptible sleep (D state) can outlive it for
# a while; bound the wait rather than hang the pool's shutdown on one.
KILL_WAIT_TIMEOUT = 5.0

_log = structlog.get_logger(__name__)

NotificationSink = Callable[["McpChildProcess", dict[str, Any], "str | None"], None]
ExitSink = Callable[["McpChildProcess"], None]


# Spawn failures that mean "the machine is out of something", not "the server is broken".
_SHORTAGE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN})


class ChildState(enum.Enum):
    """Lifecycle of a child: STARTING -> READY -> STOPPING -> EXITED (any state may crash to EXITED)."""

    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    EXITED = "exited"


class McpChildProcess:
    """A stdio MCP server child and the JSON-RPC session with it."""

    def __init__(
        self,
        command: list[str],
        env: dict[str, str],
        *,
        on_notification: NotificationSink,
        on_exit: ExitSink,
        ping_interval: float,
        ping_timeout: float,
        limits: ResourceLimits | None = None,
    ) -> None:
        self._command = command
        self._env = env
        self._limits = limits
        self._on_notification = on_notification
        self._on_exit = on_exit
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._in_flight = InFlightTable()
        self._readers: list[asyncio.Task[None]] = []
        self._health: asyncio.Task[None] | None = None
        self._exited = asyncio.Event()
        self._stop_error: BridgeError | None = None  # what stop() fails requests with
        self._exit_error: BridgeError | None = None  # what requests got when the child ended
        self._kill_reason: str | None = None
        self._last_activity = 0.0
        self._outgoing: list[bytes] = []  # lines queued for stdin until the loop's next pass
        self._log = _log
        self.state = ChildState.STARTING
        self.initialize_result: dict[str, Any] = {}
        self.exit_reason: str | None = None
        self.crashed = False
        # The process could not be created for lack of resources (fds, memory, processes): the
        # server is not at fault, so this is no crash.
        self.resource_shortage = False
        self.served = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def in_flight(self) -> int:
        return self._in_flight.load

    async def start(self, startup_timeout: float) -> None:
        """Spawn and initialize; on failure the child has exited and ``mcp_unavailable`` is raised."""
        try:
            self._process = await spawn(self._command, self._env, self._limits)
        except OSError as exc:
            self.resource_shortage = exc.errno in _SHORTAGE_ERRNOS
            self._finish_without_process(f"could not be started: {exc}")
            raise BridgeError(
                "mcp_unavailable", f"cannot start MCP server {self._command[0]!r}: {exc}"
            ) from exc
        if self.state is not ChildState.STARTING:  # stop() came while the process was being created
            signal_group(self._process.pid, signal.SIGKILL)
            await self._reap(self._process, KILL_WAIT_TIMEOUT)
            raise self._stop_error or BridgeError(
                "mcp_unavailable", "the MCP child was stopped while starting"
            )
        self._log = _log.bind(mcp_child_pid=self._process.pid)
        self._last_activity = asyncio.get_running_loop().time()
        assert self._process.stdout is not None
        assert self._process.stderr is not None
        self._readers = [
            asyncio.create_task(self._read_stdout(self._process.stdout)),
            asyncio.create_task(self._read_stderr(self._process.stderr)),
        ]
        try:
            result = await self.request(
                "initialize",
                jsonrpc.initialize_params(),
                timeout=startup_timeout,
                max_timeout=startup_timeout,
                internal=True,
            )
            version = jsonrpc.negotiated_version(result)
        except (BridgeError, jsonrpc.InvalidMessageError) as exc:
            reason = exc.message if isinstance(exc, BridgeError) else str(exc)
            if self.state is ChildState.STARTING:  # not already ended or being stopped
                self.kill(f"failed its handshake ({reason})")
            await self._wait_exited(EXIT_AFTER_EOF_TIMEOUT + KILL_WAIT_TIMEOUT)
            raise BridgeError("mcp_unavailable", f"the MCP server failed to start: {reason}") from exc
        except BaseException:  # cancelled mid-handshake: leave no process behind
            self.kill("was stopped during its handshake")
            raise
        self._write(jsonrpc.notification("notifications/initialized"))
        self.initialize_result = result
        self.state = ChildState.READY
        self._health = asyncio.create_task(self._watch_health())
        server = result.get("serverInfo")
        name = server.get("name") if isinstance(server, dict) else None
        self._log.info("mcp_child_ready", protocol_version=version, server=name)

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None,
        *,
        session_id: str | None = None,
        timeout: float,
        max_timeout: float,
        internal: bool = False,
    ) -> dict[str, Any]:
        """Send one request and return its ``result``; see the module docstring for timeouts.

        Safe to cancel: the child is told with ``notifications/cancelled``.
        """
        if self.state is not ChildState.READY and not (internal and self.state is ChildState.STARTING):
            raise (
                self._exit_error or self._stop_error or BridgeError("mcp_unavailable", "MCP child not ready")
            )
        now = asyncio.get_running_loop().time()
        pending, message = self._in_flight.open(
            method, params, session_id=session_id, internal=internal, now=now
        )
        try:
            self._write(message)
            result = await self._await_reply(pending, timeout, max_timeout)
        except asyncio.CancelledError:
            if not pending.future.done():
                self._cancel_in_child(pending, "the bridge cancelled the request")
            raise
        finally:
            self._in_flight.close(pending)
        if not internal:
            self.served += 1
        return result

    async def _await_reply(
        self, pending: PendingRequest, timeout: float, max_timeout: float
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        while (deadline := pending.deadline(timeout, max_timeout)) > loop.time():
            done, _ = await asyncio.wait({pending.future}, timeout=deadline - loop.time())
            if done:
                return pending.future.result()
        self._cancel_in_child(pending, f"no answer within {timeout:g} s")
        self._log.warning("mcp_request_timeout", method=pending.method, timeout=timeout)
        raise BridgeError(
            "mcp_timeout",
            f"{pending.method} got no answer from the MCP server within {timeout:g} s; it was cancelled",
            {"method": pending.method, "timeout": timeout},
        )

    def _cancel_in_child(self, pending: PendingRequest, reason: str) -> None:
        if pending.method != "initialize":  # the spec forbids cancelling the handshake
            self._write(jsonrpc.cancelled_notification(pending.request_id, reason))

    def _write(self, message: dict[str, Any]) -> None:
        stdin = self._process.stdin if self._process is not None else None
        if stdin is None or stdin.is_closing():
            return  # the child is gone; its in-flight requests fail from the stdout reader
        loop = asyncio.get_running_loop()
        self._last_activity = loop.time()
        if not self._outgoing:
            loop.call_soon(self._flush)
        self._outgoing.append(jsonrpc.encode(message))

    def _flush(self) -> None:
        """Write the queued lines to stdin in one call (see the module docstring)."""
        lines, self._outgoing = self._outgoing, []
        stdin = self._process.stdin if self._process is not None else None
        if lines and stdin is not None and not stdin.is_closing():
            stdin.write(b"".join(lines))

    async def _read_stdout(self, stdout: asyncio.StreamReader) -> None:
        def oversized(size: int) -> None:
            self._log.error("mcp_child_message_too_large", size=size)

        try:
            while (line := await read_line(stdout, oversized)) is not None:
                try:
                    self._handle_line(line)
                except Exception:  # a bug here must not stop the reader and strand requests
                    self._log.exception("mcp_child_message_failed")
        except (ConnectionError, OSError) as exc:
            self._log.warning("mcp_child_stdout_error", error=str(exc))
        await self._finish()

    async def _read_stderr(self, stderr: asyncio.StreamReader) -> None:
        def oversized(size: int) -> None:
            self._log.warning("mcp_child_stderr_line_dropped", size=size)

        try:
            while (line := await read_line(stderr, oversized)) is not None:
                self._log.info("mcp_child_stderr", line=line.decode(errors="replace").rstrip())
        except (ConnectionError, OSError):
            return

    def _handle_line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            message = jsonrpc.decode(line)
            kind = jsonrpc.kind_of(message)
        except jsonrpc.InvalidMessageError as exc:
            self._log.warning(
                "mcp_child_invalid_line", error=str(exc), line=line[:200].decode(errors="replace")
            )
            return
        self._last_activity = asyncio.get_running_loop().time()
        if kind is jsonrpc.MessageKind.RESPONSE:
            if not self._in_flight.resolve(message):
                self._log.debug("mcp_child_unmatched_response", request_id=message.get("id"))
        elif kind is jsonrpc.MessageKind.REQUEST:
            self._answer(message)
        elif message["method"] == "notifications/progress":
            relay = self._in_flight.progress(message, self._last_activity)
            if relay is not None:
                self._on_notification(self, relay[1], relay[0])
        else:
            self._on_notification(self, message, None)

    def _answer(self, message: dict[str, Any]) -> None:
        # The child asks the client something. The relay has no client to ask (no roots, no
        # sampling, no elicitation were declared at initialize), so only ping gets an answer.
        if message["method"] == "ping":
            self._write(jsonrpc.result_response(message["id"], {}))
        else:
            self._write(jsonrpc.error_response(message["id"], jsonrpc.METHOD_NOT_FOUND, "Method not found"))

    async def _watch_health(self) -> None:
        loop = asyncio.get_running_loop()
        while self.state is ChildState.READY:
            quiet_for = loop.time() - self._last_activity
            if self.in_flight or quiet_for < self._ping_interval:
                await asyncio.sleep(max(self._ping_interval - quiet_for, self._ping_interval / 4))
                continue
            try:
                await self.request(
                    "ping", None, timeout=self._ping_timeout, max_timeout=self._ping_timeout, internal=True
                )
            except BridgeError:
                if self.state is ChildState.READY:
                    self.kill(f"did not answer a ping within {self._ping_timeout:g} s")
                return

    def kill(self, reason: str) -> None:
        """SIGKILL the child's group now; the stdout reader reports the exit as a crash."""
        if self.state is ChildState.EXITED or self._process is None:
            return
        self._kill_reason = self._kill_reason or reason
        self._log.warning("mcp_child_killed", reason=reason)
        signal_group(self._process.pid, signal.SIGKILL)

    def fail_requests(self, error: BridgeError) -> None:
        """End every request in flight with ``error`` now; the child is told to stop the work."""
        for pending in self._in_flight.fail_all(error, internal=False):
            self._cancel_in_child(pending, error.message)

    async def stop(self, error: BridgeError, grace: float) -> None:
        """Fail in-flight requests with ``error``, then SIGTERM, ``grace`` seconds, SIGKILL, reap."""
        if self.state is ChildState.EXITED:
            return
        process = self._process
        if process is None:  # start() sees the state when the process appears, and kills it
            self.state = ChildState.STOPPING
            self._stop_error = error
            self._finish_without_process("was stopped before it started")
            return
        if self.state is not ChildState.STOPPING:
            self.state = ChildState.STOPPING
            self._stop_error = error
            self._in_flight.fail_all(error)
            if process.stdin is not None:
                self._flush()  # what was queued (a cancellation) still reaches the child
                process.stdin.close()  # a stdio server exits at end of input...
            if not await self._wait_exited(grace / 2):
                signal_group(process.pid, signal.SIGTERM)  # ...or when asked to
        if not await self._wait_exited(grace / 2):
            signal_group(process.pid, signal.SIGKILL)
            if not await self._wait_exited(KILL_WAIT_TIMEOUT):
                self._log.error("mcp_child_not_reaped")
        tasks = [*self._readers, *([self._health] if self._health is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _wait_exited(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._exited.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _finish(self) -> None:
        """End of stdout: reap, fail what is in flight, sweep the group, tell the pool."""
        process = self._process
        assert process is not None
        returncode = await self._reap(process, EXIT_AFTER_EOF_TIMEOUT)
        if returncode is None:
            signal_group(process.pid, signal.SIGKILL)
            returncode = await self._reap(process, KILL_WAIT_TIMEOUT)
        signal_group(process.pid, signal.SIGKILL)  # helpers the child left in its group
        reason = describe_exit(returncode)
        if self._kill_reason is not None:
            reason = f"{self._kill_reason} and {reason}"
        self.crashed = self.state is not ChildState.STOPPING
        self._end(reason, {"pid": process.pid, "returncode": returncode})
        # The stderr reader is at end of input once the process is reaped; let it log the rest.
        if stderr_reader := self._readers[1:]:
            await asyncio.wait(stderr_reader, timeout=EXIT_AFTER_EOF_TIMEOUT)

    @staticmethod
    async def _reap(process: asyncio.subprocess.Process, timeout: float) -> int | None:
        try:
            return await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            return None

    def _finish_without_process(self, reason: str) -> None:
        self.crashed = self.state is not ChildState.STOPPING
        self._end(reason, {})

    def _end(self, reason: str, data: dict[str, Any]) -> None:
        self.exit_reason = reason
        who = f"MCP child {self.pid}" if self.pid is not None else "MCP server"
        crash = BridgeError("mcp_child_crashed", f"{who} {reason}", data)
        self.state = ChildState.EXITED
        self._exit_error = crash if self.crashed or self._stop_error is None else self._stop_error
        self._in_flight.fail_all(self._exit_error)
        if self._health is not None and self._health is not asyncio.current_task():
            self._health.cancel()
        (self._log.warning if self.crashed else self._log.info)("mcp_child_exited", reason=reason)
        self._exited.set()
        self._on_exit(self)
