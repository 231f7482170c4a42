"""This node's map of rooms to connections, and the fan-out.

The bus hands the hub every event of the rooms this node serves. Messages go
through a per-room sequencer first: it delivers seq N+1 only after N, holds
an early message briefly and fills a real gap from storage, so each
connection sees every room's messages in strictly increasing seq with no gap
and no repeat, whichever node stored them (docs/protocol.md §10.1, §10.3).

A message is encoded once per codec and queued once on the room; at the end
of the loop turn the room writes what piled up (one message, or several
joined when they arrive faster than the loop turns) to every member in one
pass, with no await and no bookkeeping per recipient.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from client_proto import frames
from client_proto.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, server_codec
from client_proto.errors import CloseCode
from storage import messages as message_store
from storage import moderation
from storage import rooms as room_store
from storage import tokens as token_store
from storage.db import Database, StorageUnavailable
from storage.records import Message, RoomPolicyState

from . import wsframe
from .announcements import departed, payload_of
from .bus.base import Bus
from .bus.events import (
    ControlEvent,
    MembershipChanged,
    MessageRecalled,
    Notified,
    Posted,
    ReadMoved,
    Revoked,
    RoomDeleted,
    RoomEvent,
    TypingStarted,
    UserChanged,
)
from .connection import Connection, Flusher
from .metrics import Metrics
from .policy import RoomPolicy
from .views import message_frame, user_frame

log = logging.getLogger(__name__)

GAP_WAIT = 0.25  # seconds an early message waits for the ones before it
IDLE_ROOM_TTL = 30.0  # seconds a room with no local member stays subscribed
STORAGE_RETRY = 1.0  # seconds between two tries of a catch-up that found storage down
DISSOLVED_MEMORY = 60.0  # seconds a dissolved room is remembered for hellos that read it just before


class _Room:
    """A room this node serves: its local connections by codec, its outgoing frames, its sequencer
    state, and who may send (its `RoomPolicy`, kept current by the room's system messages in seq order).

    `json`/`msgpack` are the live members: they get the room's frames through
    `out_json`/`out_msgpack`, written by `flush` at the end of the loop turn.
    `catching` are members still catching up from storage (`Hub.attach`); the
    fan-out hands them each frame itself, and `flush` moves those done to the
    live sets after writing, so a frame never reaches a member twice.
    """

    __slots__ = ("id", "json", "msgpack", "catching", "out_json", "out_msgpack", "marked", "flusher", "next_seq",
                 "held", "gap_timer", "idle_timer", "policy")

    def __init__(self, room_id: str, next_seq: int, flusher: Flusher, policy: RoomPolicy | None = None):
        self.id = room_id
        self.json: set[Connection] = set()
        self.msgpack: set[Connection] = set()
        self.catching: set[Connection] = set()
        self.out_json: list[bytes] = []
        self.out_msgpack: list[bytes] = []
        self.marked = False  # queued on the flusher for this turn
        self.flusher = flusher
        self.next_seq = next_seq
        self.policy = policy or RoomPolicy(RoomPolicyState.NONE)
        self.held: dict[int, Message] = {}
        self.gap_timer: asyncio.TimerHandle | None = None
        self.idle_timer: asyncio.TimerHandle | None = None

    def members(self) -> Iterable[Connection]:
        yield from self.json
        yield from self.msgpack
        yield from self.catching

    def empty(self) -> bool:
        return not self.json and not self.msgpack and not self.catching

    def mark(self) -> None:
        """Have `flush` run at the end of this loop turn (once, however many frames)."""
        if not self.marked:
            self.marked = True
            self.flusher.mark_room(self)

    def queue(self, json_data: bytes | None, msgpack_data: bytes | None) -> None:
        """Queue one frame (already encoded per codec) for every live member."""
        if self.json:
            self.out_json.append(json_data)
        if self.msgpack:
            self.out_msgpack.append(msgpack_data)
        self.mark()

    def flush(self) -> None:
        """Write what was queued this turn to every live member, then let members that caught up go live.

        The hot path of the fan-out: `Connection.write` inlined. Per member, one
        `send(2)` straight to the kernel on its socket (`conn.direct`) and nothing
        else: no per-member queue, no flag, no method call of ours
        (`scripts/bench_hub.py`, 1,000 members, one message a turn: 3.1 µs of CPU per
        delivery with a queue and a flusher mark per member, 2.5 µs without). The
        direct `send` skips uvloop's write queue (`transport.write` queues a frame and
        writes it with `write(2)` at the end of the loop turn) and the checks of the
        transport before and after each write: 11-17 % less CPU in this loop with one
        message a turn (docs/performance.md, "Sending straight to the kernel").
        What the kernel does not take, or a member whose transport holds bytes of its
        own, goes behind in the transport (`Connection.write_behind`); past
        `send_buffer` bytes there the member is a slow consumer. Frames that arrived
        in the same turn go out in one write, one syscall per member however many
        messages: with four messages a turn 0.7 µs per delivery against 2.3 µs for
        the bare loop, and the latency of a burst stays that of one write.
        """
        self.marked = False
        slow = []
        for members, out in ((self.json, self.out_json), (self.msgpack, self.out_msgpack)):
            if not out:
                continue
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            size = len(data)
            for conn in members:
                try:
                    sent = conn.direct.send(data)
                except OSError:  # the kernel's buffer is full, or the socket is closing (detached)
                    sent = 0
                if sent != size and conn.write_behind(data, sent):
                    slow.append(conn)
        for conn in slow:  # closing detaches it: not while iterating the member sets
            conn.close_slow()
        if self.catching:
            caught_up = [conn for conn in self.catching if self.id not in conn.holding]
            for conn in caught_up:
                self.catching.discard(conn)
                (self.msgpack if conn.binary else self.json).add(conn)


class Hub:
    """Rooms, connections and delivery on this node. The bus calls its `on_*` methods."""

    def __init__(self, db: Database, bus: Bus, *, replay_limit: int, heartbeat: float, metrics: Metrics):
        self._db = db
        self._bus = bus
        self._replay_limit = replay_limit
        self._heartbeat = heartbeat
        self.metrics = metrics
        self._slow_closes = metrics.closes.labels("slow_consumer")
        self._rooms: dict[str, _Room] = {}
        self._room_setup: dict[str, asyncio.Future[_Room]] = {}
        self._heard_in_setup: dict[str, list[Message]] = {}  # by room: messages the bus brought meanwhile
        # Rooms dissolved in the last DISSOLVED_MEMORY seconds (by when): a connection in its hello
        # may have read one before it went and is told once its resume is done (`revalidate`).
        self._dissolved: dict[str, float] = {}
        self._unsubscribing: dict[str, asyncio.Task] = {}
        self._users: dict[str, set[Connection]] = {}
        self._connection_count = 0
        self._tasks: set[asyncio.Task] = set()
        self._json = server_codec(JSON_SUBPROTOCOL)
        self._msgpack = server_codec(MSGPACK_SUBPROTOCOL)
        self._loop = asyncio.get_running_loop()
        self.flusher = Flusher()
        self._heartbeat_timer = self._loop.call_later(heartbeat, self._beat)
        self.draining = False

    # ------------------------------------------------------------------ connections

    @property
    def connection_count(self) -> int:
        return self._connection_count

    def user_connection_count(self, user_id: str) -> int:
        return len(self._users.get(user_id, ()))

    def connections(self) -> list[Connection]:
        return [conn for conns in self._users.values() for conn in conns]

    def register(self, conn: Connection) -> None:
        """Make a connection reachable by user-level events (before its rooms are attached)."""
        conns = self._users.setdefault(conn.user.id, set())
        if not conns:
            self._bus.set_online(conn.user.id, True)
        conns.add(conn)
        self._connection_count += 1
        self.metrics.connections.inc()

    def closing(self, conn: Connection, code: int) -> None:
        """The server decided to close `conn`: from now on it is not online and hears none of its rooms."""
        if code == CloseCode.SLOW_CONSUMER:
            self._slow_closes.inc()
        self.unregister(conn)

    def unregister(self, conn: Connection) -> None:
        for room_id in list(conn.rooms) + list(conn.holding):
            self.detach(conn, room_id)
        conns = self._users.get(conn.user.id)
        if conns is not None and conn in conns:
            conns.discard(conn)
            self._connection_count -= 1
            self.metrics.connections.dec()
            if not conns:
                del self._users[conn.user.id]
                self._bus.set_online(conn.user.id, False)

    async def attach(self, conn: Connection, room_id: str, after_seq: int) -> None:
        """Start delivering `room_id` to `conn`: every message after `after_seq`, then live.

        Messages the node already passed are read from storage; those arriving
        meanwhile are held on the connection and sent after them. Past
        `replay_limit` missed messages a `gap` frame comes first.
        """
        if room_id in conn.rooms or room_id in conn.holding or conn.closed:
            return
        conn.holding[room_id] = []
        try:
            if not conn.ready.is_set():
                await conn.ready.wait()
            room = await self._ensure_room(room_id)
            if conn.closed or room_id not in conn.holding:
                return
            room.catching.add(conn)
            if room.idle_timer is not None:
                room.idle_timer.cancel()
                room.idle_timer = None
            conn.rooms.add(room_id)
            if after_seq >= room.next_seq:
                # The client saw more on another node than this node has delivered yet (it lags after a
                # bus outage): catch the room up from storage first, or those messages would reach
                # this connection a second time when they are sequenced here.
                await self._fill_from_storage(room_id, raising=True)
                if conn.closed or room_id not in conn.holding:
                    return
            upto = room.next_seq - 1
            sent = after_seq
            if upto > after_seq:
                first = max(after_seq, upto - self._replay_limit)
                async with self._db.read() as db:
                    missed = await message_store.between(db, room_id, first, upto)
                if conn.closed or room_id not in conn.holding:
                    return
                if first > after_seq:
                    conn.send(frames.Gap(room=room_id, from_=after_seq + 1, to=first))
                for message in missed:
                    conn.send(message_frame(message))
                sent = upto
        except BaseException:
            self.detach(conn, room_id)
            raise
        for seq, data in conn.holding.pop(room_id, ()):
            if seq > sent:
                conn.push(data)
        room.mark()  # the connection goes live once what it was handed is written

    def detach(self, conn: Connection, room_id: str) -> None:
        """Stop delivering `room_id` to `conn` at once."""
        conn.holding.pop(room_id, None)
        conn.rooms.discard(room_id)
        room = self._rooms.get(room_id)
        if room is None:
            return
        if room.marked and conn not in room.catching:
            # Frames of this turn are queued on the room, meant for this member too (e.g. the
            # `member.left` that announces its own leaving): write them before it goes.
            self.flusher.flush_now()
        (room.msgpack if conn.binary else room.json).discard(conn)
        room.catching.discard(conn)
        if room.empty() and room.idle_timer is None:
            room.idle_timer = self._loop.call_later(IDLE_ROOM_TTL, self._drop_idle_room, room_id)

    def user_connections(self, user_id: str) -> list[Connection]:
        return list(self._users.get(user_id, ()))

    def policy(self, room_id: str) -> RoomPolicy | None:
        """Who may send in `room_id`, when this node serves it (it does for every room a local connection hears)."""
        room = self._rooms.get(room_id)
        return room.policy if room is not None else None

    async def _ensure_room(self, room_id: str) -> _Room:
        room = self._rooms.get(room_id)
        if room is not None:
            return room
        pending = self._room_setup.get(room_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Room] = self._loop.create_future()
        self._room_setup[room_id] = future
        heard = self._heard_in_setup[room_id] = []
        try:
            leaving = self._unsubscribing.get(room_id)
            if leaving is not None:  # an idle drop of this room is still talking to the bus
                await asyncio.shield(leaving)
            await self._bus.subscribe_room(room_id)
            async with self._db.read() as db:
                last = await message_store.last_seq(db, room_id)
                # Read after the last seq: a change committed in between comes again by the
                # bus (seq > last), and applying it twice is harmless; the other order could miss it.
                state = await moderation.policy_state(db, room_id)
            room = _Room(room_id, next_seq=(last or 0) + 1, flusher=self.flusher,
                         policy=RoomPolicy(state or RoomPolicyState.NONE))
            self._rooms[room_id] = room
            for message in heard:  # the bus brought them while `last` was read: those past it are for us
                self._sequence(room_id, message)
            future.set_result(room)
            return room
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it through the shield
            raise
        finally:
            del self._room_setup[room_id]
            del self._heard_in_setup[room_id]

    def _drop_idle_room(self, room_id: str) -> None:
        room = self._rooms.get(room_id)
        if room is None or not room.empty():
            return
        del self._rooms[room_id]
        if room.gap_timer is not None:
            room.gap_timer.cancel()
        task = self._loop.create_task(self._bus.unsubscribe_room(room_id))
        self._unsubscribing[room_id] = task
        task.add_done_callback(lambda _: self._unsubscribing.pop(room_id, None))

    # ------------------------------------------------------------------ bus handler

    def on_room_event(self, room_id: str, event: RoomEvent) -> None:
        match event:
            case Posted(message=message):
                self._sequence(room_id, message)
            case TypingStarted(user=user):
                self._broadcast(room_id, frames.TypingEvent(room=room_id, user=user_frame(user)), skip_user=user.id)
            case MessageRecalled(seq=seq, by=by):
                self._broadcast(room_id, frames.Recalled(room=room_id, seq=seq, by=user_frame(by)))

    def on_control_event(self, event: ControlEvent) -> None:
        match event:
            case MembershipChanged(room_id=room_id, user_id=user_id, added=added, seq=seq):
                for conn in self.user_connections(user_id):
                    if not conn.resumed:
                        # Still in its hello: attaching now would start the room at the join, ahead of
                        # the client's own resume; hello checks the memberships once its resume is done.
                        conn.stale = True
                    elif added:
                        self._spawn(self.attach(conn, room_id, after_seq=seq - 1))
                    else:
                        self.detach(conn, room_id)
            case ReadMoved(room_id=room_id, user_id=user_id, seq=seq, session=session):
                for conn in self.user_connections(user_id):
                    if conn.session != session and room_id in conn.rooms:
                        conn.send(frames.ReadEvent(room=room_id, seq=seq))
            case Notified(user_ids=user_ids, type=type_, payload=payload):
                for user_id in user_ids:
                    for conn in self.user_connections(user_id):
                        conn.send(frames.Notify(type=type_, **payload))
            case RoomDeleted(room_id=room_id, user_ids=user_ids):
                self._remember_dissolved(room_id)
                gone = frames.RoomDeleted(room=room_id)
                for user_id in user_ids:
                    for conn in self.user_connections(user_id):
                        if room_id in conn.rooms or room_id in conn.holding:
                            self.detach(conn, room_id)
                            conn.send(gone)
                        elif not conn.resumed:
                            # Its hello may have read the room before it went and not reached it yet:
                            # checked against storage once the resume is done, as a join is.
                            conn.stale = True
            case Revoked(token_hash=token_hash, user_id=user_id):
                for conn in self.connections():
                    if (token_hash and conn.token_hash == token_hash) or (user_id and conn.user.id == user_id):
                        conn.close(CloseCode.UNAUTHORIZED, "token revoked")
            case UserChanged(user=user):
                for conn in self.user_connections(user.id):
                    conn.user = user  # what their next messages carry (display name, avatar)

    def _remember_dissolved(self, room_id: str) -> None:
        now = self._loop.time()
        for old in [r for r, when in self._dissolved.items() if now - when > DISSOLVED_MEMORY]:
            del self._dissolved[old]
        self._dissolved[room_id] = now

    def on_bus_restored(self) -> None:
        """Events may have been lost: read every served room forward from storage,
        and bring connections up to date with revocations and membership changes they missed.
        Both wait for storage when it is down too, or a quiet room would stay behind until its next message."""
        self.metrics.bus_reconnects.inc()
        for room_id in list(self._rooms):
            self._spawn(self._until_stored(lambda room_id=room_id: self._fill_from_storage(room_id, raising=True)))
        self._spawn(self._until_stored(lambda: self.revalidate(self.connections())))

    async def _until_stored(self, attempt) -> None:
        """`await attempt()` again every `STORAGE_RETRY` s for as long as storage is unavailable."""
        while True:
            try:
                return await attempt()
            except StorageUnavailable:
                await asyncio.sleep(STORAGE_RETRY)

    async def revalidate(self, conns: list[Connection]) -> None:
        """Close connections whose token was revoked; attach and detach rooms by stored membership.

        A connection still in its hello is only marked `stale`: its resume attaches its rooms from
        the client's own last seqs, and hello revalidates it once that is done."""
        conns = [conn for conn in conns if not conn.closed]
        for conn in conns:
            if not conn.resumed:
                conn.stale = True
        conns = [conn for conn in conns if conn.resumed]
        if not conns:
            return
        async with self._db.read() as db:
            live_tokens = await token_store.existing(db, {conn.token_hash for conn in conns})
            markers = await room_store.read_markers_of(db, {conn.user.id for conn in conns})
        for conn in conns:
            if conn.closed:
                continue
            if conn.token_hash not in live_tokens:
                conn.close(CloseCode.UNAUTHORIZED, "token revoked")
                continue
            rooms = markers.get(conn.user.id, {})
            for room_id in list(conn.rooms):
                if room_id not in rooms:
                    self.detach(conn, room_id)
                    if room_id in self._dissolved:
                        conn.send(frames.RoomDeleted(room=room_id))
            for room_id, read_seq in rooms.items():
                if room_id not in conn.rooms and room_id not in conn.holding:
                    self._spawn(self.attach(conn, room_id, after_seq=read_seq))

    # ------------------------------------------------------------------ sequencing and fan-out

    def _sequence(self, room_id: str, message: Message) -> None:
        room = self._rooms.get(room_id)
        if room is None:
            heard = self._heard_in_setup.get(room_id)
            if heard is not None:  # subscribed, but not yet sure of its last seq: sequenced once it is
                heard.append(message)
            return
        seq = message.seq
        if seq < room.next_seq:
            return  # already delivered (a node's own echo, or a gap filled meanwhile)
        if seq > room.next_seq:
            room.held[seq] = message
            if room.gap_timer is None:
                room.gap_timer = self._loop.call_later(GAP_WAIT, self._gap_expired, room_id)
            return
        self._fanout(room_id, room, message)
        room.next_seq = seq + 1
        while room.held:
            early = room.held.pop(room.next_seq, None)
            if early is None:
                break
            self._fanout(room_id, room, early)
            room.next_seq += 1
        if not room.held and room.gap_timer is not None:
            room.gap_timer.cancel()
            room.gap_timer = None

    def _gap_expired(self, room_id: str) -> None:
        room = self._rooms.get(room_id)
        if room is not None:
            room.gap_timer = None
            if room.held:
                self.metrics.gap_fills.inc()
                self._spawn(self._fill_from_storage(room_id))

    async def _fill_from_storage(self, room_id: str, *, raising: bool = False) -> None:
        room = self._rooms.get(room_id)
        if room is None:
            return
        try:
            async with self._db.read() as db:
                upto = await message_store.last_seq(db, room_id) or 0
                missing = await message_store.between(db, room_id, room.next_seq - 1, upto)
        except StorageUnavailable:
            if raising:
                raise
            if room.held and room.gap_timer is None:
                room.gap_timer = self._loop.call_later(STORAGE_RETRY, self._gap_expired, room_id)
            return
        for message in missing:
            self._sequence(room_id, message)

    def _fanout(self, room_id: str, room: _Room, message: Message) -> None:
        """Queue one message on the room (written to the live members at the end of the turn).

        Work here is per message, none per live member (see `_Room.flush`); only
        members still catching up get the frame one by one, held behind their replay.
        """
        json_data, msgpack_data = self._encode(room, message_frame(message))
        room.queue(json_data, msgpack_data)
        if room.catching:
            seq = message.seq
            for conn in room.catching:
                data = msgpack_data if conn.binary else json_data
                held = conn.holding.get(room_id)
                if held is not None:
                    held.append((seq, data))
                else:
                    conn.push(data)  # caught up: goes live at the end of this turn
        self.metrics.deliveries.inc(len(room.json) + len(room.msgpack) + len(room.catching))
        self.metrics.fanout_latency.observe(max(0.0, time.time() - message.ts / 1000))
        if message.system_type is not None:
            self._follow(room_id, room, message)

    def _follow(self, room_id: str, room: _Room, message: Message) -> None:
        """What a system message changes on this node: who may send, and who hears the room."""
        room.policy.apply(payload_of(message))
        leaver = departed(message)
        if leaver is not None:
            for conn in self.user_connections(leaver):
                self.detach(conn, room_id)

    def _encode(self, room: _Room, frame) -> tuple[bytes | None, bytes | None]:
        """The frame's bytes for each codec some member of the room speaks (None for the others)."""
        json_data = msgpack_data = None
        if room.json or room.catching:
            json_data = wsframe.data_frame(self._json.encode(frame), False)
        if room.msgpack or room.catching:
            msgpack_data = wsframe.data_frame(self._msgpack.encode(frame), True)
        return json_data, msgpack_data

    def _broadcast(self, room_id: str, frame, *, skip_user: str | None = None) -> None:
        """A live event (typing, recalled) to every member, or all but one user's connections."""
        room = self._rooms.get(room_id)
        if room is None:
            return
        json_data, msgpack_data = self._encode(room, frame)
        if skip_user is None:
            room.queue(json_data, msgpack_data)
            for conn in room.catching:
                conn.push(msgpack_data if conn.binary else json_data)
            return
        for conn in room.members():
            if conn.user.id != skip_user:
                conn.push(msgpack_data if conn.binary else json_data)

    # ------------------------------------------------------------------ liveness and lifetime

    def _beat(self) -> None:
        """Ping every connection; cut those that answered nothing for two heartbeats."""
        now = time.monotonic()
        limit = 2 * self._heartbeat
        for conn in self.connections():
            if now - conn.last_seen > limit:
                conn.abort(CloseCode.GOING_AWAY)
            else:
                conn.push(wsframe.PING)
        self._heartbeat_timer = self._loop.call_later(self._heartbeat, self._beat)

    def _spawn(self, coro) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, StorageUnavailable):
                log.error("hub task failed", exc_info=exc)

    async def close_all(self, code: int, reason: str) -> None:
        """Close every connection (drain) and wait for them to go."""
        conns = self.connections()
        for conn in conns:
            conn.close(code, reason)
        await asyncio.gather(*(conn.wait_closed() for conn in conns), return_exceptions=True)

    async def close(self) -> None:
        self._heartbeat_timer.cancel()
        for room in self._rooms.values():
            for timer in (room.gap_timer, room.idle_timer):
                if timer is not None:
                    timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
