"""A shared frame is the message it stands for, byte for byte as JSON."""

from __future__ import annotations

import itertools
import json

from ttrpg_mcp.bridge import frames


def test_a_shared_frame_encodes_to_the_same_json_as_its_dict() -> None:
    body = {"type": "dice_roll", "data": {"total": 17, "name": "Mïra"}, "seq": 4, "scope": "campaign"}
    frame = frames.shared_frame(body, frames.encode_body(body), message_id="m1", session_id="ses_1")
    assert json.loads(frames.encode(frame)) == {"id": "m1", "session_id": "ses_1", **body}
    assert frame == {"id": "m1", "session_id": "ses_1", **body}


def test_a_changed_frame_is_encoded_whole() -> None:
    body = {"type": "dice_roll", "seq": 4}
    frame = frames.shared_frame(body, frames.encode_body(body), message_id="m1", session_id="ses_1")
    frame["duplicate"] = True
    assert json.loads(frames.encode(frame))["duplicate"] is True


def test_a_plain_message_is_encoded_compactly() -> None:
    assert frames.encode({"type": "ack", "ok": True}) == '{"type":"ack","ok":true}'


def test_viewers_of_one_class_get_the_same_rendering() -> None:
    from itertools import product

    from ttrpg_mcp.bridge.rooms import seen_alike, view_class
    from ttrpg_mcp.bridge.visibility import Viewer, render_event

    viewers = [Viewer("u_gm", "gm"), Viewer("u_roller", "player"), Viewer("u_other", "player")]
    viewers.append(Viewer("u_watch", "spectator"))
    events = [
        ("dice_roll", {"roll_id": "r", "player_id": "u_roller", "visibility": v, "total": 9})
        for v in ("public", "gm", "blind", "self")
    ]
    events += [
        ("state_update", {"path": ["shared_notes"], "value": "hi"}),
        ("presence_update", {"user_id": "u_other", "status": "away"}),
    ]
    for (kind, data), (a, b) in product(events, product(viewers, viewers)):
        if view_class(kind, data, a) == view_class(kind, data, b):
            assert render_event(kind, data, a) == render_event(kind, data, b), (kind, data, a, b)
        if seen_alike(kind, data):  # rendered once for everyone
            assert view_class(kind, data, a) == view_class(kind, data, b), (kind, data, a, b)
            assert render_event(kind, data, a) == render_event(kind, data, b), (kind, data, a, b)
    assert seen_alike(*events[0])  # a public roll
    assert not any(seen_alike(kind, data) for kind, data in events[1:5])  # hidden rolls, state


def test_a_seat_id_that_needs_escaping_is_still_valid_json() -> None:
    body = {"type": "dice_roll", "seq": 4}
    for session_id in ('ses_"quoted"', "ses_\\back", "ses_\u00e9", "ses_\n"):
        frame = frames.shared_frame(body, frames.encode_body(body), message_id="m1", session_id=session_id)
        assert json.loads(frames.encode(frame)) == {"id": "m1", "session_id": session_id, **body}


def test_the_seats_of_one_event_get_distinct_ids_unlike_any_plain_id() -> None:
    from ttrpg_mcp.bridge.protocol import new_message_id

    first, second = new_message_id(), new_message_id()
    ids = [seat_id for base in (first, second) for seat_id in itertools.islice(frames.seat_ids(base), 300)]
    assert len(set(ids)) == len(ids) == 600
    assert not {first, second} & set(ids)
    assert all(len(seat_id) <= 128 for seat_id in ids)
