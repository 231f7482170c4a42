"""The typed system payloads (chatserver/announcements.py): pure, no sockets."""

from __future__ import annotations

import msgspec
import pytest

from chatserver.announcements import (
    PAYLOADS,
    MemberJoined,
    MemberKicked,
    MemberLeft,
    Person,
    RoomUpdated,
    departed,
    payload_of,
)
from chatserver.views import user_json
from storage.records import Message, User

ALICE = User(id="u1", name="alice", display="Alice")
BOB = User(id="u2", name="bob", display="Bob", bot=True, owner_id="u1")


def system(payload) -> Message:
    return Message(room_id="r1", seq=3, id="m3", ts=1, sender=None, kind="system", text="…",
                   system_type=payload.TYPE, system_data=msgspec.to_builtins(payload))


def test_a_person_is_the_wire_user_object():
    # If the user object gains a field (views.user_json), Person must gain it too, or system
    # messages would silently drop it.
    assert msgspec.to_builtins(Person.of(BOB)) == user_json(BOB)


def test_payloads_round_trip_through_storage_form():
    changes = {"role": {"user": Person.of(BOB), "role": "admin"}}
    for payload in (MemberJoined(user=Person.of(BOB), by=Person.of(ALICE)), MemberJoined(user=Person.of(ALICE)),
                    RoomUpdated(by=Person.of(ALICE), changes=changes)):
        data = msgspec.to_builtins(payload)
        assert msgspec.json.decode(msgspec.json.encode(data)) == data  # JSON-safe, as storage keeps it
        assert payload_of(system(payload)) == msgspec.convert(data, type(payload))
    assert "by" not in msgspec.to_builtins(MemberJoined(user=Person.of(ALICE)))  # a self-join names no one else


@pytest.mark.parametrize("payload", [MemberLeft(user=Person.of(BOB)),
                                     MemberKicked(user=Person.of(BOB), by=Person.of(ALICE))])
def test_departed_names_the_removed_member(payload):
    assert departed(system(payload)) == BOB.id


def test_other_messages_remove_no_one():
    chat = Message(room_id="r1", seq=1, id="m1", ts=1, sender=ALICE, kind="text", text="hi")
    assert departed(chat) is None and payload_of(chat) is None
    assert departed(system(MemberJoined(user=Person.of(BOB)))) is None


def test_every_documented_system_type_has_a_payload():
    documented = {"member.joined", "member.left", "member.kicked", "room.updated", "alumni.bound", "alumni.unbound",
                  "alumni.joined", "alumni.profile", "alumni.invitation", "post.published", "post.updated",
                  "post.deleted"}
    assert documented <= set(PAYLOADS)
    assert all(cls.TYPE == name for name, cls in PAYLOADS.items())
