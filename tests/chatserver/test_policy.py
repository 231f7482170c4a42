"""chatserver.policy: who may send, followed from the room's system messages (no I/O)."""

from chatserver.announcements import (
    MemberJoined, MemberKicked, MemberLeft, MemberMuted, MemberUnmuted, Person, PostDeleted, PostRef, RoomUpdated,
)
from chatserver.policy import RoomPolicy
from storage.records import RoomPolicyState

OWNER, ADMIN, BOB = (Person(id=i, name=i, display=i) for i in ("owner", "admin", "bob"))
NOW = 1_000_000


def policy(**state) -> RoomPolicy:
    return RoomPolicy(RoomPolicyState(**{"muted": False, "admins": frozenset({"owner"}), "mutes": {}, **state}))


def test_a_mute_refuses_with_the_time_left_until_it_ends():
    room = policy(mutes={"bob": NOW + 5000})
    refusal = room.refusal("bob", NOW)
    assert (refusal.code, refusal.retry_after) == ("forbidden", 5000)
    assert room.refusal("bob", NOW + 5000) is None  # over: forgotten
    assert room.mutes == {}
    assert room.refusal("owner", NOW) is None


def test_mute_and_unmute_follow_the_messages():
    room = policy()
    room.apply(MemberMuted(user=BOB, by=OWNER, until=NOW + 60_000))
    assert room.refusal("bob", NOW).retry_after == 60_000
    room.apply(MemberLeft(user=BOB))
    room.apply(MemberJoined(user=BOB))
    assert room.refusal("bob", NOW) is not None  # a mute outlives leaving and rejoining
    room.apply(MemberUnmuted(user=BOB, by=OWNER))
    assert room.refusal("bob", NOW) is None


def test_mute_all_spares_the_owner_and_admins_as_roles_change():
    room = policy()
    room.apply(RoomUpdated(by=OWNER, changes={"muted": True}))
    assert room.refusal("bob", NOW).retry_after is None
    assert room.refusal("owner", NOW) is None
    role = {"user": {"id": "admin", "name": "admin", "display": "admin", "bot": False}, "role": "admin"}
    room.apply(RoomUpdated(by=OWNER, changes={"role": role}))
    assert room.refusal("admin", NOW) is None
    room.apply(MemberKicked(user=ADMIN, by=OWNER))
    assert room.refusal("admin", NOW) is not None  # back as a plain member
    handed = {"user": {"id": "bob", "name": "bob", "display": "bob", "bot": False}, "role": "owner"}
    room.apply(RoomUpdated(by=OWNER, changes={"role": handed}))
    assert room.refusal("bob", NOW) is None and room.refusal("owner", NOW) is None  # the old owner is an admin
    room.apply(RoomUpdated(by=OWNER, changes={"muted": False, "name": "x"}))
    assert room.refusal("admin", NOW) is None


def test_other_messages_change_nothing():
    room = policy(muted=True)
    room.apply(PostDeleted(post=PostRef(id="p", title="t", author=BOB)))
    room.apply(None)
    room.apply(RoomUpdated(by=OWNER, changes={"topic": "t"}))
    assert room.muted is True and room.admins == {"owner"}
