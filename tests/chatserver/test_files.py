"""Files and images (docs/protocol.md §12.10), on both blob engines; both databases with
CHAT_TEST_DATABASE=postgresql. Real server, real sockets, real Pillow."""

from __future__ import annotations

import hashlib
import io
import os
import uuid

import pytest
from PIL import Image

from chatserver import keys
from chatserver.services.files import UNATTACHED_TTL_MS
from client_proto.http import ApiError
from storage.db import now_ms
from tests.chatserver.alumni_helpers import bound_class
from tests.chatserver.files_helpers import jpeg_with_location, kept, png, png_claiming
from tests.chatserver.test_posts import join_record


@pytest.fixture(params=["filesystem", "database"])
def engine(request) -> str:
    return request.param


@pytest.fixture
def extra_settings() -> dict:
    return {}


@pytest.fixture
def settings_overrides(engine, tmp_path, extra_settings) -> dict:
    return {"file_store": engine, "files_dir": str(tmp_path / "files"), **extra_settings}


def limits(**settings):
    return pytest.mark.parametrize("extra_settings", [settings], ids=[",".join(f"{k}={v}" for k, v in settings.items())])


async def send(account, room_id: str, text: str = "", files=None) -> dict:
    return await account.api.post(f"/api/rooms/{room_id}/messages",
                                   {"text": text, "cid": uuid.uuid4().hex, "files": files})


# ---------------------------------------------------------------------------- upload


async def test_upload_answers_with_the_file_and_its_type_read_from_the_bytes(make_account):
    alice = await make_account("alice")
    data = b"just some words\n" * 100
    info = await alice.api.upload(data, name="../../notes.txt", content_type="image/png")  # a false claim
    assert info == {"id": info["id"], "name": "notes.txt", "size": len(data), "content_type": "text/plain",
                    "sha256": hashlib.sha256(data).hexdigest()}
    status, headers, body = await alice.api.download(info["id"])
    assert (status, body) == (200, data)
    assert headers["Content-Type"].startswith("text/plain") and headers["Content-Length"] == str(len(data))
    picture = await alice.api.upload(png(64, 48), content_type="text/plain")
    assert (picture["content_type"], picture["width"], picture["height"], picture["name"]) == ("image/png", 64, 48, "file")


@limits(max_file=100_000)
async def test_an_oversized_upload_is_413_and_leaves_nothing(make_account, server):
    alice = await make_account("alice")
    before = await kept(server.app)
    with pytest.raises(ApiError) as declared:  # Content-Length says too much: refused before reading
        await alice.api.upload(os.urandom(100_001))
    assert (declared.value.status, declared.value.code) == (413, "too_large")

    async def endless():  # no Content-Length: cut while reading
        while True:
            yield b"x" * 65536

    with pytest.raises(ApiError) as streamed:
        await alice.api.upload(endless())
    assert (streamed.value.status, streamed.value.code) == (413, "too_large")
    assert await kept(server.app) == before
    exactly = await alice.api.upload(os.urandom(100_000))  # at the limit is fine
    assert exactly["size"] == 100_000


@limits(file_quota=250_000)
async def test_past_the_quota_is_413(make_account, server):
    alice, bob = await make_account("alice"), await make_account("bob")
    await alice.api.upload(os.urandom(100_000))
    await alice.api.upload(os.urandom(100_000))
    before = await kept(server.app)
    with pytest.raises(ApiError) as over:
        await alice.api.upload(os.urandom(100_000))
    assert (over.value.status, over.value.code) == (413, "too_large")
    assert await kept(server.app) == before
    assert (await bob.api.upload(os.urandom(100_000)))["size"] == 100_000  # the quota is per user


async def test_identical_uploads_share_one_blob(make_account, server):
    alice, bob = await make_account("alice"), await make_account("bob")
    data = os.urandom(50_000)
    first = await alice.api.upload(data)
    after_first = await kept(server.app)
    second = await bob.api.upload(data)
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    assert await kept(server.app) == {**after_first, "rows": after_first["rows"] + 1}


# ---------------------------------------------------------------------------- images


async def test_images_get_a_thumbnail_without_their_location(make_account):
    alice = await make_account("alice")
    original = jpeg_with_location(1600, 1200)
    assert Image.open(io.BytesIO(original)).getexif().get(0x8825)  # the upload does carry a location
    info = await alice.api.upload(original, name="trip.jpg")
    assert (info["content_type"], info["width"], info["height"]) == ("image/jpeg", 1600, 1200)
    status, headers, body = await alice.api.download(info["id"], thumb=True)
    assert status == 200 and headers["Content-Type"] == "image/webp"
    thumb = Image.open(io.BytesIO(body))
    assert thumb.format == "WEBP" and max(thumb.size) <= 320 and thumb.size == (320, 240)
    assert not thumb.getexif() and "exif" not in thumb.info
    status, _, body = await alice.api.download(info["id"])
    assert (status, body) == (200, original)  # the original itself is the uploader's, unchanged


async def test_an_identical_image_reuses_the_first_thumbnail(make_account):
    alice, bob = await make_account("alice"), await make_account("bob")
    data = png(500, 500)
    first, second = await alice.api.upload(data), await bob.api.upload(data)
    _, h1, t1 = await alice.api.download(first["id"], thumb=True)
    _, h2, t2 = await bob.api.download(second["id"], thumb=True)
    assert h1["ETag"] == h2["ETag"] and t1 == t2  # one blob: Pillow ran once for both


async def test_a_decompression_bomb_is_422_and_leaves_nothing(make_account, server):
    alice = await make_account("alice")
    before = await kept(server.app)
    bomb = png_claiming(30_000, 30_000)  # 900 million pixels in a few bytes
    with pytest.raises(ApiError) as refused:
        await alice.api.upload(bomb, name="bomb.png")
    assert (refused.value.status, refused.value.code) == (422, "invalid")
    assert await kept(server.app) == before


async def test_a_file_that_is_no_image_has_no_thumbnail(make_account):
    alice = await make_account("alice")
    info = await alice.api.upload(b"plain")
    status, _, _ = await alice.api.download(info["id"], thumb=True)
    assert status == 404


# ---------------------------------------------------------------------------- downloads


async def test_etag_and_if_none_match(make_account):
    alice = await make_account("alice")
    info = await alice.api.upload(os.urandom(10_000))
    status, headers, _ = await alice.api.download(info["id"])
    etag = headers["ETag"]
    assert status == 200 and etag == f'"{info["sha256"]}"'
    status, headers, body = await alice.api.download(info["id"], headers={"If-None-Match": etag})
    assert (status, body, headers["ETag"]) == (304, b"", etag)
    status, _, _ = await alice.api.download(info["id"], headers={"If-None-Match": '"other"'})
    assert status == 200


async def test_ranges(make_account):
    alice = await make_account("alice")
    data = os.urandom(1_500_000)  # several chunks of the database engine
    info = await alice.api.upload(data)
    for header, start, end in [("bytes=0-9", 0, 10), ("bytes=524280-524300", 524280, 524301),
                               ("bytes=1400000-", 1400000, 1500000), ("bytes=-100", 1499900, 1500000)]:
        status, headers, body = await alice.api.download(info["id"], headers={"Range": header})
        assert status == 206, header
        assert body == data[start:end], header
        assert headers["Content-Length"] == str(end - start)
        assert headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(data)}"
    status, headers, _ = await alice.api.download(info["id"], headers={"Range": "bytes=2000000-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize("content, kind", [
    (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "text/html"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml"),
    (b'<?xml version="1.0"?><note>hi</note>', "application/xml"),
])
async def test_what_a_browser_could_run_is_never_served_inline(make_account, content, kind):
    alice = await make_account("alice")
    info = await alice.api.upload(content, name="page.html", content_type="text/plain")
    assert info["content_type"] == kind
    status, headers, body = await alice.api.download(info["id"])
    assert (status, body) == (200, content)
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_javascript_claimed_by_the_uploader_is_an_attachment(make_account):
    alice = await make_account("alice")
    info = await alice.api.upload(b"alert(document.cookie)", content_type="text/javascript")
    _, headers, _ = await alice.api.download(info["id"])
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment;")


# ---------------------------------------------------------------------------- who may read


async def test_the_access_rule_of_a_room(make_account, make_room, connect):
    bob, carol, stranger = await make_account("bob"), await make_account("carol"), await make_account("stranger")
    room, alice = await make_room(members=[bob, carol])
    info = await alice.api.upload(png(50, 50), name="pic.png")
    for who in (bob, stranger):
        assert (await who.api.download(info["id"]))[0] == 403  # not attached yet: the uploader's alone
        assert (await who.api.download(info["id"], thumb=True))[0] == 403
    assert (await alice.api.download(info["id"]))[0] == 200
    ack = await send(alice, room["id"], files=[info["id"]])
    assert (await bob.api.download(info["id"]))[0] == 200
    assert (await bob.api.download(info["id"], thumb=True))[0] == 200
    assert (await stranger.api.download(info["id"]))[0] == 403
    status, _, _ = await stranger.api.download(info["id"], headers={"If-None-Match": f'"{info["sha256"]}"'})
    assert status == 403  # a conditional request is checked too
    await carol.api.delete(f"/api/rooms/{room['id']}/members/{carol.id}")  # carol leaves: no longer
    assert (await carol.api.download(info["id"]))[0] == 403
    wire = await connect(alice)
    await wire.call("recall", room=room["id"], seq=ack["seq"])  # recalled: members no longer
    assert (await bob.api.download(info["id"]))[0] == 403
    assert (await alice.api.download(info["id"]))[0] == 200  # the uploader still may


async def test_the_access_rule_of_posts(make_account, make_room):
    alice, record, _, (bob,) = await bound_class(make_account, make_room, members=1)
    await join_record(alice, record, bob)
    carol = await make_account("carol")
    public = await alice.api.upload(b"for everyone")
    private = await alice.api.upload(b"for the class")
    post = await alice.api.post("/api/posts", {"title": "open", "body": "", "files": [public["id"]]})
    assert post["files"] == [{"id": public["id"], "name": "file", "size": 12, "content_type": "text/plain"}]
    await alice.api.post(f"/api/alumni/{record['id']}/posts", {"title": "class", "body": "", "files": [private["id"]]})
    assert (await carol.api.download(public["id"]))[0] == 200  # a post in no record: anyone signed in
    assert (await bob.api.download(private["id"]))[0] == 200  # a member of its record
    assert (await carol.api.download(private["id"]))[0] == 403
    await alice.api.delete(f"/api/posts/{post['id']}")
    assert (await carol.api.download(public["id"]))[0] == 403  # the post is gone


async def test_unknown_files_and_no_token(make_account, server, http):
    alice = await make_account("alice")
    assert (await alice.api.download("f_unknown"))[0] == 404
    info = await alice.api.upload(b"x")
    assert (await http("GET", f"/api/files/{info['id']}")).status == 401
    assert (await http("POST", "/api/files", data=b"x")).status == 401


# ---------------------------------------------------------------------------- attaching


async def test_a_message_carries_its_files_live_and_in_history(make_account, make_room, connect):
    bob = await make_account("bob")
    room, alice = await make_room(members=[bob])
    picture = await alice.api.upload(png(30, 20), name="a.png")
    notes = await alice.api.upload(b"notes", name="notes.txt")
    a, b = await connect(alice), await connect(bob)
    ack = await a.call("send", room=room["id"], text="", cid="files-1", files=[picture["id"], notes["id"]])
    carried = [
        {"id": picture["id"], "name": "a.png", "size": picture["size"], "content_type": "image/png",
         "width": 30, "height": 20},
        {"id": notes["id"], "name": "notes.txt", "size": 5, "content_type": "text/plain"},
    ]
    live = await b.expect("message", room=room["id"], seq=ack["seq"])
    assert live["files"] == carried and live["text"] == ""
    history = await bob.api.get(f"/api/rooms/{room['id']}/messages")
    assert history["messages"][-1]["files"] == carried
    plain = await a.call("send", room=room["id"], text="no files", cid="plain")
    assert "files" not in await b.expect("message", room=room["id"], seq=plain["seq"])


async def test_what_may_be_attached(make_account, make_room, connect):
    bob = await make_account("bob")
    room, alice = await make_room(members=[bob])
    bobs = await bob.api.upload(b"bob's")
    mine = [(await alice.api.upload(f"file {i}".encode()))["id"] for i in range(11)]
    a = await connect(alice)
    empty = await a.request({"op": "send", "room": room["id"], "text": " ", "cid": "empty"})
    assert empty["code"] == "invalid"  # no text and no files
    foreign = await a.request({"op": "send", "room": room["id"], "text": "", "cid": "f", "files": [bobs["id"]]})
    assert foreign["code"] == "forbidden"
    unknown = await a.request({"op": "send", "room": room["id"], "text": "", "cid": "u", "files": ["f_nope"]})
    assert unknown["code"] == "not_found"
    too_many = await a.request({"op": "send", "room": room["id"], "text": "", "cid": "m", "files": mine})
    assert too_many["code"] == "invalid"
    with pytest.raises(ApiError) as http_foreign:
        await send(alice, room["id"], files=[bobs["id"]])
    assert http_foreign.value.status == 403
    ok = await a.call("send", room=room["id"], text="ten", cid="ten", files=mine[:10])
    assert ok["op"] == "ack"


# ---------------------------------------------------------------------------- avatars


async def test_avatars_of_users_and_rooms(make_account, make_room):
    bob, stranger = await make_account("bob"), await make_account("stranger")
    room, alice = await make_room(members=[bob])
    face = await alice.api.upload(png(100, 100))
    me = await alice.api.patch("/api/me", {"avatar": face["id"]})
    assert me["avatar"] == face["id"] and (await alice.api.get("/api/me"))["avatar"] == face["id"]
    members = await bob.api.get(f"/api/rooms/{room['id']}/members")
    assert {m["user"]["id"]: m["user"]["avatar"] for m in members["items"]}[alice.id] == face["id"]
    assert (await stranger.api.download(face["id"]))[0] == 200  # an avatar: anyone signed in
    logo = await alice.api.upload(png(64, 64, (0, 0, 0)))
    updated = await alice.api.patch(f"/api/rooms/{room['id']}", {"avatar": logo["id"]})
    assert updated["avatar"] == logo["id"] and updated["topic"] == room["topic"]
    assert (await bob.api.get(f"/api/rooms/{room['id']}"))["avatar"] == logo["id"]
    assert (await stranger.api.download(logo["id"], thumb=True))[0] == 200
    text = await alice.api.upload(b"not a picture")
    with pytest.raises(ApiError) as not_image:
        await alice.api.patch("/api/me", {"avatar": text["id"]})
    assert not_image.value.status == 422
    bobs = await bob.api.upload(png(10, 10))
    with pytest.raises(ApiError) as foreign:
        await alice.api.patch("/api/me", {"avatar": bobs["id"]})
    assert foreign.value.status == 403
    assert (await alice.api.patch("/api/me", {"avatar": None}))["avatar"] is None
    assert (await alice.api.patch("/api/me", {}))["avatar"] is None  # left out: unchanged


# ---------------------------------------------------------------------------- garbage


async def test_the_sweep_removes_garbage_and_never_an_attached_file(make_account, make_room, server, connect):
    bob = await make_account("bob")
    room, alice = await make_room(members=[bob])
    files = server.app[keys.FILES]
    attached = await alice.api.upload(png(40, 40, (1, 1, 1)), name="kept.png")
    avatar = await alice.api.upload(png(41, 41))
    in_post = await alice.api.upload(b"in a post")
    recalled = await alice.api.upload(b"in a recalled message")
    loose = await alice.api.upload(b"never attached")
    await send(alice, room["id"], files=[attached["id"]])
    await alice.api.patch("/api/me", {"avatar": avatar["id"]})
    await alice.api.post("/api/posts", {"title": "t", "body": "b", "files": [in_post["id"]]})
    gone = await send(alice, room["id"], files=[recalled["id"]])
    wire = await connect(alice)
    await wire.call("recall", room=room["id"], seq=gone["seq"])

    assert await files.sweep() == 1  # the recalled message's file; the loose one is not a day old
    assert await files.sweep(now=now_ms() + UNATTACHED_TTL_MS + 60_000) == 1  # a day later: the loose one
    assert (await alice.api.download(loose["id"]))[0] == 404
    assert (await alice.api.download(recalled["id"]))[0] == 404
    assert await files.sweep(now=now_ms() + 365 * UNATTACHED_TTL_MS) == 0  # a year on: the rest stays
    for kept_file in (attached, avatar, in_post):
        status, _, body = await alice.api.download(kept_file["id"])
        assert status == 200 and hashlib.sha256(body).hexdigest() == kept_file["sha256"]
    assert (await bob.api.download(attached["id"], thumb=True))[0] == 200

    await alice.api.delete(f"/api/rooms/{room['id']}/members/{bob.id}")  # the message is still there
    assert await files.sweep(now=now_ms() + 365 * UNATTACHED_TTL_MS) == 0
    left = await kept(server.app)
    await alice.api.patch("/api/me", {"avatar": None})  # no longer an avatar: garbage
    assert await files.sweep() == 1
    assert (await kept(server.app))["rows"] == left["rows"] - 1
