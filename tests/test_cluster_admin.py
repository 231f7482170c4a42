"""Group administration across nodes (docs/protocol.md §12.14): real `chatserver` processes on one
PostgreSQL and one Redis. A mute, mute-all, ban or dissolve decided on node A binds the member's
connections on node B as soon as its system message (or control event) arrives there, and two nodes
adding the last free seat at once never exceed `CHAT_ROOM_MAX_MEMBERS`.
"""

from __future__ import annotations

import asyncio

import pytest

from client_proto import frames
from client_proto.client import ChatClient, ChatError
from client_proto.http import ApiClient, ApiError
from tests.test_cluster import cluster, group_of, signed_up  # noqa: F401 (the fixture)


async def system_event(client: ChatClient, room: str, type_: str) -> frames.Message:
    """The room's next system message of this type on this connection."""
    async with asyncio.timeout(15):
        while True:
            event = await client.next_event(timeout=15)
            if isinstance(event, frames.Message) and event.room == room and event.system is not None \
                    and event.system.type == type_:
                return event


async def test_a_mute_decided_on_one_node_binds_the_member_on_another(cluster):
    node_a, node_b = await cluster(2)
    (owner, owner_token), (bob, bob_token) = await signed_up(node_a.url, 2)
    room = await group_of(node_a.url, owner_token, [bob])
    async with ChatClient(node_b.ws_url, bob_token) as bob_on_b, \
            ApiClient(node_a.url, token=owner_token) as owner_on_a, ApiClient(node_b.url, token=bob_token) as bob_http:
        await bob_on_b.send(room, "before")
        member = await owner_on_a.put(f"/api/rooms/{room}/members/{bob['id']}/mute", {"seconds": 120})
        muted = await system_event(bob_on_b, room, "member.muted")
        assert muted.system.data["until"] == member["muted_until"]
        with pytest.raises(ChatError) as refused:
            await bob_on_b.send(room, "while muted")
        assert refused.value.code == "forbidden" and 0 < refused.value.retry_after <= 120_000
        with pytest.raises(ApiError) as http_refused:
            await bob_http.post(f"/api/rooms/{room}/messages", {"text": "x", "cid": "x"})
        assert http_refused.value.status == 403

        await owner_on_a.delete(f"/api/rooms/{room}/members/{bob['id']}/mute")
        await system_event(bob_on_b, room, "member.unmuted")
        await bob_on_b.send(room, "free again")

        await owner_on_a.patch(f"/api/rooms/{room}", {"muted": True})
        await system_event(bob_on_b, room, "room.updated")
        with pytest.raises(ChatError) as all_muted:
            await bob_on_b.send(room, "during mute-all")
        assert all_muted.value.code == "forbidden"


async def test_a_ban_and_a_dissolve_on_one_node_reach_connections_on_another(cluster):
    node_a, node_b = await cluster(2)
    (owner, owner_token), (bob, bob_token), (cat, cat_token) = await signed_up(node_a.url, 3)
    room = await group_of(node_a.url, owner_token, [bob, cat])
    async with ChatClient(node_b.ws_url, bob_token) as bob_on_b, ChatClient(node_b.ws_url, cat_token) as cat_on_b, \
            ApiClient(node_a.url, token=owner_token) as owner_on_a, ApiClient(node_b.url, token=bob_token) as bob_http:
        await owner_on_a.put(f"/api/rooms/{room}/bans/{bob['id']}", {"reason": "spam"})
        kicked = await system_event(cat_on_b, room, "member.kicked")
        assert kicked.system.data["user"]["id"] == bob["id"]
        with pytest.raises(ApiError) as rejoin:
            await bob_http.post(f"/api/rooms/{room}/members", {"user_id": bob["id"]})
        assert rejoin.value.status == 403
        with pytest.raises(ChatError) as send:
            await bob_on_b.send(room, "still here?")
        assert send.value.code == "forbidden"

        await owner_on_a.delete(f"/api/rooms/{room}")
        async with asyncio.timeout(15):
            while not isinstance(event := await cat_on_b.next_event(timeout=15), frames.RoomDeleted):
                pass
        assert event == frames.RoomDeleted(room=room)
        with pytest.raises(ChatError) as gone:
            await cat_on_b.send(room, "anyone?")
        assert gone.value.code == "not_found"


async def test_two_nodes_adding_the_last_seats_at_once_never_exceed_the_limit(cluster):
    limit = 5
    node_a, node_b = await cluster(2, CHAT_ROOM_MAX_MEMBERS=str(limit))
    (owner, owner_token), *others = await signed_up(node_a.url, 13)
    room = await group_of(node_a.url, owner_token, [])
    async with ApiClient(node_a.url, token=owner_token) as on_a, ApiClient(node_b.url, token=owner_token) as on_b:

        async def add(api: ApiClient, user: dict) -> int:
            try:
                await api.add_member(room, user["id"])
                return 201
            except ApiError as exc:
                return exc.status

        statuses = await asyncio.gather(*(add(on_a if i % 2 else on_b, user) for i, (user, _) in enumerate(others)))
        assert sorted(statuses) == [201] * (limit - 1) + [409] * (len(others) - limit + 1)
        assert (await on_a.get(f"/api/rooms/{room}"))["member_count"] == limit
        assert len((await on_b.get(f"/api/rooms/{room}/members"))["items"]) == limit
