"""Play sessions and the combat tracker.

A campaign has at most one running session; notes taken while it runs belong to it, which
is what ``session_recap`` reads. The initiative order lives on the session as a list of
combatants (player characters linked by ``character_id``, monsters by name alone), so
``update_hp`` can hurt a goblin that has no character sheet, and hurting a character also
updates its line in the tracker. It is the campaign's one tracker: the table's
``initiative_update`` acts on it too, with the rules of :mod:`ttrpg_mcp.server.combat`.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ttrpg_mcp import dice
from ttrpg_mcp.server import combat
from ttrpg_mcp.server.campaigns import load_campaign
from ttrpg_mcp.server.combat import CombatantSpec
from ttrpg_mcp.server.entities import apply_hp_change, update_hp
from ttrpg_mcp.server.errors import ConflictError, InvalidInputError, NotFoundError
from ttrpg_mcp.server.ids import new_id
from ttrpg_mcp.server.sessions import active_session, load_session
from ttrpg_mcp.server.store.models import Character, PlaySession, RollLogEntry, utcnow
from ttrpg_mcp.server.views import Combatant, HpChange, InitiativeView, PlaySessionView

__all__ = [
    "CombatantInput",
    "active_session",
    "damage_or_heal",
    "end_session",
    "load_session",
    "log_roll",
    "next_turn",
    "running_campaign_ids",
    "set_initiative",
    "start_session",
    "update_initiative",
]

_MAX_COMBATANTS = 100


class CombatantInput(BaseModel):
    """A combatant as a caller describes it; missing initiative is rolled (d20 + modifier)."""

    name: str = Field(default="", description="Required unless character_id is given")
    initiative: int | None = Field(default=None, description="Leave out to roll 1d20 + modifier")
    modifier: int = Field(default=0, description="Initiative bonus used when rolling")
    character_id: str | None = None
    hp: int | None = None
    max_hp: int | None = None
    armor_class: int | None = None
    hidden: bool = False


def _running(db: Session, session_id: str) -> PlaySession:
    session = load_session(db, session_id)
    if session.ended_at is not None:
        raise ConflictError(f"session {session_id!r} has ended; start_session begins a new one")
    return session


def _session_view(session: PlaySession) -> PlaySessionView:
    return PlaySessionView.model_validate(session)


def start_session(db: Session, campaign_id: str, *, title: str = "") -> PlaySessionView:
    load_campaign(db, campaign_id)
    running = active_session(db, campaign_id)
    if running is not None:
        raise ConflictError(
            f"session {running.number} ({running.id}) of this campaign is still running; end_session it first"
        )
    last = db.scalar(
        select(PlaySession.number)
        .where(PlaySession.campaign_id == campaign_id)
        .order_by(PlaySession.number.desc())
        .limit(1)
    )
    number = (last or 0) + 1
    session = PlaySession(
        id=new_id("session"),
        campaign_id=campaign_id,
        number=number,
        title=title.strip() or f"Session {number}",
        initiative=[],
        active_turn=0,
        round_number=0,
        summary="",
    )
    db.add(session)
    db.flush()
    return _session_view(session)


def end_session(db: Session, session_id: str, *, summary: str = "") -> PlaySessionView:
    session = _running(db, session_id)
    session.ended_at = utcnow()
    session.summary = summary
    db.flush()
    return _session_view(session)


def _initiative_view(session: PlaySession) -> InitiativeView:
    order = [Combatant.model_validate(entry) for entry in session.initiative]
    current = order[session.active_turn] if order else None
    return InitiativeView(
        session_id=session.id,
        campaign_id=session.campaign_id,
        round_number=session.round_number,
        active_turn=session.active_turn,
        current=current,
        order=order,
    )


def _resolve(
    db: Session, campaign_id: str, given: CombatantInput | CombatantSpec, rng: random.Random | None
) -> dict[str, Any]:
    """A combatant entry as stored: filled from its character sheet, initiative rolled if missing."""
    name = (given.name or "").strip()
    hp, max_hp, armor_class = given.hp, given.max_hp, given.armor_class
    if given.character_id:
        character = db.get(Character, given.character_id)
        if character is None or character.campaign_id != campaign_id:
            raise NotFoundError(f"character {given.character_id!r} is not part of this campaign")
        name = name or character.name
        hp = character.hp_current if hp is None else hp
        max_hp = character.hp_max if max_hp is None else max_hp
        armor_class = character.armor_class if armor_class is None else armor_class
    if not name:
        raise InvalidInputError("every combatant needs a name or a character_id")
    initiative = given.initiative
    if initiative is None:
        initiative = dice.roll(f"1d20{given.modifier:+d}", rng=rng).total
    conditions = list(getattr(given, "conditions", []) or [])
    return Combatant(
        id=getattr(given, "id", None) or given.character_id or new_id("combatant"),
        name=name,
        initiative=initiative,
        modifier=given.modifier,
        character_id=given.character_id,
        hp=hp,
        max_hp=max_hp,
        armor_class=armor_class,
        conditions=conditions,
        hidden=given.hidden,
        defeated=combat.DEFEATED in conditions,
    ).model_dump(mode="json")


def _apply(
    db: Session, session: PlaySession, op: combat.CombatOperation, entries: list[dict[str, Any]]
) -> InitiativeView:
    """Apply one operation to the session's combat and store it when something changed."""
    before = combat.Combat(list(session.initiative), session.active_turn, session.round_number)
    after = combat.apply_operation(before, op, entries)
    if after != before:
        # JSON columns are replaced, not mutated in place, so that SQLAlchemy sees the change.
        session.initiative = [dict(entry) for entry in after.order]
        session.active_turn, session.round_number = after.active_turn, after.round_number
        db.flush()
    return _initiative_view(session)


def set_initiative(
    db: Session, session_id: str, combatants: list[CombatantInput], *, rng: random.Random | None = None
) -> InitiativeView:
    """Replace the order; highest initiative first, ties in the order given. Starts round 1."""
    session = _running(db, session_id)
    if len(combatants) > _MAX_COMBATANTS:
        raise InvalidInputError(f"at most {_MAX_COMBATANTS} combatants, not {len(combatants)}")
    entries = [_resolve(db, session.campaign_id, given, rng) for given in combatants]
    return _apply(db, session, combat.SetOrder(action="set", combatants=[]), entries)


def next_turn(db: Session, session_id: str) -> InitiativeView:
    """Advance to the next combatant still standing; passing the top starts a new round."""
    session = _running(db, session_id)
    order = session.initiative
    if not order:
        raise ConflictError("no initiative order yet: set_initiative first")
    if all(combat.is_defeated(entry) for entry in order):
        raise ConflictError("every combatant is defeated; the fight is over")
    return _apply(db, session, combat.NextTurn(action="next"), [])


def update_initiative(
    db: Session, campaign_id: str, op: combat.CombatOperation, *, rng: random.Random | None = None
) -> InitiativeView:
    """One tracker operation on the campaign's running session (``set``/``add`` start one if none runs).

    The table's ``initiative_update`` arrives here through the MCP tool of the same name, so the
    table and an assistant move the same combatants.
    """
    session = active_session(db, campaign_id)
    if session is None:
        if not isinstance(op, combat.SetOrder | combat.AddCombatant):
            load_campaign(db, campaign_id)
            if isinstance(op, combat.RemoveCombatant | combat.UpdateCombatant):
                raise NotFoundError("no play session is running, so there is no initiative order")
            return InitiativeView(session_id="", round_number=1, active_turn=0, current=None, order=[])
        start_session(db, campaign_id)
        session = active_session(db, campaign_id)
        assert session is not None
    entries: list[dict[str, Any]] = []
    if isinstance(op, combat.SetOrder):
        entries = [_resolve(db, campaign_id, given, rng) for given in op.combatants]
    elif isinstance(op, combat.AddCombatant):
        entries = [_resolve(db, campaign_id, op.combatant, rng)]
    return _apply(db, session, op, entries)


def running_campaign_ids(db: Session) -> list[str]:
    """The campaigns whose play session is running (a roll without a campaign goes to the one)."""
    return list(db.scalars(select(PlaySession.campaign_id).where(PlaySession.ended_at.is_(None))))


def _running_sessions(db: Session, campaign_id: str | None = None) -> list[PlaySession]:
    query = select(PlaySession).where(PlaySession.ended_at.is_(None))
    if campaign_id:
        query = query.where(PlaySession.campaign_id == campaign_id)
    return list(db.scalars(query))


def _update_combatant(session: PlaySession, combatant_id: str, **changes: Any) -> dict[str, Any] | None:
    # JSON columns are replaced, not mutated in place, so that SQLAlchemy sees the change.
    order = [dict(entry) for entry in session.initiative]
    for entry in order:
        if entry["id"] == combatant_id:
            entry.update(changes)
            session.initiative = order
            return entry
    return None


def damage_or_heal(db: Session, target_id: str, amount: int, kind: str) -> HpChange:
    """``update_hp`` for a character sheet or for a monster in a running initiative order."""
    if target_id.startswith("char_"):
        change = update_hp(db, target_id, amount, kind)
        character = db.get(Character, target_id)
        assert character is not None
        for session in _running_sessions(db, character.campaign_id):
            _update_combatant(
                session,
                target_id,
                hp=change.hp_after,
                conditions=change.conditions,
                defeated="dead" in change.conditions,
            )
        db.flush()
        return change
    if amount < 0:
        raise InvalidInputError("amount must not be negative; choose kind 'damage' or 'healing'")
    if kind not in ("damage", "healing", "temp"):
        raise InvalidInputError(f"kind must be 'damage', 'healing' or 'temp', not {kind!r}")
    for session in _running_sessions(db):
        entry = next((e for e in session.initiative if e["id"] == target_id), None)
        if entry is None:
            continue
        if entry.get("hp") is None:
            raise InvalidInputError(f"combatant {entry['name']!r} has no hit points tracked")
        before, hp_max = int(entry["hp"]), int(entry.get("max_hp") or entry["hp"] or 1)
        old = list(entry.get("conditions", []))
        hp, _, conditions = apply_hp_change(
            hp=before, hp_max=hp_max, hp_temp=0, conditions=old, amount=amount, kind=kind
        )
        # Monsters do not make death saves: at 0 HP they are out of the fight.
        defeated = hp == 0
        if defeated:
            conditions = [c for c in conditions if c not in ("unconscious", "dying")]
            if "defeated" not in conditions:
                conditions.append("defeated")
        elif "defeated" in conditions:
            conditions.remove("defeated")
        _update_combatant(session, target_id, hp=hp, conditions=conditions, defeated=defeated)
        db.flush()
        return HpChange(
            target_id=target_id,
            name=entry["name"],
            amount=amount,
            kind=kind,
            hp_before=before,
            hp_after=hp,
            hp_max=hp_max,
            hp_temp=0,
            conditions=conditions,
            conditions_added=[c for c in conditions if c not in old],
            conditions_removed=[c for c in old if c not in conditions],
        )
    raise NotFoundError(
        f"no character or combatant with id {target_id!r} (combatant ids come from set_initiative)"
    )


ROLL_VISIBILITIES = ("public", "gm", "blind", "self")


def log_roll(
    db: Session,
    campaign_id: str | None,
    result: dict[str, Any],
    *,
    purpose: str = "",
    visibility: str = "gm",
) -> str | None:
    """Keep a tool's roll in the campaign's roll log, for the table to show; the entry's id.

    Without ``campaign_id`` the roll belongs to the campaign whose play session is running, if
    exactly one is; a roll that belongs to no campaign is not logged (None).
    """
    if visibility not in ROLL_VISIBILITIES:
        raise InvalidInputError(f"visibility is one of {list(ROLL_VISIBILITIES)}, not {visibility!r}")
    if campaign_id:
        load_campaign(db, campaign_id)
    else:
        running = _running_sessions(db)
        if len(running) != 1:
            return None
        campaign_id = running[0].campaign_id
    entry = RollLogEntry(
        id=new_id("roll"),
        campaign_id=campaign_id,
        expression=str(result.get("expression", ""))[:500],
        purpose=purpose[:200],
        visibility=visibility,
        result=result,
    )
    db.add(entry)
    db.flush()
    return entry.id
