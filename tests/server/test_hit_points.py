"""The hit point rule behind update_hp, tested without a server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttrpg_mcp.server.entities import apply_hp_change


def change(
    hp: int, amount: int, kind: str, *, hp_max: int = 20, temp: int = 0, conditions: tuple[str, ...] = ()
):
    return apply_hp_change(
        hp=hp, hp_max=hp_max, hp_temp=temp, conditions=list(conditions), amount=amount, kind=kind
    )


def test_temporary_hit_points_absorb_damage_first() -> None:
    """Damage comes off temporary HP before real HP."""
    assert change(10, 7, "damage", temp=5) == (8, 0, [])


def test_dropping_to_zero_makes_a_character_unconscious_and_dying() -> None:
    """Reaching 0 HP adds unconscious and dying."""
    assert change(5, 8, "damage") == (0, 0, ["unconscious", "dying"])


def test_massive_damage_kills_outright() -> None:
    """Damage left over after 0 HP that reaches the maximum means death."""
    hp, _, conditions = change(5, 25, "damage")
    assert hp == 0
    assert conditions == ["dead"]


def test_healing_wakes_the_unconscious_and_caps_at_maximum() -> None:
    """Any healing above 0 removes unconscious and dying; HP never exceed the maximum."""
    assert change(0, 50, "healing", conditions=("unconscious", "dying", "poisoned")) == (20, 0, ["poisoned"])


def test_the_dead_are_not_healed() -> None:
    """Healing does nothing to a dead character."""
    assert change(0, 5, "healing", conditions=("dead",)) == (0, 0, ["dead"])


def test_temporary_hit_points_do_not_stack() -> None:
    """A new pool of temporary HP replaces a smaller one and never adds to it."""
    assert change(10, 3, "temp", temp=5)[1] == 5
    assert change(10, 8, "temp", temp=5)[1] == 8


@given(
    hp_max=st.integers(1, 500),
    data=st.data(),
    amount=st.integers(0, 2000),
    kind=st.sampled_from(["damage", "healing", "temp"]),
)
def test_hit_points_stay_within_zero_and_maximum(
    hp_max: int, data: st.DataObject, amount: int, kind: str
) -> None:
    """Whatever happens, 0 <= hp <= max and temporary HP are never negative."""
    hp = data.draw(st.integers(0, hp_max))
    temp = data.draw(st.integers(0, 100))
    new_hp, new_temp, conditions = change(hp, amount, kind, hp_max=hp_max, temp=temp)
    assert 0 <= new_hp <= hp_max
    assert new_temp >= 0
    assert len(conditions) == len(set(conditions))


@pytest.mark.parametrize("kind", ["damage", "healing"])
def test_zero_amount_changes_nothing(kind: str) -> None:
    """A zero change leaves a healthy character as it was."""
    assert change(12, 0, kind) == (12, 0, [])
