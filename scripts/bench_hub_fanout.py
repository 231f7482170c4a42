"""The hub's fan-out alone, in process: CPU per delivery of `Hub._fanout` for one room of 1,000
connections whose `push` only counts, chat messages only. No sockets, no other processes: on a
busy host it shows a change to the per-message or per-recipient work of the hot path that the
full `bench_fanout.py` run cannot tell from noise.

    .venv/bin/python scripts/bench_hub_fanout.py
    PYTHONPATH=<another checkout> .venv/bin/python scripts/bench_hub_fanout.py   # the same for that tree

Figures only: nothing is asserted.
"""
import asyncio
import inspect
import statistics
import time

from chatserver.hub import Hub, _Room
from chatserver.metrics import Metrics
from storage.records import Message, User

class FakeConn:
    __slots__ = ("holding", "n", "binary")
    def __init__(self):
        self.holding = {}
        self.n = 0
        self.binary = False
    def push(self, data):
        self.n += 1

async def main():
    hub = Hub(None, None, replay_limit=500, heartbeat=1000, metrics=Metrics())
    if "policy" in inspect.signature(_Room.__init__).parameters:  # trees since rooms carry a RoomPolicy
        from chatserver.policy import RoomPolicy
        from storage.records import RoomPolicyState
        room = _Room(1, RoomPolicy(RoomPolicyState.NONE))
    else:
        room = _Room(1)
    room.json.update(FakeConn() for _ in range(1000))
    sender = User(id="u1", name="alice", display="Alice")
    msgs = [Message(room_id="r1", seq=i, id=f"m{i}", ts=int(time.time() * 1000), sender=sender, kind="text",
                    text="hello " * 10, cid=f"c{i}") for i in range(1, 2001)]
    runs = []
    for _ in range(7):
        t = time.process_time()
        for m in msgs:
            hub._fanout("r1", room, m)
        runs.append((time.process_time() - t) / (len(msgs) * 1000) * 1e6)
    print(f"µs CPU per delivery, 7 runs of 2000 msgs x 1000 conns: median {statistics.median(runs):.4f}, "
          f"min {min(runs):.4f}, all {[round(r, 4) for r in runs]}")
    await hub.close()

if __name__ == "__main__":
    asyncio.run(main())
