"""Bad input over WebSocket (docs/protocol.md §7, §10.6): a clear error, the connection and everyone else go on;
repeated bad frames close 1008."""

from __future__ import annotations

import uuid

import pytest

from .conftest import MSGPACK, Closed


async def assert_both_carry_on(room_id, offender, bystander) -> None:
    ack = await offender.call("send", room=room_id, text="still fine", cid=uuid.uuid4().hex)
    for conn in (offender, bystander):
        assert (await conn.expect("message", seq=ack["seq"]))["text"] == "still fine"


async def test_malformed_frame_is_bad_frame_and_harms_no_one(pair):
    room_id, offender, bystander = pair
    for raw in ("{not json", "[1, 2, 3]", "42", '"hello"', "null", b"\xff\xfe\xfd", ""):  # bytes: not UTF-8
        await offender.send(raw)
        error = await offender.recv()
        assert error["op"] == "error" and error["code"] == "bad_frame", (raw, error)
        assert isinstance(error["message"], str) and error["message"]
        await assert_both_carry_on(room_id, offender, bystander)
    assert [f for f in await bystander.drain() if f["op"] == "error"] == []


async def test_malformed_msgpack_frame_is_bad_frame(make_account, connect):
    wire = await connect(await make_account(), protocol=MSGPACK)
    await wire.send(b"\xc1\x00")  # 0xc1 is never valid msgpack
    assert (await wire.recv())["code"] == "bad_frame"
    await wire.send(b"\x93\x01\x02\x03")  # a list, not a map
    assert (await wire.recv())["code"] == "bad_frame"
    assert (await wire.call("ping"))["op"] == "pong"


async def test_unknown_op_is_unknown_op_with_ref(pair):
    room_id, offender, bystander = pair
    for ref in (17, "u-17"):
        for op in ("dance", "welcome", "ack", "message"):  # server-only ops are unknown from a client too
            reply = await offender.request({"op": op, "room": room_id, "ref": ref})
            assert (reply["op"], reply["code"], reply["ref"]) == ("error", "unknown_op", ref), (op, reply)
    await assert_both_carry_on(room_id, offender, bystander)


async def test_wrong_fields_are_invalid_with_ref_and_name_the_field(pair):
    room_id, offender, bystander = pair
    for frame, field in (
        ({"op": "send", "room": 5, "text": "x", "cid": "c"}, "room"),
        ({"op": "send", "room": "r" * 65, "text": "x", "cid": "c"}, "room"),
        ({"op": "history", "room": "r", "before": "yesterday"}, "before"),
        ({"op": "read", "room": "r"}, "seq"),
        ({"op": "read", "room": "r", "seq": -1}, "seq"),
        ({"op": "recall", "room": "r", "seq": 2**70}, "seq"),
        ({"op": "join"}, "room"),
    ):
        reply = await offender.request({**frame, "ref": "bad"})
        assert (reply["op"], reply["code"], reply["ref"]) == ("error", "invalid", "bad"), (frame, reply)
        assert field in reply["message"], (frame, reply["message"])
    await assert_both_carry_on(room_id, offender, bystander)


async def test_repeated_bad_frames_close_1008_and_others_carry_on(pair):
    room_id, offender, bystander = pair
    errors = 0
    for _ in range(60):
        try:
            await offender.send("garbage")
        except ConnectionError:
            break
    with pytest.raises(Closed) as closed:
        while True:
            assert (await offender.recv())["code"] == "bad_frame"
            errors += 1
    assert closed.value.code == 1008
    assert errors >= 5  # a few mistakes are forgiven before the cut
    ack = await bystander.call("send", room=room_id, text="unharmed", cid="unharmed")
    assert (await bystander.expect("message", seq=ack["seq"]))["text"] == "unharmed"


async def test_occasional_bad_frames_do_not_close(pair):
    _, offender, _ = pair
    for _ in range(5):
        await offender.send("{oops")
        assert (await offender.recv())["code"] == "bad_frame"
        assert (await offender.call("ping"))["op"] == "pong"


@pytest.mark.parametrize("field", ["text", "cid"])
async def test_nul_in_text_or_cid_is_invalid_and_the_batch_it_would_share_is_stored(pair, field):
    """PostgreSQL refuses NUL in text and SQLite's JSON functions cut strings at it: such a message
    must be refused alone, not fail the commit it would share with others."""
    room_id, offender, bystander = pair
    bad = {"op": "send", "room": room_id, "text": "hi", "cid": "c1", "ref": "bad"}
    bad[field] = "a\x00b"
    await offender.send(bad)
    await bystander.send({"op": "send", "room": room_id, "text": "same turn", "cid": "b1", "ref": "good"})
    error = await offender.expect("error")
    assert (error["code"], error["ref"]) == ("invalid", "bad")
    assert error["message"].startswith(f"{field}:")  # §3: the message names the field
    ack = await bystander.expect("ack")
    assert ack["ref"] == "good"
    await assert_both_carry_on(room_id, offender, bystander)
