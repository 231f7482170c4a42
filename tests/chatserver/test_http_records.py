"""Managing alumni records (docs/protocol.md §12.13): owner edit and delete, leave and removal, join
requests with the owner's approval, and invitations skipping people who blocked the inviter."""

from __future__ import annotations

from tests.chatserver.alumni_helpers import (
    bound_class,
    create_record,
    fails,
    next_notify,
    next_system,
    system_in_history,
)


async def test_owner_edits_and_others_may_not(make_account, http):
    owner, mate = await make_account(), await make_account()
    record = await create_record(owner)
    changed = await owner.api.patch(f"/api/alumni/{record['id']}", {"name": "三年二班", "year": None})
    assert changed == {**record, "name": "三年二班", "year": None}
    assert await mate.api.get(f"/api/alumni/{record['id']}") == changed
    found = await http("GET", "/api/alumni?q=三年", token=mate.token)
    assert [r["id"] for r in found.body["items"]] == [record["id"]]
    await fails(mate.api.patch(f"/api/alumni/{record['id']}", {"name": "mine"}), 403, "forbidden")
    await fails(owner.api.patch(f"/api/alumni/{record['id']}", {"name": ""}), 422, "invalid", "name")
    await fails(owner.api.patch(f"/api/alumni/{record['id']}", {"owner": "x"}), 422, "invalid")
    await fails(owner.api.patch("/api/alumni/nope", {"name": "x"}), 404, "not_found")


async def test_owner_deletes_the_group_is_unbound_and_posts_stay(make_account, make_room):
    owner, record, room, (mate, _) = await bound_class(make_account, make_room)
    post = await owner.api.post("/api/posts", {"title": "hello", "body": "class news", "alumni_ids": [record["id"]]})
    await fails(mate.api.delete(f"/api/alumni/{record['id']}"), 403, "forbidden")
    async with mate.client() as client:
        await owner.api.delete(f"/api/alumni/{record['id']}")
        event = await next_system(client, room["id"], "alumni.unbound")
    assert event.system.data["record"] == {"id": record["id"], "name": record["name"]}
    await fails(owner.api.get(f"/api/alumni/{record['id']}"), 404, "not_found")
    space = await mate.api.get(f"/api/users/{owner.id}/space")
    assert [p["id"] for p in space["posts"]] == [post["id"]]
    assert space["alumni"] == []


async def test_leave_and_removal(make_account, make_room):
    owner, record, room, (bob, carol) = await bound_class(make_account, make_room)
    path = f"/api/alumni/{record['id']}/members"
    for mate in (bob, carol):
        request = await mate.api.post(f"/api/alumni/{record['id']}/requests", {})
        await owner.api.post(f"/api/record-requests/{request['id']}/approve")
    await fails(owner.api.delete(f"{path}/{owner.id}"), 409, "conflict")
    await fails(bob.api.delete(f"{path}/{carol.id}"), 403, "forbidden")
    assert await bob.api.delete(f"{path}/{bob.id}") is None  # leave: 204
    assert await owner.api.delete(f"{path}/{carol.id}") is None  # removed by the owner: 204
    members = await owner.api.get(path)
    assert [m["user"]["id"] for m in members["items"]] == [owner.id]
    await fails(bob.api.delete(f"{path}/{bob.id}"), 404, "not_found")


async def test_request_notify_approve_joins_like_an_invitation(make_account, make_room):
    owner, record, room, (mate, _) = await bound_class(make_account, make_room)
    async with owner.client() as owner_ws:
        request = await mate.api.post(f"/api/alumni/{record['id']}/requests", {"note": "I was in 3B"})
        notice = await next_notify(owner_ws)
    assert notice.type == "record_request" and notice.request == request
    assert {k: request[k] for k in ("user", "note", "status")} == {"user": mate.user, "note": "I was in 3B",
                                                                  "status": "pending"}
    assert request["record"]["id"] == record["id"]
    await fails(mate.api.post(f"/api/alumni/{record['id']}/requests", {}), 409, "conflict")
    await fails(mate.api.get(f"/api/alumni/{record['id']}/requests"), 403, "forbidden")
    listed = await owner.api.get(f"/api/alumni/{record['id']}/requests", status="pending")
    assert [r["id"] for r in listed["items"]] == [request["id"]]
    await fails(mate.api.post(f"/api/record-requests/{request['id']}/approve"), 403, "forbidden")
    async with mate.client() as mate_ws:
        approved = await owner.api.post(f"/api/record-requests/{request['id']}/approve")
        joined = await next_system(mate_ws, room["id"], "alumni.joined")
    assert approved["status"] == "approved" and approved["record"]["member_count"] == 2
    assert joined.system.data["user"] == mate.user and joined.system.data["inviter"] == owner.user
    feed = await mate.api.get(f"/api/alumni/{record['id']}/feed")
    assert (feed["items"][0]["type"], feed["items"][0]["actor"]) == ("joined", mate.user)
    await fails(owner.api.post(f"/api/record-requests/{request['id']}/decline"), 409, "conflict")
    await fails(mate.api.post(f"/api/alumni/{record['id']}/requests", {}), 409, "conflict")  # a member now
    assert (await owner.api.get(f"/api/alumni/{record['id']}/requests", status="pending"))["items"] == []
    await fails(owner.api.post("/api/record-requests/nope/approve"), 404, "not_found")


async def test_declined_request_adds_nobody_and_may_be_asked_again(make_account):
    owner, mate = await make_account(), await make_account()
    record = await create_record(owner)
    request = await mate.api.post(f"/api/alumni/{record['id']}/requests")  # no body: no note
    assert request["note"] == ""
    declined = await owner.api.post(f"/api/record-requests/{request['id']}/decline")
    assert declined["status"] == "declined" and declined["record"]["member_count"] == 1
    again = await mate.api.post(f"/api/alumni/{record['id']}/requests", {"note": "please"})
    assert again["status"] == "pending"


async def test_invitations_skip_people_who_blocked_the_inviter(make_account, make_room):
    owner, record, room, (bob, carol) = await bound_class(make_account, make_room)
    await bob.api.put(f"/api/me/blocks/{owner.id}")
    result = await owner.api.post(f"/api/alumni/{record['id']}/invitations", {"user_ids": [bob.id, carol.id]})
    assert [i["invitee"]["id"] for i in result["invitations"]] == [carol.id]
    assert result["skipped"] == [{"user_id": bob.id, "reason": "blocked"}]
    [message] = await system_in_history(owner, room["id"], "alumni.invitation")
    assert [u["id"] for u in message["system"]["data"]["invitees"]] == [carol.id]
