"""The same room broadcast as `bare_broadcast.py`, on aiohttp: the floor under our server.

    python scripts/bench_servers/aiohttp_broadcast.py --port 9003

The chat server is built on aiohttp's WebSocket server. This is the least
a server built on it can hold per connection (one handler coroutine, one
`WebSocketResponse`, no middlewares) and spend per message (one
`send_frame` per member), so the benchmark can show what is aiohttp's and
what is ours.
"""

from __future__ import annotations

import argparse

from aiohttp import WSMsgType, web
from room_frames import decode, join, leave, post  # this script's directory is on sys.path


async def member(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    rooms = []
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            m = decode(msg.data)
            if m.op == "join":
                rooms.append(m.room)
                await ws.send_frame(join(m, ws), WSMsgType.TEXT)
            elif m.op == "send":
                ack, message, room = post(m)
                await ws.send_frame(ack, WSMsgType.TEXT)
                for other in list(room.members):
                    try:
                        await other.send_frame(message, WSMsgType.TEXT)
                    except (ConnectionError, RuntimeError):  # a member closing: not the sender's problem
                        continue
    finally:
        for name in rooms:
            leave(name, ws)
    return ws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9003)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/ws", member)
    try:
        import uvloop
    except ImportError:
        loop = None
    else:
        loop = uvloop.new_event_loop()
    print(f"aiohttp broadcast on ws://{args.host}:{args.port}/", flush=True)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
