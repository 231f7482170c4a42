"""Reference servers for `scripts/bench_fanout.py`, with this project's room semantics and no storage.

Each keeps a per-room seq and sends the same message fields as the chat
server (`op, room, seq, id, ts, from, kind, text, cid`), so the same load
generator (`scripts/loadtest.py`, targets `bare` and `socketio`) measures
them all:
- `bare_broadcast.py`: picows: the limit of a careful Python broadcast,
  one encode per message, one `send` per member.
- `aiohttp_broadcast.py`: the same on aiohttp, the floor under our server.
- `room_frames.py`: the rooms and frames the two share.
- `socketio_server.py`: python-socketio on aiohttp.
- `node_socketio/`: socket.io on Node (`npm install` there first).
"""
