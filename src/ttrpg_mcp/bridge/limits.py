"""Structural limits on what a client sends, checked after decoding and before any model sees it.

A message within the byte limit can still be built to hurt: nested ten thousand levels deep,
an array of a million tiny items, one enormous string, or keys such as ``__proto__`` that
poison JavaScript objects when another user's browser merges the data. :func:`check_structure`
walks the decoded value once, iteratively (no recursion to exhaust), and refuses the first
thing over a limit with its own error code, naming where it is. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ttrpg_mcp.bridge.errors import BridgeError

__all__ = ["DANGEROUS_KEYS", "InputLimits", "check_structure"]

# Keys that pollute JavaScript prototypes when merged into objects (the spike's list).
DANGEROUS_KEYS = frozenset({"__proto__", "constructor", "prototype"})


@dataclass(frozen=True)
class InputLimits:
    """The bounds of one message; defaults suit any legitimate message of the protocol."""

    max_depth: int = 32
    max_array: int = 5_000  # a canvas stroke has at most 5,000 points
    max_string: int = 100_000  # shared notes are at most 100,000 characters
    max_keys: int = 1_000


def _where(path: list[str | int]) -> str:
    return ".".join(str(part) for part in path) or "message"


def check_structure(value: Any, limits: InputLimits) -> None:
    """Refuse a decoded message that is too deep, too long, too wide or carries dangerous keys."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        node, path = stack.pop()
        if len(path) > limits.max_depth:
            raise BridgeError(
                "message_too_deep",
                f"message nests deeper than {limits.max_depth} levels at {_where(path[: limits.max_depth])}",
                {"limit": limits.max_depth},
            )
        if isinstance(node, str):
            if len(node) > limits.max_string:
                raise BridgeError(
                    "value_too_long",
                    f"{_where(path)}: a string of {len(node)} characters exceeds {limits.max_string}",
                    {"limit": limits.max_string, "path": path},
                )
        elif isinstance(node, list):
            if len(node) > limits.max_array:
                raise BridgeError(
                    "value_too_long",
                    f"{_where(path)}: an array of {len(node)} items exceeds {limits.max_array}",
                    {"limit": limits.max_array, "path": path},
                )
            stack.extend((item, [*path, index]) for index, item in enumerate(node))
        elif isinstance(node, dict):
            if len(node) > limits.max_keys:
                raise BridgeError(
                    "value_too_long",
                    f"{_where(path)}: an object of {len(node)} keys exceeds {limits.max_keys}",
                    {"limit": limits.max_keys, "path": path},
                )
            for key, item in node.items():
                if key in DANGEROUS_KEYS:
                    raise BridgeError(
                        "dangerous_key",
                        f"{_where([*path, key])}: the key {key!r} is not allowed",
                        {"key": key, "path": path},
                    )
                stack.append((item, [*path, key]))
