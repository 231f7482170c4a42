"""Alumni records over HTTP and WebSocket: create, read, bind to a group, profiles, feed."""

from __future__ import annotations

import json

import pytest

from client_proto import frames

from .alumni_helpers import (
    RECORD,
    bound_class,
    create_record,
    fails,
    is_system,
    next_system,
    system_in_history,
    wait_for,
)

PRIVATE = {"real_name": "Robert Tables", "employer": "Acme", "contact": "bob@example.com"}


# ---------------------------------------------------------------------------- records


async def test_create_makes_the_creator_owner_and_first_member_with_a_joined_entry(make_account):
    alice = await make_account("alice")
    record = await create_record(alice, description="the best class")
    assert {k: record[k] for k in RECORD} == RECORD
    assert record["owner"] == alice.user and record["room"] is None and record["member_count"] == 1
    assert record["description"] == "the best class" and record["id"]
    members = await alice.api.get(f"/api/alumni/{record['id']}/members")
    assert [m["user"] for m in members["items"]] == [alice.user]
    feed = await alice.api.get(f"/api/alumni/{record['id']}/feed")
    assert [(e["type"], e["actor"]) for e in feed["items"]] == [("joined", alice.user)]
    assert feed["next"] is None


async def test_optional_fields_default_to_null(make_account):
    alice = await make_account("alice")
    record = await alice.api.post("/api/alumni", {"name": "Class", "school": "School"})
    assert (record["year"], record["class_name"], record["description"]) == (None, None, None)


async def test_any_signed_in_user_reads_a_record(make_account, api):
    alice, stranger = await make_account("alice"), await make_account("stranger")
    record = await create_record(alice)
    assert await stranger.api.get(f"/api/alumni/{record['id']}") == record
    await fails(api.get(f"/api/alumni/{record['id']}"), 401, "unauthorized")
    await fails(stranger.api.get("/api/alumni/a_missing"), 404, "not_found")
    await fails(stranger.api.get("/api/alumni/a_missing/members"), 404, "not_found")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"school": "S"}, "name"),
        ({"name": "N"}, "school"),
        ({"name": "", "school": "S"}, "name"),
        ({"name": "   ", "school": "S"}, "name"),
        ({"name": "N", "school": "S", "year": "2010"}, "year"),
        ({"name": "N", "school": "S", "year": 1200}, "year"),
        ({"name": "N" * 101, "school": "S"}, "name"),
        ({"name": "N", "school": "S", "class_name": 3}, "class_name"),
        ({"name": "N", "school": "S", "description": "d" * 2001}, "description"),
    ],
)
async def test_bad_record_fields_are_422_naming_the_field(make_account, body, field):
    alice = await make_account("alice")
    await fails(alice.api.post("/api/alumni", body), 422, "invalid", field)


async def test_a_body_that_is_not_json_is_400(make_account, server):
    alice = await make_account("alice")
    session = alice.api._http()
    async with session.post(server.url + "/api/alumni", data=b"{nope",
                            headers={"Authorization": f"Bearer {alice.token}"}) as resp:
        assert resp.status == 400
        assert json.loads(await resp.read())["error"]["code"] == "bad_frame"


# ---------------------------------------------------------------------------- binding


async def test_binding_posts_alumni_bound_live_and_in_history_and_a_bound_entry(make_account, make_room):
    alice, bob = await make_account("alice"), await make_account("bob")
    room, _ = await make_room(owner=alice, members=[bob])
    record = await create_record(alice)
    async with bob.client() as watcher:
        bound = await alice.api.put(f"/api/alumni/{record['id']}/room", {"room_id": room["id"]})
        assert bound["room"] == room["id"] and bound["id"] == record["id"]
        event = await next_system(watcher, room["id"], "alumni.bound")
    assert event.seq > 0 and event.from_ is None and event.kind == "system"
    assert event.system.data["record"] == {"id": record["id"], "name": record["name"]}
    assert event.system.data["by"] == alice.user
    [stored] = await system_in_history(bob, room["id"], "alumni.bound")
    assert stored["seq"] == event.seq
    feed = await alice.api.get(f"/api/alumni/{record['id']}/feed")
    assert feed["items"][0]["type"] == "bound" and feed["items"][0]["data"] == {"room": room["id"]}
    assert (await bob.api.get(f"/api/alumni/{record['id']}"))["room"] == room["id"]


async def test_binding_the_same_group_again_is_a_no_op(make_account, make_room):
    owner, record, room, _ = await bound_class(make_account, make_room)
    again = await owner.api.put(f"/api/alumni/{record['id']}/room", {"room_id": room["id"]})
    assert again == record
    assert len(await system_in_history(owner, room["id"], "alumni.bound")) == 1


async def test_one_group_per_record_and_one_record_per_group(make_account, make_room):
    owner, record, room, _ = await bound_class(make_account, make_room)
    other_room, _ = await make_room(owner=owner)
    other_record = await create_record(owner)
    await fails(owner.api.put(f"/api/alumni/{record['id']}/room", {"room_id": other_room["id"]}), 409, "conflict")
    await fails(owner.api.put(f"/api/alumni/{other_record['id']}/room", {"room_id": room["id"]}), 409, "conflict")


async def test_binding_needs_the_record_owner_who_owns_or_admins_the_group(make_account, make_room):
    alice, bob, carol = await make_account("alice"), await make_account("bob"), await make_account("carol")
    room, _ = await make_room(owner=alice, members=[bob, carol])
    await alice.api.put(f"/api/rooms/{room['id']}/members/{bob.id}/role", {"role": "admin"})
    bobs = await create_record(bob)
    carols = await create_record(carol)
    alices = await create_record(alice)
    # carol owns her record but is a plain member of the group
    await fails(carol.api.put(f"/api/alumni/{carols['id']}/room", {"room_id": room["id"]}), 403, "forbidden")
    # bob admins the group but does not own alice's record
    await fails(bob.api.put(f"/api/alumni/{alices['id']}/room", {"room_id": room["id"]}), 403, "forbidden")
    # bob owns his record and admins the group
    assert (await bob.api.put(f"/api/alumni/{bobs['id']}/room", {"room_id": room["id"]}))["room"] == room["id"]


async def test_binding_bad_input(make_account, make_room):
    alice = await make_account("alice")
    room, _ = await make_room(owner=alice)
    record = await create_record(alice)
    await fails(alice.api.put("/api/alumni/a_missing/room", {"room_id": room["id"]}), 404, "not_found")
    await fails(alice.api.put(f"/api/alumni/{record['id']}/room", {"room_id": "r_missing"}), 404, "not_found")
    await fails(alice.api.put(f"/api/alumni/{record['id']}/room", {}), 422, "invalid", "room_id")
    await fails(alice.api.delete(f"/api/alumni/{record['id']}/room"), 404, "not_found")


async def test_unbinding_posts_alumni_unbound_and_frees_both_sides(make_account, make_room):
    owner, record, room, (bob, _) = await bound_class(make_account, make_room)
    await fails(bob.api.delete(f"/api/alumni/{record['id']}/room"), 403, "forbidden")
    async with bob.client() as watcher:
        assert await owner.api.delete(f"/api/alumni/{record['id']}/room") is None
        event = await next_system(watcher, room["id"], "alumni.unbound")
    assert event.system.data == {"record": {"id": record["id"], "name": record["name"]}, "by": owner.user}
    assert [m["seq"] for m in await system_in_history(bob, room["id"], "alumni.unbound")] == [event.seq]
    assert (await owner.api.get(f"/api/alumni/{record['id']}"))["room"] is None
    other = await create_record(owner)
    assert (await owner.api.put(f"/api/alumni/{other['id']}/room", {"room_id": room["id"]}))["room"] == room["id"]


async def test_a_group_admin_may_unbind_a_record_they_do_not_own(make_account, make_room):
    owner, record, room, (bob, _) = await bound_class(make_account, make_room)
    await owner.api.put(f"/api/rooms/{room['id']}/members/{bob.id}/role", {"role": "admin"})
    assert await bob.api.delete(f"/api/alumni/{record['id']}/room") is None


# ---------------------------------------------------------------------------- profiles and privacy


async def _join(owner, record, account) -> None:
    """Bring `account` into the record the way the contract allows: invited, then accepting."""
    result = await owner.api.post(f"/api/alumni/{record['id']}/invitations", {"user_ids": [account.id]})
    [invitation] = result["invitations"]
    await account.api.post(f"/api/invitations/{invitation['id']}/accept")


async def test_profile_fields_are_members_only_unless_made_public(make_account, make_room):
    """A group member outside the record sees no members-only field: not in members, feed,
    system messages (live or history), or the invitation notice."""
    owner, record, room, (bob, outsider) = await bound_class(make_account, make_room)
    await _join(owner, record, bob)
    async with outsider.client() as watcher:
        profile = await bob.api.put(f"/api/alumni/{record['id']}/profile",
                                    {**PRIVATE, "city": "Oslo", "visibility": {"city": "public"}})
        assert {k: profile[k] for k in PRIVATE} == PRIVATE and profile["city"] == "Oslo"
        assert profile["visibility"]["city"] == "public" and profile["visibility"]["employer"] == "members"
        live = await next_system(watcher, room["id"], "alumni.profile")
    assert live.system.data["profile"] == {"city": "Oslo"}
    assert live.system.data["user"] == bob.user

    def leaks(value) -> list[str]:
        text = json.dumps(value)
        return [v for v in PRIVATE.values() if v in text]

    history = await outsider.api.get(f"/api/rooms/{room['id']}/messages", limit=100)
    assert leaks(history) == [] and leaks(live.system.data) == [] and PRIVATE["contact"] not in (live.text or "")
    seen_by_outsider = await outsider.api.get(f"/api/alumni/{record['id']}/members")
    bob_seen = next(m for m in seen_by_outsider["items"] if m["user"]["id"] == bob.id)
    assert bob_seen["profile"] == {"city": "Oslo"}
    assert leaks(seen_by_outsider) == []
    await fails(outsider.api.get(f"/api/alumni/{record['id']}/feed"), 403, "forbidden")
    assert leaks(await outsider.api.get(f"/api/alumni/{record['id']}")) == []
    async with outsider.client() as watcher:
        await bob.api.post(f"/api/alumni/{record['id']}/invitations", {"user_ids": [outsider.id]})
        notice, invited = await wait_for(
            watcher, lambda e: isinstance(e, frames.Notify), lambda e: is_system(e, room["id"], "alumni.invitation")
        )
    assert leaks(notice.invitation) == [] and leaks(invited.system.data) == []
    assert leaks(await outsider.api.get("/api/me/invitations")) == []
    # members see everything, and the feed itself carries only public fields
    seen_by_owner = await owner.api.get(f"/api/alumni/{record['id']}/members")
    bob_full = next(m for m in seen_by_owner["items"] if m["user"]["id"] == bob.id)
    assert {k: bob_full["profile"][k] for k in PRIVATE} == PRIVATE
    feed = await owner.api.get(f"/api/alumni/{record['id']}/feed")
    assert feed["items"][0]["type"] == "profile" and feed["items"][0]["data"] == {"profile": {"city": "Oslo"}}
    assert leaks(feed) == []


async def test_visibility_public_for_every_field_and_back(make_account, make_room):
    owner, record, room, (_, outsider) = await bound_class(make_account, make_room)
    await owner.api.put(f"/api/alumni/{record['id']}/profile", {**PRIVATE, "visibility": "public"})
    seen = (await outsider.api.get(f"/api/alumni/{record['id']}/members"))["items"][0]["profile"]
    assert seen == PRIVATE
    await owner.api.put(f"/api/alumni/{record['id']}/profile", {"visibility": "members"})
    seen = (await outsider.api.get(f"/api/alumni/{record['id']}/members"))["items"][0]["profile"]
    assert seen == {}
    public = await system_in_history(owner, room["id"], "alumni.profile")
    assert [m["system"]["data"]["profile"] for m in public] == [PRIVATE, {}]


async def test_profile_changes_merge_and_null_clears(make_account):
    alice = await make_account("alice")
    record = await create_record(alice)
    path = f"/api/alumni/{record['id']}/profile"
    await alice.api.put(path, {"city": "Oslo", "employer": "Acme", "visibility": {"city": "public"}})
    profile = await alice.api.put(path, {"employer": None, "bio": "hi", "visibility": {"bio": "public"}})
    assert (profile["city"], profile.get("employer"), profile["bio"]) == ("Oslo", None, "hi")
    assert profile["visibility"] == {"real_name": "members", "class_name": "members", "city": "public",
                                     "employer": "members", "bio": "public", "contact": "members"}
    # a PUT that changes nothing adds no feed entry
    before = await alice.api.get(f"/api/alumni/{record['id']}/feed")
    assert await alice.api.put(path, {"city": "Oslo"}) == profile
    assert await alice.api.get(f"/api/alumni/{record['id']}/feed") == before


async def test_profile_of_an_unbound_record_posts_no_message_and_needs_membership(make_account):
    alice, bob = await make_account("alice"), await make_account("bob")
    record = await create_record(alice)
    await alice.api.put(f"/api/alumni/{record['id']}/profile", {"city": "Oslo"})
    await fails(bob.api.put(f"/api/alumni/{record['id']}/profile", {"city": "Rome"}), 403, "forbidden")
    await fails(bob.api.put("/api/alumni/a_missing/profile", {"city": "Rome"}), 404, "not_found")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"city": 3}, "city"),
        ({"phone": "123"}, "phone"),
        ({"bio": "b" * 2001}, "bio"),
        ({"visibility": "friends"}, "visibility"),
        ({"visibility": {"city": "friends"}}, "city"),
        ({"visibility": {"shoe_size": "public"}}, "shoe_size"),
    ],
)
async def test_bad_profile_fields_are_422_naming_the_field(make_account, body, field):
    alice = await make_account("alice")
    record = await create_record(alice)
    await fails(alice.api.put(f"/api/alumni/{record['id']}/profile", body), 422, "invalid", field)


# ---------------------------------------------------------------------------- feed


async def test_feed_pages_newest_first_with_a_cursor(make_account):
    alice = await make_account("alice")
    record = await create_record(alice)
    for city in ("a", "b", "c", "d", "e"):
        await alice.api.put(f"/api/alumni/{record['id']}/profile", {"city": city, "visibility": "public"})
    path = f"/api/alumni/{record['id']}/feed"
    everything = (await alice.api.get(path, limit=100))["items"]
    assert len(everything) == 6 and everything[-1]["type"] == "joined"
    assert [e["data"]["profile"]["city"] for e in everything[:5]] == ["e", "d", "c", "b", "a"]
    assert all(set(e) >= {"id", "ts", "type", "actor", "data"} for e in everything)
    pages, cursor = [], None
    while True:
        page = await alice.api.get(path, limit=4, **({"before": cursor} if cursor else {}))
        pages.append(page["items"])
        cursor = page["next"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [4, 2]
    assert [e["id"] for p in pages for e in p] == [e["id"] for e in everything]


async def test_feed_bad_input(make_account):
    alice, bob = await make_account("alice"), await make_account("bob")
    record = await create_record(alice)
    path = f"/api/alumni/{record['id']}/feed"
    await fails(alice.api.get(path, limit=0), 422, "invalid", "limit")
    await fails(alice.api.get(path, limit=101), 422, "invalid", "limit")
    await fails(alice.api.get(path, before="nonsense"), 422, "invalid", "before")
    await fails(bob.api.get(path), 403, "forbidden")
    await fails(bob.api.get("/api/alumni/a_missing/feed"), 404, "not_found")


async def test_openapi_documents_the_alumni_routes(api):
    document = await api.get("/api/openapi.json")
    for path in ("/api/alumni", "/api/alumni/{record_id}/invitations", "/api/me/invitations",
                 "/api/invitations/{invitation_id}/accept", "/api/alumni/{record_id}/feed"):
        assert path in document["paths"], path
