"""The MCP server's tools, indexed once per catalog for the checks every tool call makes.

A ``tool_call`` asks four questions of the tool list before it reaches a child: does the tool
exist, is it read-only (no dedupe record, cacheable), which arguments does it take, and do the
arguments fit its input schema. Scanning the list and building a schema validator for each of
them on every call cost more than relaying the call. :class:`ToolIndex` answers all four from
one pass over a catalog; :class:`ToolIndexCache` keeps the index for as long as the pool hands
out the same catalog object, which it does until a ``list_changed`` notification or a child
(re)start makes it fetch the lists again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

__all__ = ["ToolIndex", "ToolIndexCache"]


class ToolIndex:
    """Name, read-only hint, input schema and validator of each tool in one catalog."""

    def __init__(self, catalog: Mapping[str, list[dict[str, Any]]]) -> None:
        self._tools: dict[str, dict[str, Any]] = {}
        for tool in catalog.get("tools", []):
            name = tool.get("name")
            if isinstance(name, str):
                self._tools.setdefault(name, tool)
        self.names: list[str] = sorted(self._tools)
        self._validators: dict[str, Draft202012Validator] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def read_only(self, name: str) -> bool:
        """The server marks the tool read-only: calling it twice changes nothing."""
        annotations = self._tools.get(name, {}).get("annotations") or {}
        return bool(annotations.get("readOnlyHint"))

    def schema(self, name: str) -> dict[str, Any] | None:
        schema = self._tools.get(name, {}).get("inputSchema")
        return schema if isinstance(schema, dict) and schema else None

    def validator(self, name: str) -> Draft202012Validator | None:
        """The tool's input-schema validator, built on first use."""
        validator = self._validators.get(name)
        if validator is None and (schema := self.schema(name)) is not None:
            validator = self._validators[name] = Draft202012Validator(schema)
        return validator


class ToolIndexCache:
    """The index of the catalog seen last; rebuilt when the pool hands out another catalog."""

    def __init__(self) -> None:
        self._catalog: object | None = None
        self._index = ToolIndex({})

    def of(self, catalog: Mapping[str, list[dict[str, Any]]]) -> ToolIndex:
        if catalog is not self._catalog:
            self._index, self._catalog = ToolIndex(catalog), catalog
        return self._index
