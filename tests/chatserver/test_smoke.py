"""The shortest path through the product: sign up, create a group, chat, read history."""

from client_proto import frames


async def test_two_users_chat_in_a_group(make_account, make_room):
    alice = await make_account("alice")
    bob = await make_account("bob")
    room, _ = await make_room(owner=alice, members=[bob])
    async with alice.client() as a, bob.client() as b:
        ack = await a.send(room["id"], "hello bob", cid="c1")
        assert ack.seq == 2 and ack.dup is False  # seq 1 is bob's member.joined
        event = await b.next_event(timeout=5)
        assert isinstance(event, frames.Message)
        assert (event.seq, event.text, event.from_.id) == (2, "hello bob", alice.id)
        history = await b.history(room["id"])
        assert [m.seq for m in history.messages] == [1, 2]
        assert history.messages[0].system.type == "member.joined"
