"""A tiny stdio MCP server that misbehaves on demand, for the pool's failure-path tests.

Standard library only, one JSON-RPC message per line. Flags shape the whole process:
``--exit-at-start N`` exits with code N before reading anything (a crash loop),
``--ignore-ping`` never answers ``ping`` (a hung child), ``--ignore-eof`` keeps running after its
stdin closes (a wedged child that only a signal stops), ``--protocol-version V`` answers
``initialize`` with V, ``--record FILE`` appends every received message to FILE as a JSON line.

Tools (``tools/call`` name -> behaviour; each call runs in its own thread, so the server keeps
reading, and records cancellations, while a call is slow):
``whoami`` -> pid; ``echo`` -> the arguments; ``sleep`` {seconds}; ``progress`` {count, interval}
sends that many progress notifications for the call's token, then answers; ``big`` {size}
-> a text of that many bytes; ``garbage`` writes a non-JSON line to stdout and a line to
stderr first; ``notify`` {method, params} sends that notification; ``ask_client`` sends
``ping`` and ``roots/list`` to the client and returns its answers; ``env`` -> the environment.
``tools/list`` paginates (two pages) and counts how often it was listed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any

_write_lock = threading.Lock()
_answers: dict[str, Any] = {}
_answered = threading.Condition()
_list_calls = 0


def send(message: dict[str, Any]) -> None:
    with _write_lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def result(request_id: Any, value: dict[str, Any]) -> None:
    send({"jsonrpc": "2.0", "id": request_id, "result": value})


def ask(method: str) -> Any:
    """Send a request to the client and wait (bounded) for its answer."""
    request_id = f"srv-{method}"
    send({"jsonrpc": "2.0", "id": request_id, "method": method})
    with _answered:
        _answered.wait_for(lambda: request_id in _answers, timeout=10)
        return _answers.pop(request_id, None)


def call_tool(request_id: Any, params: dict[str, Any]) -> None:
    name = params.get("name")
    arguments = params.get("arguments") or {}
    token = (params.get("_meta") or {}).get("progressToken")
    payload: dict[str, Any]
    if name == "whoami":
        payload = {"pid": os.getpid()}
    elif name == "echo":
        payload = {"arguments": arguments}
    elif name == "sleep":
        time.sleep(float(arguments.get("seconds", 60)))
        payload = {"slept": True}
    elif name == "progress":
        for step in range(int(arguments["count"])):
            time.sleep(float(arguments["interval"]))
            send(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": {"progressToken": token, "progress": step + 1, "total": arguments["count"]},
                }
            )
        payload = {"steps": arguments["count"]}
    elif name == "big":
        payload = {"text": "x" * int(arguments["size"])}
    elif name == "garbage":
        send_raw = "this line is not json\n"
        with _write_lock:
            sys.stdout.write(send_raw)
            sys.stdout.flush()
        sys.stderr.write("fake server complains on stderr\n")
        sys.stderr.flush()
        payload = {"garbage": True}
    elif name == "notify":
        send({"jsonrpc": "2.0", "method": arguments["method"], "params": arguments.get("params", {})})
        payload = {"sent": arguments["method"]}
    elif name == "ask_client":
        payload = {"ping": ask("ping"), "roots": ask("roots/list")}
    elif name == "env":
        payload = {"env": dict(os.environ)}
    else:
        send({"jsonrpc": "2.0", "id": request_id, "error": {"code": -32602, "message": f"no tool {name}"}})
        return
    result(request_id, {"content": [], "structuredContent": payload, "isError": False})


def list_tools(request_id: Any, params: dict[str, Any]) -> None:
    global _list_calls  # noqa: PLW0603 - a counter across calls is the point
    if params.get("cursor") != "page2":
        _list_calls += 1
        tool = {"name": "whoami", "description": f"listed {_list_calls} times", "inputSchema": {}}
        result(request_id, {"tools": [tool], "nextCursor": "page2"})
    else:
        rest = ("echo", "sleep", "progress", "big", "garbage", "notify", "ask_client", "env")
        result(request_id, {"tools": [{"name": name, "inputSchema": {}} for name in rest]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exit-at-start", type=int)
    parser.add_argument("--ignore-ping", action="store_true")
    parser.add_argument("--protocol-version", default="2025-11-25")
    parser.add_argument("--ignore-eof", action="store_true")
    parser.add_argument("--record")
    args = parser.parse_args()
    if args.exit_at_start is not None:
        sys.exit(args.exit_at_start)
    sys.stderr.write(f"fake server {os.getpid()} starting\n")
    sys.stderr.flush()
    for line in sys.stdin:
        message = json.loads(line)
        if args.record:
            with open(args.record, "a", encoding="utf-8") as record:
                record.write(json.dumps(message) + "\n")
        method = message.get("method")
        request_id = message.get("id")
        params = message.get("params") or {}
        if method is None:  # an answer to one of our requests
            with _answered:
                _answers[request_id] = message
                _answered.notify_all()
        elif method == "initialize":
            result(
                request_id,
                {
                    "protocolVersion": args.protocol_version,
                    "capabilities": {"tools": {"listChanged": True}, "resources": {"subscribe": True}},
                    "serverInfo": {"name": "misbehaving", "version": "0"},
                },
            )
        elif method == "ping":
            if not args.ignore_ping:
                result(request_id, {})
        elif method == "tools/call":
            threading.Thread(target=call_tool, args=(request_id, params), daemon=True).start()
        elif method == "tools/list":
            list_tools(request_id, params)
        elif method in {"resources/subscribe", "resources/unsubscribe"}:
            result(request_id, {})
        elif method in {"resources/list", "resources/templates/list"}:
            result(request_id, {"resources": [], "resourceTemplates": []})
        elif request_id is not None:
            send(
                {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32601, "message": "Method not found"}}
            )

    if args.ignore_eof:
        time.sleep(600)


if __name__ == "__main__":
    main()
