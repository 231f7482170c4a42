"""Thousands of random and malformed frames at a live server (docs/protocol.md §7, §10.6).

Several fuzzing connections, JSON and msgpack, throw random bytes, random
JSON and msgpack values, objects with random ops and fields, wrong types,
huge numbers, deep nesting, text frames on msgpack and binary frames on
JSON, and now and then a frame over `max_frame`. Each reconnects whenever
the server closes it. Meanwhile a well-behaved pair in the same room keeps
chatting. The fuzzers may only ever see §2.4 error codes other than
`internal`, and only the documented closes; the pair must see every message
once, in gapless order, with every ack; nothing may be logged as an error.

Below the chat protocol, frames that RFC 6455 forbids (reserved opcodes and
bits, bad fragmentation, invalid UTF-8, absurd lengths) close only the
connection that sent them, with the close code the RFC prescribes.

The frames come from a seeded PRNG: `CHAT_FUZZ_SEED=<n>` replays a run (the
seed is in every failure message). The codecs' own properties are tested in
tests/client_proto/test_codec.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import string
import struct
import uuid
from dataclasses import dataclass, field

import aiohttp
import msgpack
import pytest

from client_proto import frames
from client_proto.client import ChatClient
from client_proto.errors import CloseCode, ErrorCode

SEED = int(os.environ.get("CHAT_FUZZ_SEED", "20240601"))
FUZZERS = 6  # connections, half JSON, half msgpack
FRAMES_EACH = 500  # frames per fuzzing connection (over all its reconnects)
SYNC_EVERY = 12  # a ping after this many frames, so the fuzzer never runs far ahead of the server
OVERSIZE = 70_000  # bytes: over the default max_frame of 65536

ALLOWED_CODES = {code.value for code in ErrorCode} - {ErrorCode.INTERNAL.value}
# 1008 repeated bad frames, 1009 a frame over max_frame, 4008 sustained flooding (§2.4).
ALLOWED_CLOSES = {CloseCode.POLICY, CloseCode.TOO_BIG, CloseCode.FLOODING}
OPS = sorted(frames.CLIENT_OPS | frames.SERVER_OPS | {"", "HELLO", "send ", "nope", "__class__", "op"})
FIELDS = ["room", "text", "cid", "ref", "seq", "before", "after", "limit", "token", "resume", "reply_to",
          "mentions", "op", "user", "from", "id", "ts", "kind", "x", "", "emoji", "on", "update", "target"]


pytestmark = pytest.mark.usefixtures("cheap_password_hashing")  # many accounts: Argon2id at its cheapest


# ---------------------------------------------------------------------------- the generator


class FrameFuzzer:
    """Random frames: `next(binary)` → str (a text frame) or bytes (a binary frame)."""

    def __init__(self, rng: random.Random, rooms: list[str], users: list[str]):
        self.rng = rng
        self.rooms = rooms  # the shared open room first, then one the fuzzers are not in
        self.users = users
        self.kinds = [
            (self.random_bytes, 8), (self.random_text, 6), (self.json_value, 8), (self.random_op_object, 14),
            (self.wrong_types, 16), (self.well_formed, 20), (self.huge_numbers, 8), (self.deep_nesting, 5),
            (self.msgpack_garbage, 8), (self.cross_encoded, 6), (self.oversize, 1),
        ]
        self._kinds, self._weights = zip(*self.kinds)

    def next(self, binary: bool) -> str | bytes:
        (kind,) = self.rng.choices(self._kinds, self._weights)
        return kind(binary)

    # -- values

    def scalar(self):
        r = self.rng
        return r.choice([
            None, True, False, 0, -1, 1, r.randint(-2**63, 2**63 - 1), r.randint(2**63, 2**64 - 1),
            -2**62 * 3 if r.random() < 0.5 else -2**63, r.random() * 10 ** r.randint(-5, 300), float("-0.0"), "", self.string(), self.string(64),
            self.string(65), self.string(300), r.choice(self.rooms), r.choice(self.users), "all",
        ])

    def value(self, depth: int = 0):
        r = self.rng
        roll = r.random()
        if depth > 4 or roll < 0.5:
            return self.scalar()
        if roll < 0.75:
            return [self.value(depth + 1) for _ in range(r.randint(0, 5))]
        return {self.key(): self.value(depth + 1) for _ in range(r.randint(0, 5))}

    def key(self) -> str:
        return self.rng.choice(FIELDS) if self.rng.random() < 0.8 else self.string()

    def string(self, length: int | None = None) -> str:
        r = self.rng
        length = r.randint(0, 20) if length is None else length
        alphabet = r.choice([string.ascii_letters, string.printable, "é漢字🙂\u200b\u202e\x00\t\n\"\\"])
        return "".join(r.choice(alphabet) for _ in range(length))

    def encode(self, obj, binary: bool) -> str | bytes:
        if binary:
            return msgpack.packb(msgpack_safe(obj), use_bin_type=True)
        return json.dumps(obj, ensure_ascii=self.rng.random() < 0.5, allow_nan=True)

    # -- kinds

    def random_bytes(self, binary: bool) -> bytes:
        return self.rng.randbytes(self.rng.randint(0, 64))

    def random_text(self, binary: bool) -> str:
        return self.string(self.rng.randint(0, 64))

    def json_value(self, binary: bool) -> str | bytes:
        return self.encode(self.value(), binary)

    def random_op_object(self, binary: bool) -> str | bytes:
        obj = {self.key(): self.value(2) for _ in range(self.rng.randint(0, 6))}
        if self.rng.random() < 0.9:
            obj["op"] = self.rng.choice(OPS) if self.rng.random() < 0.8 else self.value(3)
        return self.encode(obj, binary)

    def valid_frame(self) -> dict:
        """A frame a well-behaved client could send, with plausible values."""
        r = self.rng
        room = r.choice(self.rooms) if r.random() < 0.9 else uuid.uuid4().hex
        op = r.choice(["send", "send", "send", "history", "join", "leave", "typing", "read", "recall", "presence",
                       "ping", "hello", "edit", "react", "react"])
        frame: dict = {"op": op}
        if op == "send":
            frame.update(room=room, text=self.string() or "x", cid=uuid.uuid4().hex)
            if r.random() < 0.2:
                frame["reply_to"] = r.randint(1, 50)
            if r.random() < 0.2:
                frame["mentions"] = r.choice(["all", r.sample(self.users, 2)])
        elif op == "history":
            frame.update(room=room, limit=r.randint(1, 100))
            frame[r.choice(["before", "after"])] = r.randint(0, 60)
        elif op in ("read", "recall"):
            frame.update(room=room, seq=r.randint(0, 60))
        elif op == "edit":  # mostly someone else's message or none: docs/protocol.md §6.4's refusals
            frame.update(room=room, seq=r.randint(0, 60), text=self.string() or "x")
        elif op == "react":
            frame.update(room=room, seq=r.randint(0, 60), emoji=self.string(r.randint(0, 18)) or "+1",
                         on=r.random() < 0.7)
        elif op == "hello":
            frame.update(token=self.string(30), resume={room: r.randint(0, 9)})
        elif op != "ping":
            frame["room"] = room
        if r.random() < 0.6:
            frame["ref"] = r.choice([r.randint(-2**63, 2**63 - 1), self.string(64)])
        return frame

    def well_formed(self, binary: bool) -> str | bytes:
        return self.encode(self.valid_frame(), binary)

    def wrong_types(self, binary: bool) -> str | bytes:
        frame = self.valid_frame()
        for _ in range(self.rng.randint(1, 3)):
            frame[self.rng.choice([*frame, *FIELDS])] = self.value(3)
        if self.rng.random() < 0.2:
            del frame[self.rng.choice(list(frame))]
        return self.encode(frame, binary)

    def huge_numbers(self, binary: bool) -> str | bytes:
        r = self.rng
        field_ = r.choice(["seq", "limit", "before", "after", "ref", "reply_to"])
        number = r.choice(["1e999", "-1e999", "NaN", "Infinity", "1" + "0" * r.randint(19, 400), "-" + "9" * 30,
                           "1.5", "1e2", "0.0", "-0", "18446744073709551616", "9223372036854775808"])
        frame = {**self.valid_frame(), field_: 0}
        if binary:  # msgpack has no bignums: the largest ints it can carry, and floats
            frame[field_] = r.choice([2**64 - 1, -2**63, float("inf"), float("nan"), 1e300])
            return msgpack.packb(frame)
        text = json.dumps(frame)
        return text.replace(f'"{field_}": 0', f'"{field_}": {number}', 1)

    def deep_nesting(self, binary: bool) -> str | bytes:
        r = self.rng
        depth = r.choice([50, 500, 5_000, 20_000])
        opener, closer = r.choice([("[", "]"), ('{"a":', "}")])
        nested = opener * depth + "1" + closer * depth
        if r.random() < 0.5:
            nested = '{"op":"send","room":"r","cid":"c","text":"t","mentions":' + nested + "}"
        if binary:  # msgpack: a fixarray of one element, `depth` times
            return b"\x91" * depth + b"\x01"
        return nested

    def msgpack_garbage(self, binary: bool) -> bytes:
        r = self.rng
        choices = [
            lambda: msgpack.packb(msgpack_safe(self.value()), use_bin_type=r.random() < 0.5),
            lambda: msgpack.packb({"op": "send", "room": r.choice(self.rooms), "text": b"bytes not str", "cid": "c"}),
            lambda: msgpack.packb({b"op": b"ping", 7: "x", None: True}),  # keys that are not strings
            lambda: msgpack.packb(msgpack.ExtType(r.randint(0, 127), r.randbytes(r.randint(0, 16)))),
            lambda: b"\x82\xa2op\xa4ping\xa3ref\xd6\xff" + r.randbytes(4),  # a timestamp (ext -1) as ref
            lambda: msgpack.packb(self.valid_frame())[: -r.randint(1, 3)],  # truncated
            lambda: msgpack.packb(self.valid_frame()) + b"\xc0",  # trailing bytes
            lambda: b"\xdf\xff\xff\xff\xff",  # a map claiming 4 billion entries
            lambda: b"\xdb\xff\xff\xff\xff" + b"a" * 10,  # a str claiming 4 GiB
            lambda: bytes([r.choice([0xc1, 0xd4, 0xc7, 0xd9, 0xde])]) + r.randbytes(r.randint(0, 8)),
        ]
        return r.choice(choices)()

    def cross_encoded(self, binary: bool) -> str | bytes:
        """JSON in a text frame on msgpack, msgpack or JSON bytes in a binary frame on JSON."""
        frame = self.valid_frame()
        if binary:
            return json.dumps(frame)
        return msgpack.packb(frame) if self.rng.random() < 0.5 else json.dumps(frame).encode()

    def oversize(self, binary: bool) -> str | bytes:
        frame = {"op": "send", "room": self.rooms[0], "cid": "big", "text": "x" * OVERSIZE}
        return self.encode(frame, binary)


def msgpack_safe(obj):
    """`obj` with integers clamped to what msgpack can carry (-2**63 to 2**64-1)."""
    if isinstance(obj, bool) or not isinstance(obj, (int, list, dict)):
        return obj
    if isinstance(obj, int):
        return min(max(obj, -2**63), 2**64 - 1)
    if isinstance(obj, list):
        return [msgpack_safe(v) for v in obj]
    return {k: msgpack_safe(v) for k, v in obj.items()}


# ---------------------------------------------------------------------------- connections


@dataclass
class Seen:
    """What the fuzzing connections got back, over all of them."""

    frames: int = 0
    connections: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    closes: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def decode(msg: aiohttp.WSMessage) -> dict:
    if msg.type == aiohttp.WSMsgType.TEXT:
        return json.loads(msg.data)
    return msgpack.unpackb(msg.data)


async def fuzz(session: aiohttp.ClientSession, ws_url: str, token: str, binary: bool, fuzzer: FrameFuzzer,
               seen: Seen) -> None:
    """Send `FRAMES_EACH` fuzz frames on one logical connection, reconnecting after every close."""
    protocol = "chat.v1.msgpack" if binary else "chat.v1.json"
    pack = msgpack.packb if binary else json.dumps
    budget = FRAMES_EACH
    while budget > 0:
        try:
            ws = await session.ws_connect(ws_url, protocols=(protocol,), max_msg_size=0)
        except aiohttp.WSServerHandshakeError as exc:
            seen.problems.append(f"handshake refused with {exc.status}")
            return
        seen.connections += 1
        send = ws.send_bytes if binary else ws.send_str
        await send(pack({"op": "hello", "token": token}))
        welcome = decode(await ws.receive(timeout=10))
        if welcome.get("op") != "welcome":
            seen.problems.append(f"hello answered with {welcome}")
            return
        synced: dict[str, asyncio.Event] = {}
        reader = asyncio.create_task(read_all(ws, synced, seen))
        try:
            sent = 0
            while budget > 0 and not ws.closed:
                data = fuzzer.next(binary)
                try:
                    if isinstance(data, bytes):
                        await ws.send_bytes(data)
                    else:
                        await ws.send_str(data)
                except (ConnectionError, aiohttp.ClientError):
                    break
                budget -= 1
                sent += 1
                seen.frames += 1
                if sent % SYNC_EVERY == 0:
                    ref = f"sync-{uuid.uuid4().hex[:8]}"
                    synced[ref] = asyncio.Event()
                    with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                        await send(pack({"op": "ping", "ref": ref}))
                    waiter = asyncio.ensure_future(synced[ref].wait())
                    done, _ = await asyncio.wait([waiter, reader], timeout=10, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    if not done:
                        seen.problems.append("the server answered no ping within 10 s")
                        budget = 0
        finally:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(ws.close(), 5)
            await asyncio.wait_for(reader, 15)


async def read_all(ws: aiohttp.ClientWebSocketResponse, synced: dict[str, asyncio.Event], seen: Seen) -> None:
    """Every server frame until the close: error codes and shapes, pongs to sync on, the close code."""
    while True:
        msg = await ws.receive()
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                        aiohttp.WSMsgType.ERROR):
            break
        frame = decode(msg)
        if frame.get("op") == "error":
            code = frame.get("code")
            seen.codes[code] = seen.codes.get(code, 0) + 1
            if not isinstance(frame.get("message"), str) or not frame["message"]:
                seen.problems.append(f"error frame without a message: {frame}")
        elif frame.get("op") == "pong" and frame.get("ref") in synced:
            synced[frame["ref"]].set()
    code = ws.close_code
    if code is not None and code != 1000:  # 1000: the client's own close
        seen.closes[code] = seen.closes.get(code, 0) + 1


# ---------------------------------------------------------------------------- the well-behaved pair


@dataclass
class Conversation:
    acks: list[frames.Ack] = field(default_factory=list)
    texts: dict[int, str] = field(default_factory=dict)
    received: list[frames.Message] = field(default_factory=list)


async def chat(alice: ChatClient, room: str, stop: asyncio.Event, talk: Conversation) -> None:
    """Alice sends one message at a time (well within the rate limit) until told to stop."""
    n = 0
    while not stop.is_set():
        text = f"steady {n}"
        ack = await alice.send(room, text)
        talk.acks.append(ack)
        talk.texts[ack.seq] = text
        n += 1
        await asyncio.sleep(0.08)  # ~12 a second: well under CHAT_SEND_RATE


async def listen(bob: ChatClient, room: str, talk: Conversation) -> None:
    """Bob collects the room's messages until cancelled."""
    while True:
        event = await bob.next_event(timeout=None)
        if isinstance(event, frames.Message) and event.room == room:
            talk.received.append(event)


async def caught_up(talk: Conversation, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not talk.received or talk.received[-1].seq < talk.acks[-1].seq:
            await asyncio.sleep(0.02)


# ---------------------------------------------------------------------------- the test


async def test_thousands_of_malformed_frames_harm_no_one(server, make_account, caplog):
    caplog.set_level(logging.ERROR)
    alice, bob, *fuzz_accounts = [await make_account("fz") for _ in range(2 + FUZZERS)]
    room = await alice.api.create_room("fuzzed", join_policy="open")
    for account in (bob, *fuzz_accounts):
        await account.api.post(f"/api/rooms/{room['id']}/members", {"user_id": account.id})
    private = await alice.api.create_room("not for fuzzers")
    rng = random.Random(SEED)
    users = [a.id for a in (alice, bob, *fuzz_accounts)]

    seen = Seen()
    talk = Conversation()
    stop = asyncio.Event()
    async with (
        ChatClient(server.ws_url, alice.token, reconnect=False) as alice_client,
        ChatClient(server.ws_url, bob.token, reconnect=False) as bob_client,
        aiohttp.ClientSession() as session,
    ):
        talker = asyncio.create_task(chat(alice_client, room["id"], stop, talk))
        listener = asyncio.create_task(listen(bob_client, room["id"], talk))
        fuzzers = [
            fuzz(session, server.ws_url, account.token, binary=i % 2 == 1,
                 fuzzer=FrameFuzzer(random.Random(rng.random()), [room["id"], private["id"]], users), seen=seen)
            for i, account in enumerate(fuzz_accounts)
        ]
        try:
            async with asyncio.timeout(60):
                await asyncio.gather(*fuzzers)
                stop.set()
                await talker
                await caught_up(talk)
        finally:
            talker.cancel()
            listener.cancel()
        assert not listener.done(), listener  # bob's connection never broke
        after = await bob_client.send(room["id"], "after the storm")
        assert after.seq > talk.acks[-1].seq

    about = f"(seed {SEED}; frames {seen.frames}, connections {seen.connections}, codes {seen.codes}, " \
            f"closes {seen.closes})"
    assert seen.problems == [], about
    assert seen.frames >= FUZZERS * FRAMES_EACH, about
    assert set(seen.codes) <= ALLOWED_CODES, about
    assert set(seen.closes) <= ALLOWED_CLOSES, about
    assert CloseCode.POLICY in seen.closes and CloseCode.TOO_BIG in seen.closes, about  # the fuzz reached them
    # The pair: every message of the room once, in gapless order; every ack's message with its text.
    seqs = [m.seq for m in talk.received]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), about
    by_seq = {m.seq: m for m in talk.received}
    assert [a.seq for a in talk.acks] == sorted({a.seq for a in talk.acks})
    assert all(by_seq[seq].text == text and by_seq[seq].from_.id == alice.id for seq, text in talk.texts.items())
    # History agrees: gapless from 1, nothing the fuzzers did broke storage.
    history = []
    after_seq = 0
    while True:
        page = await bob.api.get(f"/api/rooms/{room['id']}/messages", after=after_seq, limit=100)
        history += page["messages"]
        if not page["more"]:
            break
        after_seq = page["messages"][-1]["seq"]
    assert [m["seq"] for m in history] == list(range(1, len(history) + 1))
    assert history[-1]["text"] == "after the storm"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


# ---------------------------------------------------------------------------- below the chat protocol


def raw_frame(first_byte: int, payload: bytes, length: int | None = None) -> bytes:
    """A masked client frame written by hand: FIN/RSV/opcode byte, length, mask, payload."""
    n = len(payload) if length is None else length
    if n < 126:
        head = bytes([first_byte, 0x80 | n])
    elif n < 65536:
        head = bytes([first_byte, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([first_byte, 0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


# Frames RFC 6455 forbids, and the close it prescribes: 1002 protocol error, 1007 bad data, 1009 too big.
PROTOCOL_VIOLATIONS = {
    "reserved opcode": (raw_frame(0x83, b"x"), 1002),
    "RSV1 without an extension": (raw_frame(0xC1, b'{"op":"ping"}'), 1002),
    "continuation with nothing to continue": (raw_frame(0x80, b"x"), 1002),
    "fragmented ping": (raw_frame(0x09, b"x"), 1002),
    "ping over 125 bytes": (raw_frame(0x89, b"x" * 200), 1002),
    "text frame of invalid UTF-8": (raw_frame(0x81, b'{"op":"\xff"}'), 1007),
    "close with a reserved code": (raw_frame(0x88, struct.pack("!H", 999)), 1002),
    "new message inside a fragmented one": (raw_frame(0x01, b'{"op":') + raw_frame(0x81, b'"ping"}'), 1002),
    "a length of 2**62": (raw_frame(0x81, b"", length=2**62), 1009),
}


async def test_websocket_protocol_violations_close_that_connection_only(server, make_account):
    alice, bob = await make_account("raw"), await make_account("raw")
    room = await alice.api.create_room("raw frames")
    await alice.api.add_member(room["id"], bob.id)
    closes = {}
    async with ChatClient(server.ws_url, bob.token, reconnect=False) as bystander, aiohttp.ClientSession() as session:
        for name, (data, _) in PROTOCOL_VIOLATIONS.items():
            ws = await session.ws_connect(server.ws_url, protocols=("chat.v1.json",))
            await ws.send_str(json.dumps({"op": "hello", "token": alice.token}))
            assert json.loads((await ws.receive(timeout=5)).data)["op"] == "welcome"
            ws._writer.transport.write(data)  # past aiohttp's own checks, straight onto the socket
            while (msg := await ws.receive(timeout=5)).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                assert msg.type == aiohttp.WSMsgType.TEXT, (name, msg)
            closes[name] = ws.close_code
            await ws.close()
            assert (await bystander.send(room["id"], f"after {name}")).seq > 0
    assert closes == {name: code for name, (_, code) in PROTOCOL_VIOLATIONS.items()}
