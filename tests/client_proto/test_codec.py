"""Codec tests: pure, no sockets, no event loop (docs/protocol.md §3, §7)."""

from __future__ import annotations

import json

import msgpack
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client_proto.codec import (
    JSON_SUBPROTOCOL,
    MSGPACK_SUBPROTOCOL,
    SUBPROTOCOLS,
    Codec,
    client_codec,
    server_codec,
)
from client_proto.errors import ErrorCode, FrameError
from client_proto.frames import (
    CLIENT_OPS,
    INT64_MAX,
    SERVER_OPS,
    Ack,
    ClientFrame,
    Edit,
    Error,
    Gap,
    Hello,
    HistoryReply,
    HistoryRequest,
    Join,
    Leave,
    Limits,
    Message,
    Notify,
    Ok,
    Ping,
    RoomDeleted,
    Pong,
    PresenceReply,
    PresenceRequest,
    React,
    Reaction,
    Read,
    ReadEvent,
    Recall,
    Recalled,
    Reply,
    RoomState,
    Send,
    ServerFrame,
    SystemInfo,
    Typing,
    TypingEvent,
    Update,
    User,
    Welcome,
)

ALICE = User(id="u1", name="alice", display="Alice")
BOT = User(id="u2", name="helper", display="Helper", bot=True)
TEXT_MSG = Message(
    room="r1", seq=7, id="m7", ts=1_700_000_000_000, from_=ALICE, kind="text",
    text="hi @helper", cid="c-1", reply_to=3, mentions=["u2"],
)
EDIT_ENTRY = Message(
    room="r1", seq=10, id="m10", ts=2, from_=ALICE, kind="update",
    update=Update(type="edited", target=7, text="hi @helper!", edited_ts=2),
)
REACTION_ENTRY = Message(
    room="r1", seq=11, id="m11", ts=3, from_=BOT, kind="update",
    update=Update(type="reaction", target=7, emoji="👍", on=False),
)
FOLDED_MSG = Message(
    room="r1", seq=12, id="m12", ts=4, from_=BOT, kind="text", text="re", reply_to=7,
    reply=Reply(seq=7, from_=ALICE, excerpt="hi @helper"), edited_ts=5,
    reactions=[Reaction(emoji="👍", count=2, me=True), Reaction(emoji="🎉", count=1)], pinned=False,
)
SYSTEM_MSG = Message(
    room="r1", seq=8, id="m8", ts=1_700_000_000_001, from_=None, kind="system", text="",
    system=SystemInfo(type="member.joined", data={"user": {"id": "u2", "name": "helper"}}),
)

CLIENT_FRAMES = [
    Hello(token="tok"),
    Hello(token="tok", resume={"r1": 7, "r2": 0}, ref=1),
    Send(room="r1", text="hello", cid="c-1", ref=2),
    Send(room="r1", text="hey all", cid="c-2", reply_to=7, mentions="all", ref="s-1"),
    Send(room="r1", text="hey", cid="c-3", mentions=["u1", "u2"]),
    HistoryRequest(room="r1"),
    HistoryRequest(room="r1", before=10, limit=100, ref=3),
    HistoryRequest(room="r1", after=0, limit=1),
    Join(room="r1", ref=4),
    Leave(room="r1", ref=5),
    Typing(room="r1"),
    Read(room="r1", seq=7, ref=6),
    Recall(room="r1", seq=7, ref=7),
    PresenceRequest(room="r1", ref=8),
    Edit(room="r1", seq=7, text="fixed", ref=9),
    React(room="r1", seq=7, emoji="👍"),
    React(room="r1", seq=7, emoji="👍", on=False, ref="x"),
    Ping(),
    Ping(ref="p"),
]

SERVER_FRAMES = [
    Welcome(
        user=ALICE, session="s1", heartbeat=25.0, ref=1,
        limits=Limits(max_frame=65536, max_text=4000),
        rooms=[RoomState(id="r1", name="general", last_seq=8, read_seq=7, unread=1, mentions=1, kind="direct")],
    ),
    Ack(room="r1", seq=7, id="m7", ts=1_700_000_000_000, dup=False, ref=2),
    Ack(room="r1", seq=7, id="m7", ts=1_700_000_000_000, dup=True, ref="s-1"),
    TEXT_MSG,
    SYSTEM_MSG,
    Message(room="r1", seq=9, id="m9", ts=1, from_=ALICE, kind="text", recalled=True),
    EDIT_ENTRY,
    REACTION_ENTRY,
    FOLDED_MSG,
    Ok(seq=10, ref=9),
    HistoryReply(room="r1", messages=[TEXT_MSG, SYSTEM_MSG], more=True, last_seq=9, ref=3),
    HistoryReply(room="r1", messages=[], more=False),
    Ok(ref=4),
    TypingEvent(room="r1", user=BOT),
    ReadEvent(room="r1", seq=7),
    Recalled(room="r1", seq=7, by=ALICE),
    PresenceReply(room="r1", online=["u1", "u2"], count=2, ref=8),
    Pong(ts=1_700_000_000_000, ref="p"),
    Error(code="rate_limited", message="slow down", retry_after=1500, ref=2),
    Error(code="bad_frame", message="a frame must be an object"),
    Gap(room="r1", from_=1, to=500),
    Notify(type="invitation", invitation={"id": "i1", "status": "pending", "note": None}),
    Notify(type="join_request", request={"id": "jr1", "room": "r1", "status": "pending", "note": "hi"}),
    RoomDeleted(room="r1"),
    Notify(type="mention", room="r1", seq=7, from_={"id": "u1", "name": "alice", "display": "Alice", "bot": False}),
    Notify(type="like", post="p1", by={"id": "u2", "name": "helper", "display": "Helper", "bot": True}),
]

BOTH = pytest.mark.parametrize("name", SUBPROTOCOLS)


def tag(frame: msgspec.Struct) -> str:
    return type(frame).__struct_config__.tag


def test_samples_cover_every_frame_type():
    assert {type(f) for f in CLIENT_FRAMES} == set(ClientFrame.__args__)
    assert {type(f) for f in SERVER_FRAMES} == set(ServerFrame.__args__)


# --------------------------------------------------------------------------
# Round trips and msgpack interoperability


@BOTH
@pytest.mark.parametrize("frame", CLIENT_FRAMES, ids=tag)
def test_client_frame_round_trip(name, frame):
    codec = server_codec(name)
    assert codec.decode(codec.encode(frame)) == frame


@BOTH
@pytest.mark.parametrize("frame", SERVER_FRAMES, ids=tag)
def test_server_frame_round_trip(name, frame):
    codec = client_codec(name)
    assert codec.decode(codec.encode(frame)) == frame


def test_codec_properties():
    assert server_codec(None).name == JSON_SUBPROTOCOL
    assert not server_codec(JSON_SUBPROTOCOL).binary
    assert client_codec(MSGPACK_SUBPROTOCOL).binary
    with pytest.raises(ValueError):
        Codec("chat.v2.json", ClientFrame)


@pytest.mark.parametrize("frame", CLIENT_FRAMES + SERVER_FRAMES, ids=tag)
def test_msgpack_interoperates_with_msgpack_package(frame):
    """Other clients use the reference msgpack library: same maps both ways."""
    as_json = json.loads(server_codec(JSON_SUBPROTOCOL).encode(frame))
    ours = server_codec(MSGPACK_SUBPROTOCOL).encode(frame)
    assert msgpack.unpackb(ours, raw=False) == as_json

    theirs = msgpack.packb(as_json, use_bin_type=True)
    decoder = server_codec if isinstance(frame, ClientFrame.__args__) else client_codec
    assert decoder(MSGPACK_SUBPROTOCOL).decode(theirs) == frame


def test_decode_accepts_text_and_bytes():
    codec = server_codec(JSON_SUBPROTOCOL)
    assert codec.decode('{"op":"ping","ref":1}') == Ping(ref=1)
    assert codec.decode(b'{"op":"ping","ref":1}') == Ping(ref=1)
    assert codec.decode(bytearray(b'{"op":"ping"}')) == Ping()


def test_same_op_decodes_by_direction():
    """`history`, `typing`, `read`, `presence` exist both ways with other fields."""
    assert server_codec(None).decode(b'{"op":"typing","room":"r1"}') == Typing(room="r1")
    event = b'{"op":"typing","room":"r1","user":{"id":"u2","name":"h","display":"H","bot":true}}'
    assert client_codec(None).decode(event) == TypingEvent(
        room="r1", user=User(id="u2", name="h", display="H", bot=True)
    )


# --------------------------------------------------------------------------
# Error mapping (docs/protocol.md §7)


def decode_error(data: bytes | str, name: str = JSON_SUBPROTOCOL) -> FrameError:
    with pytest.raises(FrameError) as info:
        server_codec(name).decode(data)
    return info.value


def as_bytes(name: str, obj: object) -> bytes:
    """`obj` encoded the way a client of sub-protocol `name` would send it."""
    return json.dumps(obj).encode() if name == JSON_SUBPROTOCOL else msgpack.packb(obj)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        (JSON_SUBPROTOCOL, b'{"op":'),
        (JSON_SUBPROTOCOL, b"\xff\xfe"),
        (JSON_SUBPROTOCOL, b""),
        (JSON_SUBPROTOCOL, b"[" * 10_000),
        (MSGPACK_SUBPROTOCOL, b"\xc1"),
        (MSGPACK_SUBPROTOCOL, b"\x82\xa2op"),
        (MSGPACK_SUBPROTOCOL, b""),
    ],
)
def test_undecodable_is_bad_frame(name, data):
    assert decode_error(data, name).code == ErrorCode.BAD_FRAME


@BOTH
@pytest.mark.parametrize("obj", [["op", "ping"], "ping", 42, 1.5, None, True])
def test_not_an_object_is_bad_frame(name, obj):
    err = decode_error(as_bytes(name, obj), name)
    assert err.code == ErrorCode.BAD_FRAME
    assert err.ref is None


def test_deeply_nested_value_is_bad_frame_not_recursion_error():
    nested = b"[" * 5000 + b"]" * 5000
    err = decode_error(b'{"op":"ping","ref":1,"extra":' + nested + b"}")
    assert err.code == ErrorCode.BAD_FRAME
    nested_msgpack = b"\x91" * 5000 + b"\x01"
    err = decode_error(b"\x82\xa2op\xa4ping\xa1x" + nested_msgpack, MSGPACK_SUBPROTOCOL)
    assert err.code == ErrorCode.BAD_FRAME


@BOTH
@pytest.mark.parametrize("ref", [17, "abc"])
def test_unknown_op_carries_ref(name, ref):
    err = decode_error(as_bytes(name, {"op": "shout", "ref": ref, "room": "r1"}), name)
    assert err.code == ErrorCode.UNKNOWN_OP
    assert err.ref == ref


def test_server_op_sent_by_client_is_unknown():
    assert decode_error(b'{"op":"welcome","ref":1}').code == ErrorCode.UNKNOWN_OP


def test_missing_op_is_invalid_with_ref():
    err = decode_error(b'{"ref":5,"room":"r1"}')
    assert (err.code, err.ref) == (ErrorCode.INVALID, 5)
    assert "op" in err.message


@BOTH
@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"op": "send", "room": "r1", "text": "hi", "ref": 1}, "cid"),
        ({"op": "send", "cid": "c", "text": "hi", "ref": 1}, "room"),
        ({"op": "hello", "ref": 1}, "token"),
        ({"op": "read", "room": "r1", "ref": 1}, "seq"),
        ({"op": "recall", "seq": 3, "ref": 1}, "room"),
    ],
)
def test_missing_field_is_invalid_naming_it(name, obj, field):
    err = decode_error(as_bytes(name, obj), name)
    assert err.code == ErrorCode.INVALID
    assert f"`{field}`" in err.message
    assert err.ref == 1


BAD_FIELDS = [
    ({"op": "read", "room": "r1", "seq": True}, "seq"),
    ({"op": "read", "room": "r1", "seq": "5"}, "seq"),
    ({"op": "read", "room": "r1", "seq": -1}, "seq"),
    ({"op": "read", "room": "r1", "seq": INT64_MAX + 1}, "seq"),
    ({"op": "recall", "room": "r1", "seq": 0}, "seq"),
    ({"op": "send", "room": "r1", "text": 5, "cid": "c"}, "text"),
    ({"op": "send", "room": "r1", "text": "t", "cid": "c" * 65}, "cid"),
    ({"op": "send", "room": "r1", "text": "t", "cid": ""}, "cid"),
    ({"op": "send", "room": "r1", "text": "t", "cid": "c", "reply_to": True}, "reply_to"),
    ({"op": "send", "room": "r1", "text": "t", "cid": "c", "mentions": "everyone"}, "mentions"),
    ({"op": "send", "room": "r1", "text": "t", "cid": "c", "mentions": "ALL"}, "mentions"),
    ({"op": "send", "room": "r1", "text": "t", "cid": "c", "mentions": [1]}, "mentions"),
    ({"op": "history", "room": "r1", "limit": 0}, "limit"),
    ({"op": "history", "room": "r1", "limit": 101}, "limit"),
    ({"op": "history", "room": "r1", "before": "9"}, "before"),
    ({"op": "join", "room": "r" * 65}, "room"),
    ({"op": "hello", "token": "t", "resume": {"r1": "7"}}, "resume"),
    ({"op": "hello", "token": "t", "resume": [1]}, "resume"),
]


@BOTH
@pytest.mark.parametrize(("obj", "field"), BAD_FIELDS)
def test_wrong_field_is_invalid_naming_it(name, obj, field):
    err = decode_error(as_bytes(name, {**obj, "ref": "r-9"}), name)
    assert err.code == ErrorCode.INVALID
    assert field in err.message
    assert err.ref == "r-9"


@pytest.mark.parametrize("ref", ["x" * 65, True, 1.5, [1], {"a": 1}, INT64_MAX + 1])
def test_bad_ref_is_invalid_and_not_echoed(ref):
    err = decode_error(json.dumps({"op": "ping", "ref": ref}))
    assert err.code == ErrorCode.INVALID
    assert "ref" in err.message
    assert err.ref is None


def test_limits_at_the_edges_are_accepted():
    codec = server_codec(None)
    assert codec.decode(json.dumps({"op": "ping", "ref": "x" * 64})).ref == "x" * 64
    cid = "c" * 64
    frame = codec.decode(json.dumps({"op": "send", "room": "r1", "text": "t", "cid": cid}))
    assert frame.cid == cid
    for limit in (1, 100):
        assert codec.decode(json.dumps({"op": "history", "room": "r", "limit": limit})).limit == limit
    assert codec.decode(b'{"op":"history","room":"r"}').limit == 50


@BOTH
def test_mentions_all_or_list(name):
    codec = server_codec(name)
    base = {"op": "send", "room": "r1", "text": "t", "cid": "c"}
    assert codec.decode(as_bytes(name, {**base, "mentions": "all"})).mentions == "all"
    assert codec.decode(as_bytes(name, {**base, "mentions": ["u1"]})).mentions == ["u1"]
    assert codec.decode(as_bytes(name, {**base, "mentions": None})).mentions is None


@BOTH
def test_unknown_fields_are_ignored(name):
    obj = {"op": "read", "room": "r1", "seq": 3, "ref": 1, "future": {"x": [1, 2]}, "z": None}
    assert server_codec(name).decode(as_bytes(name, obj)) == Read(room="r1", seq=3, ref=1)
    event = {"op": "ok", "ref": 2, "extra": "ignored"}
    assert client_codec(name).decode(as_bytes(name, event)) == Ok(ref=2)


# --------------------------------------------------------------------------
# Encoding shape


def encoded(frame: msgspec.Struct) -> dict:
    return json.loads(server_codec(None).encode(frame))


def test_room_deleted_and_join_request_notify_on_the_wire():
    """docs/protocol.md §12.14: `{"op":"room_deleted","room"}` and nothing more; a join request rides `notify`."""
    codec = server_codec(JSON_SUBPROTOCOL)
    assert json.loads(codec.encode(RoomDeleted(room="r1"))) == {"op": "room_deleted", "room": "r1"}
    request = {"id": "jr1", "room": "r1", "user": {"id": "u1"}, "note": "", "status": "pending", "created": 1}
    assert json.loads(codec.encode(Notify(type="join_request", request=request))) == {
        "op": "notify", "type": "join_request", "request": request}


def test_from_and_kind_always_encoded():
    system = encoded(SYSTEM_MSG)
    assert "from" in system and system["from"] is None
    assert system["kind"] == "system"
    assert "from_" not in system
    text = encoded(TEXT_MSG)
    assert text["from"] == {"id": "u1", "name": "alice", "display": "Alice", "bot": False, "avatar": None}
    assert text["kind"] == "text"
    assert encoded(Gap(room="r1", from_=3, to=9)) == {"op": "gap", "room": "r1", "from": 3, "to": 9}


def test_optional_fields_omitted_when_none():
    msg = Message(room="r1", seq=1, id="m1", ts=5, from_=ALICE, kind="text", text="hi")
    assert set(encoded(msg)) == {"op", "room", "seq", "id", "ts", "from", "kind", "text"}
    assert encoded(Error(code="invalid", message="m")) == {"op": "error", "code": "invalid", "message": "m"}
    assert encoded(Ok()) == {"op": "ok"}
    assert encoded(Send(room="r", text="t", cid="c")) == {"op": "send", "room": "r", "text": "t", "cid": "c"}
    assert encoded(Hello(token="t")) == {"op": "hello", "token": "t"}


def test_dup_always_encoded():
    assert encoded(Ack(room="r", seq=1, id="m", ts=2, dup=False))["dup"] is False


def test_message_without_from_or_kind_is_invalid_for_clients():
    base = {"op": "message", "room": "r1", "seq": 1, "id": "m1", "ts": 5}
    for missing, obj in (("from", {**base, "kind": "text"}), ("kind", {**base, "from": None})):
        with pytest.raises(FrameError) as info:
            client_codec(None).decode(json.dumps(obj))
        assert info.value.code == ErrorCode.INVALID
        assert f"`{missing}`" in info.value.message


# --------------------------------------------------------------------------
# Properties

codecs = st.sampled_from(SUBPROTOCOLS)
int64 = st.integers(-INT64_MAX - 1, INT64_MAX)
seqs = st.integers(0, INT64_MAX)
positive_seqs = st.integers(1, INT64_MAX)
ids = st.text(min_size=1, max_size=64)
refs = st.none() | int64 | st.text(max_size=64)
opt = st.none().__or__

client_frames = st.one_of(
    st.builds(Hello, token=st.text(min_size=1, max_size=512), ref=refs,
              resume=opt(st.dictionaries(ids, seqs, max_size=4))),
    st.builds(Send, room=ids, text=st.text(), cid=ids, ref=refs, reply_to=opt(positive_seqs),
              mentions=st.none() | st.just("all") | st.lists(ids, max_size=4)),
    st.builds(HistoryRequest, room=ids, before=opt(seqs), after=opt(seqs),
              limit=st.integers(1, 100), ref=refs),
    *(st.builds(cls, room=ids, ref=refs) for cls in (Join, Leave, Typing, PresenceRequest)),
    st.builds(Read, room=ids, seq=seqs, ref=refs),
    st.builds(Recall, room=ids, seq=positive_seqs, ref=refs),
    st.builds(Ping, ref=refs),
)

json_values = st.recursive(
    st.none() | st.booleans() | int64 | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
users = st.builds(User, id=ids, name=st.text(), display=st.text(), bot=st.booleans())
messages = st.builds(
    Message, room=st.text(), seq=seqs, id=st.text(), ts=int64, from_=opt(users),
    kind=st.sampled_from(["text", "system"]), text=opt(st.text()), cid=opt(st.text()),
    reply_to=opt(seqs), mentions=st.none() | st.just("all") | st.lists(st.text(), max_size=3),
    recalled=opt(st.booleans()),
    system=opt(st.builds(SystemInfo, type=st.text(), data=st.dictionaries(st.text(), json_values))),
)
server_frames = st.one_of(
    st.builds(Welcome, user=users, session=st.text(), ref=refs,
              heartbeat=st.floats(allow_nan=False, allow_infinity=False),
              limits=st.builds(Limits, max_frame=int64, max_text=int64),
              rooms=st.lists(st.builds(RoomState, id=st.text(), name=st.text(), last_seq=seqs,
                                       read_seq=seqs, unread=seqs), max_size=3)),
    st.builds(Ack, room=st.text(), seq=seqs, id=st.text(), ts=int64, dup=st.booleans(), ref=refs),
    messages,
    st.builds(HistoryReply, room=st.text(), messages=st.lists(messages, max_size=3),
              more=st.booleans(), last_seq=st.one_of(st.none(), seqs), ref=refs),
    st.builds(Ok, ref=refs),
    st.builds(TypingEvent, room=st.text(), user=users),
    st.builds(ReadEvent, room=st.text(), seq=seqs),
    st.builds(Recalled, room=st.text(), seq=seqs, by=users),
    st.builds(PresenceReply, room=st.text(), online=st.lists(st.text(), max_size=3),
              count=seqs, ref=refs),
    st.builds(Pong, ts=int64, ref=refs),
    st.builds(Error, code=st.sampled_from(list(ErrorCode)).map(str), message=st.text(),
              retry_after=opt(seqs), ref=refs),
    st.builds(Gap, room=st.text(), from_=seqs, to=seqs),
    st.builds(Notify, type=st.text(), invitation=opt(st.dictionaries(st.text(), json_values)),
              request=opt(st.dictionaries(st.text(), json_values))),
    st.builds(RoomDeleted, room=st.text()),
)


def decodes_or_frame_error(codec: Codec, data: bytes | str) -> None:
    try:
        frame = codec.decode(data)
    except FrameError as err:
        assert err.code in ErrorCode
        assert err.ref is None or isinstance(err.ref, (int, str))
    else:
        assert isinstance(frame, ClientFrame.__args__)


@settings(max_examples=300)
@given(name=codecs, data=st.binary(max_size=200))
def test_any_bytes_decode_or_raise_frame_error(name, data):
    decodes_or_frame_error(server_codec(name), data)


@settings(max_examples=300)
@given(name=codecs, data=st.text(alphabet=st.characters(), max_size=200))
def test_any_text_decodes_or_raises_frame_error(name, data):
    decodes_or_frame_error(server_codec(name), data)


field_names = st.sampled_from(
    ["ref", "room", "text", "cid", "seq", "token", "resume", "limit", "before", "after",
     "mentions", "reply_to"]
) | st.text(max_size=6)


@settings(max_examples=300)
@given(
    name=codecs,
    op=st.sampled_from(sorted(CLIENT_OPS | SERVER_OPS)) | st.text(max_size=6),
    fields=st.dictionaries(field_names, json_values, max_size=6),
)
def test_any_object_with_op_is_a_frame_or_a_field_error(name, op, fields):
    """Objects are never `bad_frame`: a wrong one is `unknown_op` or `invalid`."""
    data = as_bytes(name, {**fields, "op": op})
    try:
        frame = server_codec(name).decode(data)
    except FrameError as err:
        assert err.code in (ErrorCode.UNKNOWN_OP, ErrorCode.INVALID)
        if err.code == ErrorCode.UNKNOWN_OP:
            assert op not in CLIENT_OPS
    else:
        assert tag(frame) == op


@settings(max_examples=250)
@given(name=codecs, frame=client_frames)
def test_client_frames_round_trip(name, frame):
    codec = server_codec(name)
    assert codec.decode(codec.encode(frame)) == frame


@settings(max_examples=250)
@given(name=codecs, frame=server_frames)
def test_server_frames_round_trip(name, frame):
    codec = client_codec(name)
    assert codec.decode(codec.encode(frame)) == frame


@BOTH
def test_timeline_frames_on_the_wire(name):
    """docs/protocol.md §6.4/§6.5 field names, in JSON and in msgpack."""
    codec = server_codec(name)
    raw = codec.encode(FOLDED_MSG)
    wire = json.loads(raw) if not codec.binary else msgpack.unpackb(raw)
    assert (wire["reply"]["seq"], wire["reply"]["from"]["id"], wire["reply"]["excerpt"]) == (7, "u1", "hi @helper")
    assert set(wire["reply"]) == {"seq", "from", "excerpt"}
    assert wire["reactions"] == [{"emoji": "👍", "count": 2, "me": True}, {"emoji": "🎉", "count": 1, "me": False}]
    assert (wire["pinned"], wire["edited_ts"]) == (False, 5)
    raw = codec.encode(REACTION_ENTRY)
    wire = json.loads(raw) if not codec.binary else msgpack.unpackb(raw)
    assert wire["kind"] == "update" and "cid" not in wire and "text" not in wire
    assert wire["update"] == {"type": "reaction", "target": 7, "emoji": "👍", "on": False}
    react = {"op": "react", "room": "r1", "seq": 7, "emoji": "🎉"}
    data = json.dumps(react).encode() if not codec.binary else msgpack.packb(react)
    assert codec.decode(data) == React(room="r1", seq=7, emoji="🎉", on=True)
