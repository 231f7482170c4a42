"""python-socketio on aiohttp with the chat server's room semantics, for `scripts/bench_fanout.py`.

    python scripts/bench_servers/socketio_server.py --port 9002

Events: `join` (room name; acked `{"op":"ok"}`), `send` (`{room, text, cid}`;
acked `{"op":"ack", room, seq, id, ts, dup}`), and `message` to the room
(`{op, room, seq, id, ts, from, kind, text, cid}`), the sender included.
No accounts, no storage. Websocket transport only (the load generator
speaks Engine.IO v4 on it directly).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time

import socketio
from aiohttp import web

SENDER = {"id": "u_" + secrets.token_hex(8), "name": "bench", "display": "bench", "bot": True}


def make_app() -> web.Application:
    sio = socketio.AsyncServer(async_mode="aiohttp", transports=["websocket"], cors_allowed_origins="*",
                               logger=False, engineio_logger=False)
    app = web.Application()
    sio.attach(app)
    seqs: dict[str, int] = {}

    @sio.event
    async def join(sid, room):
        await sio.enter_room(sid, room)
        return {"op": "ok"}

    @sio.event
    async def send(sid, data):
        room = data["room"]
        seq = seqs[room] = seqs.get(room, 0) + 1
        ts = time.time_ns() // 1_000_000
        mid = "m_" + secrets.token_hex(8)
        await sio.emit("message", {"op": "message", "room": room, "seq": seq, "id": mid, "ts": ts, "from": SENDER,
                                   "kind": "text", "text": data["text"], "cid": data.get("cid")}, room=room)
        return {"op": "ack", "room": room, "seq": seq, "id": mid, "ts": ts, "dup": False}

    async def health(request):
        return web.Response(text="ok")

    app.router.add_get("/healthz", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9002)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    web.run_app(make_app(), host=args.host, port=args.port, access_log=None, loop=loop,
                print=lambda text: print(text, flush=True))


if __name__ == "__main__":
    main()
