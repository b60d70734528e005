"""Tool arguments checked against a tool's input schema, with refusals that read as sentences.

``create_character {"class": "Wizard"}`` must not create a wizard-less character in silence:
an argument the tool does not take is refused, naming it, the arguments the tool accepts and
the closest of them ("unknown argument 'class'; did you mean 'character_class'?"). Both
programs use this: the MCP server (so that Claude Desktop gets the same answer) and the bridge
(which refuses before a child is asked). It lives below both, as pure logic over a JSON Schema:
no I/O, no pydantic, no SDK.

:func:`sentence` turns one validation problem (a location and a message, from pydantic or
jsonschema) into a line a person can act on, without library internals or links.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["UnknownArguments", "accepted_arguments", "closest", "find_unknown", "sentence"]

# difflib's similarity from which a name counts as a likely typo of another.
_SIMILAR = 0.6
# pydantic appends "[type=..., input_value=..., input_type=...]" and a documentation link.
_PYDANTIC_TAIL = re.compile(r"\s*\[type=.*$|\s*For further information visit \S+", re.DOTALL)


@dataclass(frozen=True)
class UnknownArguments:
    """Arguments a tool does not take, and what it does take."""

    tool: str
    unknown: tuple[str, ...]
    accepted: tuple[str, ...]
    suggestions: Mapping[str, str]

    @property
    def message(self) -> str:
        """One sentence per unknown argument, then the accepted ones."""
        parts = []
        for name in self.unknown:
            hint = self.suggestions.get(name)
            parts.append(f"unknown argument {name!r}" + (f"; did you mean {hint!r}?" if hint else ""))
        accepted = ", ".join(self.accepted) if self.accepted else "no arguments"
        return f"{'; '.join(parts)} ({self.tool} accepts: {accepted})"

    def to_data(self) -> dict[str, Any]:
        """The refusal as structured data, for an error's ``data``."""
        return {
            "tool": self.tool,
            "unknown": list(self.unknown),
            "accepted": list(self.accepted),
            "suggestions": dict(self.suggestions),
        }


def accepted_arguments(schema: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The argument names an object schema lists, or None when it takes any (no ``properties``
    and ``additionalProperties`` not false)."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return () if schema.get("additionalProperties") is False else None
    if schema.get("additionalProperties") not in (None, False):
        return None  # the tool says it takes more than it lists
    return tuple(str(name) for name in properties)


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``name`` most likely meant.

    In this order: the same name in another case; the first candidate (in the schema's order,
    which puts the main arguments first) with ``name`` as one of its ``_``-separated words
    (``class`` -> ``character_class``); the nearest spelling; the shortest one containing it.
    """
    options = list(candidates)
    folded = name.lower().replace("-", "_")
    for option in options:
        if option.lower() == folded:
            return option
    words = set(folded.split("_"))
    for option in options:
        if words & set(option.split("_")) == words or set(option.split("_")) <= words:
            return option
    matches = difflib.get_close_matches(folded, options, n=1, cutoff=_SIMILAR)
    if matches:
        return matches[0]
    containing = [option for option in options if len(folded) >= 3 and (folded in option or option in folded)]
    return min(containing, key=len) if containing else None


def find_unknown(
    tool: str, arguments: Mapping[str, Any], schema: Mapping[str, Any]
) -> UnknownArguments | None:
    """The arguments ``schema`` does not list, or None when every one is known."""
    properties = schema.get("properties")
    if isinstance(properties, Mapping) and all(name in properties for name in arguments):
        return None  # the usual case, checked on every call: nothing unknown, nothing to build
    accepted = accepted_arguments(schema)
    if accepted is None:
        return None
    unknown = tuple(name for name in arguments if name not in accepted)
    if not unknown:
        return None
    suggestions = {name: hint for name in unknown if (hint := closest(name, accepted)) is not None}
    return UnknownArguments(tool, unknown, accepted, suggestions)


def sentence(tool: str, location: Sequence[Any], message: str) -> str:
    """``tool: where: what``, with the library's type tags and documentation links cut off."""
    where = ".".join(str(part) for part in location) or "arguments"
    text = _PYDANTIC_TAIL.sub("", message).strip().rstrip(".")
    if text:
        text = text[0].lower() + text[1:] if not text[:2].isupper() else text
    return f"{tool}: {where}: {text}"
