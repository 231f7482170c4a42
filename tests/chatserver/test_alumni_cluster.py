"""Alumni across nodes (real processes, PostgreSQL, Redis): an invitation made on one node
notifies the invitee on every node, and the group's system messages reach members anywhere."""

from __future__ import annotations

from client_proto import frames
from client_proto.client import ChatClient
from client_proto.http import ApiClient
from tests.test_cluster import cluster, group_of, signed_up  # noqa: F401 - `cluster` is a fixture

from .alumni_helpers import is_system, wait_for

TIMEOUT = 10


async def test_notify_and_system_messages_reach_every_node(cluster):  # noqa: F811
    a, b = await cluster(2)
    (alice, alice_token), (bob, bob_token) = await signed_up(a.url, 2)
    room_id = await group_of(a.url, alice_token, [bob])
    async with ApiClient(a.url, alice_token) as alice_api, ApiClient(b.url, bob_token) as bob_api:
        record = await alice_api.post("/api/alumni", {"name": "Class of 2010", "school": "No. 1 High"})
        async with ChatClient(a.ws_url, bob_token) as bob_on_a, ChatClient(b.ws_url, bob_token) as bob_on_b:
            await alice_api.put(f"/api/alumni/{record['id']}/room", {"room_id": room_id})
            result = await alice_api.post(f"/api/alumni/{record['id']}/invitations", {})
            [invitation] = result["invitations"]
            for client in (bob_on_a, bob_on_b):
                notice, message = await wait_for(
                    client,
                    lambda e: isinstance(e, frames.Notify),
                    lambda e: is_system(e, room_id, "alumni.invitation"),
                    timeout=TIMEOUT,
                )
                assert notice.invitation["id"] == invitation["id"]
                assert message.system.data["invitees"] == [bob]
            await bob_api.post(f"/api/invitations/{invitation['id']}/accept")  # on node b
            async with ChatClient(a.ws_url, alice_token) as alice_on_a:
                history = await alice_on_a.history(room_id)
            joined = [m for m in history.messages if m.system and m.system.type == "alumni.joined"]
            assert [m.system.data["user"]["id"] for m in joined] == [bob["id"]]
            for client in (bob_on_a, bob_on_b):
                [event] = await wait_for(client, lambda e: is_system(e, room_id, "alumni.joined"), timeout=TIMEOUT)
                assert event.seq == joined[0].seq
