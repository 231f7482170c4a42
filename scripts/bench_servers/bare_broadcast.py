"""A bare WebSocket room broadcast with picows: the limit a careful Python hub can reach.

    python scripts/bench_servers/bare_broadcast.py --port 9001

Same frames as the chat server, none of its guarantees: no accounts, no
storage, no bounded buffers. A client sends `{"op":"join","room":R,"ref":…}`
(answered `ok`), then `{"op":"send","room":R,"text":…,"cid":…,"ref":…}`:
the server gives it the room's next seq, acks it, encodes the `message`
frame once and `send`s those bytes to every member, the sender included.
"""

from __future__ import annotations

import argparse
import asyncio

from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server
from room_frames import decode, join, leave, post  # this script's directory is on sys.path


class Member(WSListener):
    def __init__(self) -> None:
        self.transport: WSTransport | None = None
        self.room: str | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.room is not None:
            leave(self.room, self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        m = decode(frame.get_payload_as_bytes())
        if m.op == "join":
            self.room = m.room
            transport.send(WSMsgType.TEXT, join(m, self))
        elif m.op == "send":
            ack, message, room = post(m)
            transport.send(WSMsgType.TEXT, ack)
            for member in room.members:
                member.transport.send(WSMsgType.TEXT, message)


def listener_factory(request: WSUpgradeRequest) -> Member:
    return Member()


async def serve(host: str, port: int) -> None:
    server = await ws_create_server(listener_factory, host, port, enable_auto_pong=True)
    print(f"bare broadcast (picows) on ws://{host}:{port}/", flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
