"""Short, typed, random ids: ``camp_3f9a1c0b2d4e``.

The prefix tells a reader (and a language model) what an id points at, which catches the
common mistake of passing a character id where a campaign id belongs; 48 random bits are
plenty for the rows of one table-top group's data.
"""

from __future__ import annotations

import secrets

__all__ = ["PREFIXES", "new_id"]

PREFIXES = {
    "campaign": "camp",
    "character": "char",
    "npc": "npc",
    "location": "loc",
    "item": "item",
    "note": "note",
    "session": "sess",
    "combatant": "cbt",
    "roll": "roll",
}


def new_id(kind: str) -> str:
    return f"{PREFIXES[kind]}_{secrets.token_hex(6)}"
