"""Invitations into alumni records: who may invite whom, notify frames, one system message per
batch, accept / decline, expiry, the hourly quota, and bots inviting for their owner."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from chatserver import keys
from storage.db import now_ms
from storage.models import Invitation as InvitationRow

from client_proto import frames

from .alumni_helpers import (
    bound_class,
    create_record,
    fails,
    is_system,
    next_notify,
    next_system,
    system_in_history,
    wait_for,
)


def invite_path(record) -> str:
    return f"/api/alumni/{record['id']}/invitations"


async def test_without_user_ids_every_group_member_not_in_the_record_is_invited(make_account, make_room):
    owner, record, room, (bob, carol, dave) = await bound_class(make_account, make_room, members=3)
    first = await owner.api.post(invite_path(record), {"user_ids": [carol.id]})
    assert [i["invitee"] for i in first["invitations"]] == [carol.user]
    result = await owner.api.post(invite_path(record), {"note": "join us"})
    assert sorted(i["invitee"]["id"] for i in result["invitations"]) == sorted([bob.id, dave.id])
    assert all(i["status"] == "pending" and i["id"] for i in result["invitations"])
    assert result["skipped"] == [{"user_id": carol.id, "reason": "pending"}]
    again = await owner.api.post(invite_path(record))  # no body at all: the same as {}
    assert again["invitations"] == []
    assert sorted((s["user_id"], s["reason"]) for s in again["skipped"]) == sorted(
        [(bob.id, "pending"), (carol.id, "pending"), (dave.id, "pending")]
    )


async def test_each_invitee_is_notified_on_every_connection_and_the_group_gets_one_message(
    make_account, make_room
):
    owner, record, room, (bob, carol) = await bound_class(make_account, make_room)
    async with bob.client() as bob_one, bob.client() as bob_two, carol.client() as carol_ws:
        result = await owner.api.post(invite_path(record), {"note": "hello class"})
        notices = [await next_notify(c) for c in (bob_one, bob_two)]
        notice, message = await wait_for(
            carol_ws, lambda e: isinstance(e, frames.Notify), lambda e: is_system(e, room["id"], "alumni.invitation")
        )
        notices.append(notice)
    for notice, who in zip(notices, (bob, bob, carol)):
        assert notice.type == "invitation"
        invitation = notice.invitation
        assert invitation["invitee"] == who.user and invitation["inviter"] == owner.user
        assert invitation["record"]["id"] == record["id"] and invitation["status"] == "pending"
        assert invitation["note"] == "hello class" and isinstance(invitation["created"], int)
        assert invitation["id"] in {i["id"] for i in result["invitations"]}
    data = message.system.data
    assert data["inviter"] == owner.user and data["record"]["id"] == record["id"]
    assert sorted(u["id"] for u in data["invitees"]) == sorted([bob.id, carol.id])
    stored = await system_in_history(owner, room["id"], "alumni.invitation")
    assert [m["seq"] for m in stored] == [message.seq]


async def test_explicit_user_ids_invite_anyone_and_skip_only_members_and_pending(make_account, make_room):
    """docs/protocol.md §12.7: a record member may invite any existing user, classmates found by search
    included; the only skip reasons are `pending`, `member` (and `blocked`)."""
    owner, record, room, (bob,) = await bound_class(make_account, make_room, members=1)
    friend, stranger = await make_account("friend"), await make_account("stranger")
    await make_room(owner=owner, members=[friend], name="another group")  # owner shares this one with friend
    await owner.api.post(invite_path(record), {"user_ids": [bob.id]})
    result = await owner.api.post(
        invite_path(record), {"user_ids": [owner.id, bob.id, friend.id, stranger.id, friend.id]}
    )
    # `stranger` shares no group with the owner and is invited all the same.
    assert [i["invitee"]["id"] for i in result["invitations"]] == [friend.id, stranger.id]
    assert result["skipped"] == [
        {"user_id": owner.id, "reason": "member"},
        {"user_id": bob.id, "reason": "pending"},
    ]
    (invitation,) = (await stranger.api.get("/api/me/invitations"))["items"]
    assert invitation["record"]["id"] == record["id"] and invitation["inviter"]["id"] == owner.id


async def test_unbound_record_invites_only_named_people(make_account, make_room):
    alice, bob = await make_account("alice"), await make_account("bob")
    await make_room(owner=alice, members=[bob])
    record = await create_record(alice)
    await fails(alice.api.post(invite_path(record), {}), 422, "invalid", "user_ids")
    result = await alice.api.post(invite_path(record), {"user_ids": [bob.id]})
    assert [i["invitee"]["id"] for i in result["invitations"]] == [bob.id]


async def test_who_may_invite_and_bad_input(make_account, make_room):
    owner, record, room, (bob,) = await bound_class(make_account, make_room, members=1)
    await fails(bob.api.post(invite_path(record), {}), 403, "forbidden")
    await fails(owner.api.post("/api/alumni/a_missing/invitations", {}), 404, "not_found")
    await fails(owner.api.post(invite_path(record), {"user_ids": ["u_missing"]}), 404, "not_found")
    await fails(owner.api.post(invite_path(record), {"user_ids": "all"}), 422, "invalid", "user_ids")
    await fails(owner.api.post(invite_path(record), {"note": "n" * 1001}), 422, "invalid", "note")
    assert await bob.api.get("/api/me/invitations") == {"items": []}  # nothing half-done


async def test_a_bot_owned_by_a_record_member_invites_but_not_a_strangers_bot(make_account, make_room):
    owner, record, room, (bob,) = await bound_class(make_account, make_room, members=1)
    bot = await owner.api.post("/api/bots", {"name": f"inviter_{owner.user['name'][-6:]}"})
    bot_api = owner.api.as_user(bot["token"])
    await owner.api.add_member(room["id"], bot["user"]["id"])
    result = await bot_api.post(invite_path(record), {})
    assert [i["invitee"]["id"] for i in result["invitations"]] == [bob.id]  # not the bot itself
    [invitation] = (await bob.api.get("/api/me/invitations"))["items"]
    assert invitation["inviter"]["id"] == bot["user"]["id"] and invitation["inviter"]["bot"] is True
    other_bot = await bob.api.post("/api/bots", {"name": f"nosy_{bob.user['name'][-6:]}"})
    await fails(bob.api.as_user(other_bot["token"]).post(invite_path(record), {}), 403, "forbidden")


async def test_accept_joins_the_record_with_feed_entry_and_alumni_joined(make_account, make_room):
    owner, record, room, (bob, carol) = await bound_class(make_account, make_room)
    result = await owner.api.post(invite_path(record), {"user_ids": [bob.id]})
    [invitation] = result["invitations"]
    await fails(carol.api.post(f"/api/invitations/{invitation['id']}/accept"), 403, "forbidden")
    await fails(bob.api.post("/api/invitations/i_missing/accept"), 404, "not_found")
    async with carol.client() as watcher:
        joined = await bob.api.post(f"/api/invitations/{invitation['id']}/accept")
        event = await next_system(watcher, room["id"], "alumni.joined")
    assert joined["id"] == record["id"] and joined["member_count"] == 2
    assert event.system.data["user"] == bob.user and event.system.data["record"]["id"] == record["id"]
    assert [m["seq"] for m in await system_in_history(carol, room["id"], "alumni.joined")] == [event.seq]
    members = await bob.api.get(f"/api/alumni/{record['id']}/members")
    assert [m["user"]["id"] for m in members["items"]] == [owner.id, bob.id]
    feed = await bob.api.get(f"/api/alumni/{record['id']}/feed")
    assert (feed["items"][0]["type"], feed["items"][0]["actor"]) == ("joined", bob.user)
    [mine] = (await bob.api.get("/api/me/invitations", status="accepted"))["items"]
    assert mine["status"] == "accepted"
    await fails(bob.api.post(f"/api/invitations/{invitation['id']}/accept"), 409, "conflict")
    await fails(bob.api.post(f"/api/invitations/{invitation['id']}/decline"), 409, "conflict")
    again = await owner.api.post(invite_path(record), {"user_ids": [bob.id]})
    assert again["skipped"] == [{"user_id": bob.id, "reason": "member"}]


async def test_decline_and_list_by_status(make_account, make_room):
    owner, record, room, (bob,) = await bound_class(make_account, make_room, members=1)
    [invitation] = (await owner.api.post(invite_path(record), {}))["invitations"]
    [pending] = (await bob.api.get("/api/me/invitations", status="pending"))["items"]
    assert pending["id"] == invitation["id"] and pending["record"]["name"] == record["name"]
    declined = await bob.api.post(f"/api/invitations/{invitation['id']}/decline")
    assert declined["status"] == "declined" and declined["id"] == invitation["id"]
    assert (await bob.api.get("/api/me/invitations", status="pending"))["items"] == []
    assert [i["status"] for i in (await bob.api.get("/api/me/invitations"))["items"]] == ["declined"]
    await fails(bob.api.post(f"/api/invitations/{invitation['id']}/decline"), 409, "conflict")
    await fails(bob.api.get("/api/me/invitations", status="maybe"), 422, "invalid", "status")
    assert not (await bob.api.get(f"/api/alumni/{record['id']}/members"))["items"][1:]
    # declined, so a new invitation may be sent
    assert len((await owner.api.post(invite_path(record), {}))["invitations"]) == 1


async def _age(server, invitation_id: str, seconds: int) -> None:
    """Make an invitation `seconds` older than it is, straight in storage."""
    async with server.app[keys.DB].transaction() as conn:
        await conn.execute(
            update(InvitationRow).where(InvitationRow.id == invitation_id)
            .values(created=InvitationRow.created - seconds * 1000)
        )


async def test_an_invitation_past_its_lifetime_is_410_and_expired(make_account, make_room, server):
    owner, record, room, (bob, carol) = await bound_class(make_account, make_room)
    made = (await owner.api.post(invite_path(record), {}))["invitations"]
    by_invitee = {i["invitee"]["id"]: i["id"] for i in made}
    ttl = server.settings.invite_ttl
    await _age(server, by_invitee[bob.id], ttl + 1)
    await _age(server, by_invitee[carol.id], ttl + 1)
    await fails(bob.api.post(f"/api/invitations/{by_invitee[bob.id]}/accept"), 410, "gone")
    await fails(bob.api.post(f"/api/invitations/{by_invitee[bob.id]}/accept"), 410, "gone")
    await fails(carol.api.post(f"/api/invitations/{by_invitee[carol.id]}/decline"), 410, "gone")
    assert [i["status"] for i in (await bob.api.get("/api/me/invitations"))["items"]] == ["expired"]
    assert (await bob.api.get("/api/me/invitations", status="pending"))["items"] == []
    # an expired invitation no longer blocks a new one
    fresh = await owner.api.post(invite_path(record), {"user_ids": [bob.id]})
    assert len(fresh["invitations"]) == 1


async def test_an_invitation_just_inside_its_lifetime_can_be_accepted(make_account, make_room, server):
    owner, record, room, (bob,) = await bound_class(make_account, make_room, members=1)
    [invitation] = (await owner.api.post(invite_path(record), {}))["invitations"]
    await _age(server, invitation["id"], server.settings.invite_ttl - 60)
    assert (await bob.api.post(f"/api/invitations/{invitation['id']}/accept"))["member_count"] == 2


@pytest.mark.parametrize("settings_overrides", [{"invite_quota": 3}])
async def test_the_hourly_quota_answers_429_with_retry_after_and_invites_nobody(make_account, make_room):
    owner, record, room, mates = await bound_class(make_account, make_room, members=5)
    first = await owner.api.post(invite_path(record), {"user_ids": [mates[0].id, mates[1].id]})
    assert len(first["invitations"]) == 2
    error = await fails(owner.api.post(invite_path(record), {"user_ids": [m.id for m in mates[2:]]}), 429,
                        "rate_limited")
    assert error.retry_after is not None and 3000 <= error.retry_after <= 3600
    for mate in mates[2:]:
        assert (await mate.api.get("/api/me/invitations"))["items"] == []
    # skipped people cost nothing; one more fits
    fits = await owner.api.post(invite_path(record), {"user_ids": [mates[0].id, mates[2].id]})
    assert [i["invitee"]["id"] for i in fits["invitations"]] == [mates[2].id]
    await fails(owner.api.post(invite_path(record), {"user_ids": [mates[3].id]}), 429, "rate_limited")
    # the quota is per inviter
    await mates[0].api.post(f"/api/invitations/{first['invitations'][0]['id']}/accept")
    other = await mates[0].api.post(invite_path(record), {"user_ids": [mates[3].id]})
    assert len(other["invitations"]) == 1


async def test_concurrent_batches_never_make_two_pending_invitations(make_account, make_room):
    owner, record, room, mates = await bound_class(make_account, make_room, members=4)
    results = await asyncio.gather(
        *(owner.api.post(invite_path(record), {}) for _ in range(4)), return_exceptions=True
    )
    made = [i["invitee"]["id"] for r in results if isinstance(r, dict) for i in r["invitations"]]
    assert sorted(made) == sorted(m.id for m in mates)
    for mate in mates:
        assert len((await mate.api.get("/api/me/invitations"))["items"]) == 1
    assert len(await system_in_history(owner, room["id"], "alumni.invitation")) == 1


async def test_notify_never_reaches_others(make_account, make_room):
    owner, record, room, (bob, carol) = await bound_class(make_account, make_room)
    async with carol.client() as carol_ws:
        await owner.api.post(invite_path(record), {"user_ids": [bob.id]})
        await next_system(carol_ws, room["id"], "alumni.invitation")
        with pytest.raises(TimeoutError):
            await next_notify(carol_ws, timeout=0.3)


async def test_expiry_needs_time_not_a_clock_tick(make_account, make_room):
    """Sanity of the test helper: a fresh invitation is not expired by listing it."""
    owner, record, room, (bob,) = await bound_class(make_account, make_room, members=1)
    await owner.api.post(invite_path(record), {})
    [invitation] = (await bob.api.get("/api/me/invitations"))["items"]
    assert invitation["status"] == "pending" and invitation["created"] <= now_ms()
