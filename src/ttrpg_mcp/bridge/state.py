"""The versioned shared table state: one JSON document per campaign, changed one path at a time.

The document holds what everyone at the table writes together: ``shared_notes``, and
``custom``, a free-form object for table extensions. ``version`` and ``last_update`` ride along
read-only; recent dice rolls are not stored here but in the dice log, and the snapshot a client
receives adds the rolls that client may see. The initiative is not shared state: the table's
tracker is the content store's combat (:mod:`ttrpg_mcp.server.combat`), which a snapshot adds
as ``initiative_order``, ``active_turn`` and ``round_number`` (masked per viewer), and the table
turns a ``state_update`` of those keys into a combat operation or refuses it.

A change names a ``path`` into the document and an ``operation``:

* ``set`` puts ``value`` at the path (on a list, an index equal to its length appends);
* ``merge`` shallow-merges a JSON object into the object at the path;
* ``delete`` removes the path; a top-level key, or a field the schema always has (a
  combatant's ``hp``), goes back to its default instead.

:func:`apply_change` applies it all or nothing: the whole document is validated against its
schema after the change, and a change that would leave it invalid changes nothing. Every
accepted change bumps ``version`` by one and returns a :class:`StateChange`, which is what the
bridge broadcasts as ``state_update``. The change carries what was *applied*, which can differ
from what was asked: a delete the schema refills (a top-level key) is reported as a ``set`` of
the default, so a client that applies each change as reported stays identical to the server.

Concurrency (ARCHITECTURE decision 6): a change may carry ``previous_version``, the version its
author last saw. If changes were accepted since, and one of them touched a path that overlaps
this one (either is a prefix of the other), the change is refused with ``conflict`` and the
current version. Removing or appending a list element counts as touching the whole list,
because it moves (or claims) indexes. :class:`SharedState` remembers the paths of the last
:data:`HISTORY_LIMIT` changes; a ``previous_version`` older than that is a conflict too, since
nothing proves it safe. ``previous_version=None`` is unconditional. Everything here is the
same for every viewer: nothing in the document is secret.

This module is pure: no I/O, no clock unless ``now`` is left out.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
)

from ttrpg_mcp.bridge.errors import BridgeError

__all__ = [
    "HISTORY_LIMIT",
    "MAX_CUSTOM_BYTES",
    "MAX_CUSTOM_DEPTH",
    "MAX_NOTES_LENGTH",
    "MAX_PATH_DEPTH",
    "OPERATIONS",
    "READ_ONLY_KEYS",
    "WRITABLE_KEYS",
    "Operation",
    "Path",
    "SharedState",
    "StateChange",
    "apply_change",
    "validate_document",
]

Path = tuple[str | int, ...]
Operation = Literal["set", "merge", "delete"]
OPERATIONS: tuple[Operation, ...] = get_args(Operation)

# Changes whose paths are remembered for conflict checks. A client more than this many changes
# behind gets a conflict and re-reads; at human editing speed that is minutes of table activity.
HISTORY_LIMIT = 500
MAX_NOTES_LENGTH = 100_000
# The serialized size of ``custom``: room for a table's extensions, not for a file store.
MAX_CUSTOM_BYTES = 64 * 1024
MAX_CUSTOM_DEPTH = 32
MAX_PATH_DEPTH = MAX_CUSTOM_DEPTH + 1
WRITABLE_KEYS: tuple[str, ...] = ("shared_notes", "custom")
READ_ONLY_KEYS: tuple[str, ...] = ("version", "last_update", "dice_rolls")


def _json_depth_within(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return True


class _Document(BaseModel):
    """The schema of the shared document (without ``version`` and ``last_update``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    shared_notes: str = Field(default="", max_length=MAX_NOTES_LENGTH)
    custom: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("custom", mode="before")
    @classmethod
    def _bounded_custom(cls, custom: Any) -> Any:
        # Before pydantic walks it: a deeply nested value should be refused, not recursed into.
        if not _json_depth_within(custom, MAX_CUSTOM_DEPTH):
            raise ValueError(f"custom is nested more than {MAX_CUSTOM_DEPTH} levels deep")
        return custom

    @field_validator("custom")
    @classmethod
    def _small_custom(cls, custom: dict[str, JsonValue]) -> dict[str, JsonValue]:
        try:
            size = len(json.dumps(custom, allow_nan=False, separators=(",", ":")).encode())
        except ValueError:
            raise ValueError("custom holds a number JSON cannot carry (NaN or infinity)") from None
        if size > MAX_CUSTOM_BYTES:
            raise ValueError(f"custom is {size} bytes serialized; the limit is {MAX_CUSTOM_BYTES}")
        return custom


_DEFAULTS: dict[str, Callable[[], Any]] = {
    "shared_notes": str,
    "custom": dict,
}


def validate_document(document: dict[str, Any], *, path: Sequence[str | int] = ()) -> dict[str, Any]:
    """The document with defaults filled in, or ``invalid_params`` naming what is wrong."""
    try:
        model = _Document.model_validate(document)
    except ValidationError as error:
        problems = [
            {"loc": list(problem["loc"]), "msg": problem["msg"], "type": problem["type"]}
            for problem in error.errors(include_url=False, include_input=False)
        ]
        first = problems[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise BridgeError(
            "invalid_params",
            f"the change to {list(path)} would make the shared state invalid: {where}: {first['msg']}",
            {"path": list(path), "errors": problems},
        ) from None
    return model.model_dump(mode="json")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _aware_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware one")
    return now


@dataclass
class SharedState:
    """One campaign's shared document, its version, and the paths of its recent changes."""

    campaign_id: str
    document: dict[str, Any]
    version: int
    last_update: datetime
    # (version, path) of the last HISTORY_LIMIT accepted changes, oldest first.
    history: list[tuple[int, Path]] = field(default_factory=list)

    @classmethod
    def new(cls, campaign_id: str, *, now: datetime | None = None) -> SharedState:
        """An empty table: no notes, nothing custom, version 0."""
        return cls(campaign_id, validate_document({}), 0, _aware_now(now), [])

    def snapshot(self) -> dict[str, Any]:
        """The document with ``version`` and ``last_update`` (ISO 8601)."""
        document = copy.deepcopy(self.document)
        return {**document, "version": self.version, "last_update": _iso(self.last_update)}

    def to_json(self) -> dict[str, Any]:
        """Everything needed to rebuild this state, as JSON values (for the store)."""
        return {
            "document": copy.deepcopy(self.document),
            "version": self.version,
            "last_update": _iso(self.last_update),
            "history": [[version, list(path)] for version, path in self.history],
        }

    @classmethod
    def from_json(cls, campaign_id: str, data: dict[str, Any]) -> SharedState:
        """The inverse of :meth:`to_json`; keys added to the schema since are filled with defaults.

        Keys it dropped since are left behind: documents stored before the initiative moved to
        the content store still hold ``initiative_order``, ``active_turn`` and ``round_number``.
        """
        last_update = data["last_update"]
        if isinstance(last_update, str):
            last_update = datetime.fromisoformat(last_update)
        return cls(
            campaign_id=campaign_id,
            document=validate_document(
                {key: value for key, value in (data.get("document") or {}).items() if key in WRITABLE_KEYS}
            ),
            version=int(data["version"]),
            last_update=_aware_now(last_update),
            history=[(int(version), tuple(path)) for version, path in data.get("history") or []],
        )


@dataclass(frozen=True)
class StateChange:
    """One accepted change, as applied: what ``state_update`` broadcasts, the same to every viewer."""

    path: Path
    operation: Operation
    value: Any
    version: int
    previous_version: int | None
    last_update: datetime

    def view(self) -> dict[str, Any]:
        """The ``state_update`` data."""
        return {
            "path": list(self.path),
            "operation": self.operation,
            "value": copy.deepcopy(self.value),
            "version": self.version,
            "previous_version": self.previous_version,
            "last_update": _iso(self.last_update),
        }


def _bad_path(path: Sequence[str | int], why: str) -> BridgeError:
    return BridgeError("invalid_params", f"bad path {list(path)}: {why}", {"path": list(path)})


def _check_path(path: Sequence[str | int]) -> Path:
    checked = tuple(path)
    if not checked:
        raise _bad_path(checked, "a path names at least the top-level key")
    if len(checked) > MAX_PATH_DEPTH:
        raise _bad_path(checked, f"a path is at most {MAX_PATH_DEPTH} steps long")
    for step in checked:
        # bool is an int to Python, but true is no list index.
        if isinstance(step, bool) or not isinstance(step, str | int):
            raise _bad_path(checked, "each step is an object key (string) or a list index (integer)")
    key = checked[0]
    if key in READ_ONLY_KEYS:
        raise _bad_path(checked, f"{key!r} is read-only")
    if key not in WRITABLE_KEYS:
        raise _bad_path(checked, f"the writable keys are {', '.join(WRITABLE_KEYS)}")
    return checked


def _overlaps(a: Path, b: Path) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def _check_previous_version(state: SharedState, path: Path, previous_version: int | None) -> None:
    if previous_version is None:
        return
    if isinstance(previous_version, bool) or not 0 <= previous_version <= state.version:
        raise BridgeError(
            "invalid_params",
            f"previous_version {previous_version} is not a version this state has had "
            f"(it is at {state.version})",
            {"path": list(path), "current_version": state.version},
        )
    if previous_version == state.version:
        return
    oldest = state.history[0][0] if state.history else None
    if oldest is None or oldest > previous_version + 1:
        raise BridgeError(
            "conflict",
            f"version {previous_version} is too old to merge a change to {list(path)} into; "
            "reload the state and retry",
            {"current_version": state.version, "path": list(path)},
        )
    for version, changed in reversed(state.history):
        if version <= previous_version:
            break
        if _overlaps(changed, path):
            raise BridgeError(
                "conflict",
                f"{list(changed)} changed in version {version}, after version {previous_version} "
                f"that this change to {list(path)} was based on",
                {"current_version": state.version, "path": list(path), "changed_path": list(changed)},
            )


def _child(node: Any, step: str | int) -> tuple[bool, Any]:
    """(True, the member or element) if ``node`` has one named ``step``, else (False, None)."""
    if isinstance(node, dict) and isinstance(step, str) and step in node:
        return True, node[step]
    if isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
        return True, node[step]
    return False, None


def _container(document: dict[str, Any], path: Path) -> Any:
    """The object or list at ``path[:-1]``, which must exist."""
    node: Any = document
    for depth, step in enumerate(path[:-1]):
        found, node = _child(node, step)
        if not found:
            raise _bad_path(path, f"nothing at {list(path[: depth + 1])}")
    return node


def _at(document: dict[str, Any], path: Path) -> tuple[bool, Any]:
    node: Any = document
    for step in path:
        found, node = _child(node, step)
        if not found:
            return False, None
    return True, node


def _apply(document: dict[str, Any], path: Path, operation: Operation, value: Any) -> Path:
    """Apply in place; returns the path the change counts as touching for conflict checks."""
    if operation == "merge" and not isinstance(value, dict):
        raise _bad_path(path, "merge takes a JSON object as its value")
    parent = _container(document, path)
    last = path[-1]
    if len(path) == 1:
        assert isinstance(last, str)
        if operation == "set":
            parent[last] = value
        elif operation == "delete":
            parent[last] = _DEFAULTS[last]()
        elif not isinstance(parent[last], dict):
            raise _bad_path(path, f"merge needs an object there, and {last!r} is not one")
        else:
            parent[last] = {**parent[last], **value}
        return path
    if isinstance(parent, dict):
        if not isinstance(last, str):
            raise _bad_path(path, "an object's member is named by a string")
        if operation == "set":
            parent[last] = value
        elif last not in parent:
            raise _bad_path(path, "nothing there")
        elif operation == "delete":
            del parent[last]
        elif not isinstance(parent[last], dict):
            raise _bad_path(path, "merge needs an object there")
        else:
            parent[last] = {**parent[last], **value}
        return path
    if isinstance(parent, list):
        if not isinstance(last, int):
            raise _bad_path(path, "a list's element is named by an integer index")
        if operation == "set" and last == len(parent):
            parent.append(value)
            return path[:-1]  # claims an index another appender may also be aiming at
        if not 0 <= last < len(parent):
            raise _bad_path(path, f"index {last} is out of range (the list has {len(parent)} elements)")
        if operation == "set":
            parent[last] = value
            return path
        if operation == "delete":
            del parent[last]
            return path[:-1]  # shifts every later index
        if not isinstance(parent[last], dict):
            raise _bad_path(path, "merge needs an object there")
        parent[last] = {**parent[last], **value}
        return path
    raise _bad_path(path, "a number, string, boolean or null has no members")


def apply_change(
    state: SharedState,
    path: Sequence[str | int],
    operation: Operation,
    value: Any,
    previous_version: int | None,
    *,
    now: datetime | None = None,
) -> StateChange:
    """Apply one change to ``state`` (all of it or none) and return it as applied.

    Raises ``invalid_params`` for a bad path, operation, value or ``previous_version`` and
    ``conflict`` for a stale one that overlaps a change made since; ``state`` is untouched then.
    """
    checked = _check_path(path)
    if operation not in OPERATIONS:
        raise BridgeError(
            "invalid_params",
            f"unknown operation {operation!r} for {list(checked)}; use set, merge or delete",
            {"path": list(checked)},
        )
    _check_previous_version(state, checked, previous_version)
    moment = _aware_now(now)
    key = cast("str", checked[0])
    # Copy only the branch that changes; the others are shared, then replaced by validation.
    candidate = {**state.document, key: copy.deepcopy(state.document[key])}
    touched = _apply(candidate, checked, operation, copy.deepcopy(value))
    document = validate_document(candidate, path=checked)

    applied_operation: Operation = operation
    found, applied = _at(document, checked)
    if operation == "delete":
        # A delete the schema refilled (a top-level key) is a set of the default.
        # A list element's index is never "refilled": the next element moved into it.
        refilled = found and touched == checked
        applied_operation = "set" if refilled else "delete"
        applied = applied if refilled else None
    elif operation == "merge":
        applied = {name: applied[name] for name in value if name in applied}

    state.document = document
    state.version += 1
    state.last_update = moment
    state.history.append((state.version, touched))
    del state.history[:-HISTORY_LIMIT]
    return StateChange(
        path=checked,
        operation=applied_operation,
        value=applied,
        version=state.version,
        previous_version=previous_version,
        last_update=moment,
    )
