"""Frames sent straight to the kernel (`wsproto.BorrowedSocket`, `Connection.write`, `hub._Room.flush`).

Each test runs on asyncio's own loop and on uvloop (what `python -m chatserver`
runs on): the safety of the direct send rests on when the loop closes a
connection's descriptor.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import struct

import pytest
from websockets.asyncio.client import connect as connect_ws

from chatserver import keys, wsframe
from chatserver.connection import BEHIND
from chatserver.wsproto import BorrowedSocket, FrameReader

from .conftest import eventually, with_settings
from .test_wsproto import hello, masked, open_raw, read_frame, read_op

uvloop = pytest.importorskip("uvloop")


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def event_loop_policy(request):
    return asyncio.DefaultEventLoopPolicy() if request.param == "asyncio" else uvloop.EventLoopPolicy()


def server_connection(server, account):
    """The server's `Connection` of the account's only connection (None until its hello is done)."""
    return next(iter(server.app[keys.HUB].user_connections(account.id)), None)


def test_dropping_a_borrowed_socket_leaves_the_descriptor_to_its_owner():
    ours, peer = socket.socketpair()
    with ours, peer:
        borrowed = BorrowedSocket(fileno=ours.fileno())
        borrowed.send(b"through the borrowed socket")
        del borrowed
        gc.collect()
        ours.send(b", then its owner's")  # a plain socket would have closed the descriptor on the way out
        peer.settimeout(5)
        received = b""
        while len(received) < 45:
            received += peer.recv(100)
        assert received == b"through the borrowed socket, then its owner's"


@pytest.mark.parametrize("loss", ["reset", "end"])
async def test_a_lost_connection_never_sends_on_a_descriptor_given_to_a_newer_one(
    server, make_account, make_room, connect, loss
):
    """The hazard of sending on the transport's descriptor: the kernel gives a closed descriptor's number to
    the next connection it accepts. The lost connection's socket lets go of it first (in `connection_lost`
    before the loop closes it), so a late frame for the lost connection goes nowhere."""
    alice = await make_account("alice")
    bob = await make_account("bob")
    room, _ = await make_room(owner=alice, members=[bob])
    a = await connect(alice)
    hub = server.app[keys.HUB]
    async with connect_ws(server.ws_url, subprotocols=["chat.v1.json"]) as doomed:
        await doomed.send(json.dumps({"op": "hello", "token": bob.token}))
        assert json.loads(await doomed.recv())["op"] == "welcome"
        lost = await eventually(lambda: server_connection(server, bob))
        ack = await a.call("send", room=room["id"], text="to bob", cid="x")
        assert json.loads(await doomed.recv())["seq"] == ack["seq"]
        assert lost.direct is lost.socket  # its frames go straight to the kernel
        number = lost.socket.fileno()
        if loss == "reset":  # the peer vanishes without a close frame: RST, or FIN ("end")
            doomed.transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        doomed.transport.abort()
        await eventually(lambda: server_connection(server, bob) is None)

    carol = await make_account("carol")
    newer = await connect(carol)
    # The kernel hands out the lowest free number: the lost connection's, else this test proves nothing.
    assert server_connection(server, carol).socket.fileno() == number

    late = wsframe.data_frame(b'{"op":"message","text":"not for carol"}', False)
    assert lost.write(late) is False  # nothing written, nothing over the buffer, no error
    members = hub._rooms[room["id"]].json
    members.add(lost)  # the room's fan-out too, as if the loss were not heard yet
    try:
        await a.call("send", room=room["id"], text="after the loss", cid="y")  # fanned out before its ack
    finally:
        members.discard(lost)
    assert await newer.drain() == []  # everything carol got before the answer to her ping: nothing


async def test_no_frame_follows_the_answer_to_the_peers_close(server, make_account, monkeypatch):
    """Once the peer's close frame is answered, its connection sends nothing more, even a frame the fan-out
    writes in the same loop turn (before the transport's `connection_lost`): the socket let go with the answer."""
    late = wsframe.data_frame(b'{"op":"message","text":"after the close"}', False)
    answer_close = FrameReader._peer_close

    def answer_close_then_fan_out(reader, payload):
        answer_close(reader, payload)
        reader.peer.conn.write(late)  # what a room's flush in this turn would do

    monkeypatch.setattr(FrameReader, "_peer_close", answer_close_then_fan_out)
    alice = await make_account()
    reader, writer = await open_raw(server.ws_url, behind=masked(0x81, hello(alice.token)))
    try:
        await read_op(reader, "welcome")
        writer.write(masked(0x88, struct.pack("!H", 1000)))
        while (frame := await read_frame(reader))[0] != 0x8:
            pass
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the close frame was the last byte, then EOF
    finally:
        writer.close()


@with_settings(send_buffer=8 << 20, max_text=60_000, max_frame=61_000, send_rate=10_000.0, send_burst=10_000)
async def test_a_reader_that_falls_behind_gets_everything_in_order_then_straight_again(
    server, make_account, make_room, connect
):
    """When the kernel stops taking a member's frames they wait in the transport, and later frames queue
    behind them (never overtaking, never splitting a frame); once the reader catches up, frames go
    straight to the kernel again."""
    alice = await make_account("alice")
    bob = await make_account("bob")
    room, _ = await make_room(owner=alice, members=[bob])
    a = await connect(alice)
    async with connect_ws(server.ws_url, subprotocols=["chat.v1.json"], max_queue=2) as reader:
        await reader.send(json.dumps({"op": "hello", "token": bob.token}))
        assert json.loads(await reader.recv())["op"] == "welcome"
        conn = await eventually(lambda: server_connection(server, bob))

        sent = []
        while conn.direct is not BEHIND:  # the reader reads nothing: the kernel's buffers fill up
            assert len(sent) < 2_000, "the kernel never stopped taking frames"
            ack = await a.call("send", room=room["id"], text="x" * 50_000, cid=f"c{len(sent)}")
            sent.append(ack["seq"])
        for i in range(5):  # these queue behind what waits in the transport
            ack = await a.call("send", room=room["id"], text=f"behind {i}", cid=f"b{i}")
            sent.append(ack["seq"])
        assert conn.transport.get_write_buffer_size() > 0

        received = []
        while len(received) < len(sent):
            frame = json.loads(await asyncio.wait_for(reader.recv(), 10))
            if frame["op"] == "message":
                received.append(frame["seq"])
        assert received == sent

        await eventually(lambda: not conn.transport.get_write_buffer_size())
        ack = await a.call("send", room=room["id"], text="straight again", cid="s")
        frame = json.loads(await asyncio.wait_for(reader.recv(), 10))
        assert (frame["op"], frame["seq"]) == ("message", ack["seq"])
        assert conn.direct is conn.socket
