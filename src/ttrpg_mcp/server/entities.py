"""What lives in a campaign: characters, NPCs, locations, items and notes.

Hit points follow the rules most d20 games share, so that an assistant saying "the goblin
hits Mira for 9" leaves the sheet in the state a GM would expect: temporary hit points
absorb damage first; dropping to 0 makes a character ``unconscious``; damage that leaves
0 HP and still equals the maximum is instant death (``dead``); any healing above 0 wakes
the character up; hit points never exceed the maximum.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ttrpg_mcp.server.campaigns import load_campaign
from ttrpg_mcp.server.errors import InvalidInputError, NotFoundError
from ttrpg_mcp.server.ids import new_id
from ttrpg_mcp.server.secrecy import LOCAL_GM, Viewer, check_note_visibility, redact, redact_all
from ttrpg_mcp.server.sessions import active_session, load_session
from ttrpg_mcp.server.store.models import Character, Item, Location, Note, Npc
from ttrpg_mcp.server.views import (
    CharacterView,
    EntityList,
    HpChange,
    ItemView,
    LocationView,
    NoteView,
    NpcView,
)

__all__ = [
    "ABILITIES",
    "CHARACTER_FIELDS",
    "EntityKind",
    "add_note",
    "apply_hp_change",
    "create_character",
    "create_item",
    "create_location",
    "create_npc",
    "get_character",
    "list_entities",
    "redact_view",
    "update_character",
    "update_hp",
]

ABILITIES = ("str", "dex", "con", "int", "wis", "cha")
CHARACTER_FIELDS = (
    "name",
    "owner",
    "player_name",
    "character_class",
    "level",
    "race",
    "abilities",
    "hp_current",
    "hp_max",
    "hp_temp",
    "armor_class",
    "conditions",
    "inventory",
    "notes",
    "gm_notes",
)
_MAX_LEVEL = 100
_MAX_PAGE = 200

EntityKind = Literal["characters", "npcs", "locations", "items", "notes"]
_MODELS: dict[str, tuple[type[Character | Npc | Location | Item | Note], type[Any]]] = {
    "characters": (Character, CharacterView),
    "npcs": (Npc, NpcView),
    "locations": (Location, LocationView),
    "items": (Item, ItemView),
    "notes": (Note, NoteView),
}


def _name(value: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidInputError("name must not be empty")
    return value


def _abilities(values: dict[str, Any]) -> dict[str, int]:
    """Ability scores keyed by the usual three-letter names, as integers 1..30."""
    result: dict[str, int] = {}
    for key, score in values.items():
        short = key.strip().lower()[:3]
        if short not in ABILITIES:
            raise InvalidInputError(f"unknown ability {key!r}; use one of {list(ABILITIES)}")
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 30:
            raise InvalidInputError(f"ability {short} must be a whole number from 1 to 30, not {score!r}")
        result[short] = score
    return result


def _check_character(character: Character) -> None:
    if not 1 <= character.level <= _MAX_LEVEL:
        raise InvalidInputError(f"level must be from 1 to {_MAX_LEVEL}, not {character.level}")
    if character.hp_max < 1:
        raise InvalidInputError(f"hp_max must be at least 1, not {character.hp_max}")
    if not 0 <= character.hp_current <= character.hp_max:
        raise InvalidInputError(
            f"hp_current must be from 0 to hp_max ({character.hp_max}), not {character.hp_current}"
        )
    if character.hp_temp < 0:
        raise InvalidInputError(f"hp_temp must not be negative, not {character.hp_temp}")


def _conditions(values: list[Any]) -> list[str]:
    seen: list[str] = []
    for value in values:
        condition = str(value).strip().lower()
        if condition and condition not in seen:
            seen.append(condition)
    return seen


def create_character(
    db: Session,
    campaign_id: str,
    *,
    name: str,
    owner: str = "",
    player_name: str = "",
    character_class: str = "",
    level: int = 1,
    race: str = "",
    abilities: dict[str, int] | None = None,
    hp_max: int = 10,
    hp_current: int | None = None,
    armor_class: int = 10,
    conditions: list[str] | None = None,
    inventory: list[Any] | None = None,
    notes: str = "",
    gm_notes: str = "",
) -> CharacterView:
    load_campaign(db, campaign_id)
    character = Character(
        id=new_id("character"),
        campaign_id=campaign_id,
        name=_name(name),
        owner=owner.strip(),
        player_name=player_name.strip(),
        character_class=character_class.strip(),
        level=level,
        race=race.strip(),
        abilities=_abilities(abilities or {}),
        hp_max=hp_max,
        hp_current=hp_max if hp_current is None else hp_current,
        hp_temp=0,
        armor_class=armor_class,
        conditions=_conditions(conditions or []),
        inventory=list(inventory or []),
        notes=notes,
        gm_notes=gm_notes,
    )
    _check_character(character)
    db.add(character)
    db.flush()
    return CharacterView.model_validate(character)


def _load_character(db: Session, character_id: str) -> Character:
    character = db.get(Character, character_id)
    if character is None:
        raise NotFoundError(
            f"no character with id {character_id!r} (list_items shows a campaign's characters)"
        )
    return character


def get_character(db: Session, character_id: str) -> CharacterView:
    return CharacterView.model_validate(_load_character(db, character_id))


def update_character(db: Session, character_id: str, changes: dict[str, Any]) -> CharacterView:
    character = _load_character(db, character_id)
    unknown = set(changes) - set(CHARACTER_FIELDS)
    if unknown:
        raise InvalidInputError(f"cannot change {sorted(unknown)}; editable fields: {list(CHARACTER_FIELDS)}")
    if not changes:
        raise InvalidInputError("nothing to change: pass at least one field")
    for field, given in changes.items():
        value = given
        if field == "name":
            value = _name(given)
        elif field == "abilities":
            value = {**character.abilities, **_abilities(given)}
        elif field == "conditions":
            value = _conditions(given)
        setattr(character, field, value)
    if "hp_max" in changes and "hp_current" not in changes:
        character.hp_current = min(character.hp_current, character.hp_max)
    _check_character(character)
    db.flush()
    return CharacterView.model_validate(character)


def apply_hp_change(
    *, hp: int, hp_max: int, hp_temp: int, conditions: list[str], amount: int, kind: str
) -> tuple[int, int, list[str]]:
    """The pure rule behind ``update_hp``: new (hp, temp hp, conditions)."""
    conditions = list(conditions)
    if kind == "temp":
        # Temporary hit points do not stack: the larger pool wins.
        return hp, max(hp_temp, amount), conditions
    if kind == "healing":
        if "dead" in conditions:
            return hp, hp_temp, conditions
        hp = min(hp_max, hp + amount)
        if hp > 0:
            conditions = [c for c in conditions if c not in ("unconscious", "dying", "stable")]
        return hp, hp_temp, conditions
    absorbed = min(hp_temp, amount)
    hp_temp -= absorbed
    remaining = amount - absorbed
    overflow = remaining - hp
    hp = max(0, hp - remaining)
    if hp == 0 and remaining > 0:
        if overflow >= hp_max:
            conditions = [c for c in conditions if c not in ("unconscious", "dying", "stable")]
            conditions.append("dead")
        else:
            for condition in ("unconscious", "dying"):
                if condition not in conditions:
                    conditions.append(condition)
            conditions = [c for c in conditions if c != "stable"]
    return hp, hp_temp, _conditions(conditions)


def update_hp(db: Session, character_id: str, amount: int, kind: str) -> HpChange:
    if amount < 0:
        raise InvalidInputError("amount must not be negative; choose kind 'damage' or 'healing'")
    if kind not in ("damage", "healing", "temp"):
        raise InvalidInputError(f"kind must be 'damage', 'healing' or 'temp', not {kind!r}")
    character = _load_character(db, character_id)
    before = character.hp_current
    old_conditions = _conditions(character.conditions)
    hp, temp, conditions = apply_hp_change(
        hp=before,
        hp_max=character.hp_max,
        hp_temp=character.hp_temp,
        conditions=old_conditions,
        amount=amount,
        kind=kind,
    )
    character.hp_current, character.hp_temp, character.conditions = hp, temp, conditions
    db.flush()
    return HpChange(
        target_id=character.id,
        name=character.name,
        amount=amount,
        kind=kind,
        hp_before=before,
        hp_after=hp,
        hp_max=character.hp_max,
        hp_temp=temp,
        conditions=conditions,
        conditions_added=[c for c in conditions if c not in old_conditions],
        conditions_removed=[c for c in old_conditions if c not in conditions],
    )


def create_npc(
    db: Session,
    campaign_id: str,
    *,
    name: str,
    role: str = "",
    location: str = "",
    description: str = "",
    traits: list[str] | None = None,
    motivations: list[str] | None = None,
    relationships: dict[str, str] | None = None,
    notes: str = "",
    secrets: list[str] | None = None,
) -> NpcView:
    load_campaign(db, campaign_id)
    npc = Npc(
        id=new_id("npc"),
        campaign_id=campaign_id,
        name=_name(name),
        role=role.strip(),
        location=location.strip(),
        description=description,
        traits=list(traits or []),
        motivations=list(motivations or []),
        relationships=dict(relationships or {}),
        notes=notes,
        secrets=list(secrets or []),
    )
    db.add(npc)
    db.flush()
    return NpcView.model_validate(npc)


def create_location(
    db: Session, campaign_id: str, *, name: str, region: str = "", description: str = "", notes: str = ""
) -> LocationView:
    load_campaign(db, campaign_id)
    location = Location(
        id=new_id("location"),
        campaign_id=campaign_id,
        name=_name(name),
        region=region.strip(),
        description=description,
        notes=notes,
    )
    db.add(location)
    db.flush()
    return LocationView.model_validate(location)


def create_item(
    db: Session,
    campaign_id: str,
    *,
    name: str,
    category: str = "",
    description: str = "",
    properties: dict[str, Any] | None = None,
    holder: str = "",
    quantity: int = 1,
    gm_notes: str = "",
) -> ItemView:
    load_campaign(db, campaign_id)
    if quantity < 0:
        raise InvalidInputError(f"quantity must not be negative, not {quantity}")
    if holder:
        _check_holder(db, campaign_id, holder)
    item = Item(
        id=new_id("item"),
        campaign_id=campaign_id,
        name=_name(name),
        category=category.strip(),
        description=description,
        properties=dict(properties or {}),
        holder=holder,
        quantity=quantity,
        gm_notes=gm_notes,
    )
    db.add(item)
    db.flush()
    return ItemView.model_validate(item)


def _check_holder(db: Session, campaign_id: str, holder: str) -> None:
    found = (db.get(Character, holder), db.get(Npc, holder), db.get(Location, holder))
    if any(row is not None and row.campaign_id == campaign_id for row in found):
        return
    raise NotFoundError(f"holder {holder!r} is not a character, NPC or location of campaign {campaign_id!r}")


def add_note(
    db: Session,
    campaign_id: str,
    *,
    body: str,
    title: str = "",
    tags: list[str] | None = None,
    session_id: str | None = None,
    visibility: str = "gm",
    author: str = "",
) -> NoteView:
    """A new note; ``visibility`` is "gm", "players" or one player's user id (see ``secrecy``)."""
    load_campaign(db, campaign_id)
    if not body.strip():
        raise InvalidInputError("a note needs a body")
    if session_id:
        if load_session(db, session_id).campaign_id != campaign_id:
            raise NotFoundError(f"session {session_id!r} is not part of campaign {campaign_id!r}")
    else:
        # A note taken during a session belongs to it, so that the recap finds it.
        current = active_session(db, campaign_id)
        session_id = current.id if current else None
    note = Note(
        id=new_id("note"),
        campaign_id=campaign_id,
        session_id=session_id,
        title=title.strip(),
        body=body,
        tags=[t.strip().lower() for t in tags or [] if t.strip()],
        visibility=_visibility(visibility),
        author=author,
    )
    db.add(note)
    db.flush()
    return NoteView.model_validate(note)


def _visibility(value: str) -> str:
    try:
        return check_note_visibility(value)
    except ValueError as error:
        raise InvalidInputError(str(error)) from None


def list_entities(
    db: Session,
    campaign_id: str,
    kind: EntityKind,
    *,
    name_contains: str = "",
    location: str = "",
    owner: str = "",
    holder: str = "",
    tag: str = "",
    limit: int = 50,
    offset: int = 0,
    viewer: Viewer = LOCAL_GM,
) -> EntityList:
    """One page of what ``viewer`` may see of a campaign's entities; filters that do not apply
    to ``kind`` are errors. A note the viewer may not read is not counted in ``total`` either."""
    load_campaign(db, campaign_id)
    if kind not in _MODELS:
        raise InvalidInputError(f"kind must be one of {list(_MODELS)}, not {kind!r}")
    if not 1 <= limit <= _MAX_PAGE:
        raise InvalidInputError(f"limit must be from 1 to {_MAX_PAGE}, not {limit}")
    if offset < 0:
        raise InvalidInputError(f"offset must not be negative, not {offset}")
    model, view = _MODELS[kind]
    query = select(model).where(model.campaign_id == campaign_id)
    filters = {"location": location, "owner": owner, "holder": holder, "tag": tag}
    applicable = {
        "characters": {"owner"},
        "npcs": {"location"},
        "locations": set(),
        "items": {"holder"},
        "notes": {"tag"},
    }[kind]
    for name, value in filters.items():
        if value and name not in applicable:
            raise InvalidInputError(f"filter {name!r} does not apply to {kind}")
    if name_contains:
        needle = f"%{name_contains.strip()}%"
        if model is Note:
            query = query.where(or_(Note.title.ilike(needle), Note.body.ilike(needle)))
        else:
            query = query.where(model.name.ilike(needle))  # type: ignore[union-attr]
    if location:
        query = query.where(Npc.location.ilike(f"%{location}%"))
    if owner:
        query = query.where(Character.owner == owner)
    if holder:
        query = query.where(Item.holder == holder)
    rows = list(db.scalars(query))
    if tag:
        rows = [row for row in rows if isinstance(row, Note) and tag.lower() in row.tags]
    order_key = "created_at" if model is Note else "name"
    rows.sort(key=lambda row: getattr(row, order_key))
    # Redacted before paging, so that hidden notes leave neither a gap nor a count behind.
    visible = redact_all(kind, (view.model_validate(row).model_dump(mode="json") for row in rows), viewer)
    return EntityList(kind=kind, total=len(visible), items=visible[offset : offset + limit])


_V = TypeVar("_V", CharacterView, NpcView, LocationView, ItemView)


def redact_view(kind: str, view: _V, viewer: Viewer) -> _V:
    """A view as ``viewer`` may see it (the entity kinds whose views always exist for everyone)."""
    seen = redact(kind, view.model_dump(mode="json"), viewer)
    assert seen is not None  # only notes can be invisible as a whole
    return type(view).model_validate(seen)
