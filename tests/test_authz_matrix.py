"""Who may do what: every HTTP route and every WebSocket op against every role, in one table.

The world: an invite-only group owned by `owner`, with `admin` (role admin),
`member` and `bot` (a bot owned by `member`) in it; `bot_out`, another bot
of `member`, is in nothing. The group is bound to an alumni record owned by
`owner`, whose members are `owner`, `member` and `record_member` (who is not
in the group). `member` wrote a post published to the record and a message
in the group. `stranger` is signed in and in none of it; `anon` has no token.
Beside it: an open group of `owner`'s, and a pending invitation of the
record for `stranger`.

docs/protocol.md §12.1: no valid token is 401, unknown ids are 404, existing things the
caller may not touch are 403; §2.2: over WebSocket a room the caller is not
a member of is `forbidden` for every op, an unknown one `not_found`.
A row that changes something gets a world of its own, and where one role's
success would change another's answer, each role allowed to do it gets its
own. Every route of the server must have a row here.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from PIL import Image

from chatserver import keys
from client_proto.frames import CLIENT_OPS
from tests.conftest import unique_name

def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


ROLES = ("anon", "stranger", "member", "admin", "owner", "bot", "bot_out", "record_member")
PEOPLE = ("stranger", "member", "admin", "owner", "record_member")  # signed up with a password
PASSWORD = "correct horse"


pytestmark = pytest.mark.usefixtures("cheap_password_hashing")  # many accounts: Argon2id at its cheapest


def only(allowed: str, ok, deny=403, anon=401, **others) -> dict:
    """`allowed` (space-separated roles, or "everyone" signed in) get `ok`, other signed-in roles
    `deny`, anon `anon`; `others` name a role's own answer."""
    chosen = set(ROLES[1:]) if allowed == "everyone" else set(allowed.split())
    expected = {role: ok if role in chosen else deny for role in ROLES[1:]}
    return {"anon": anon, **expected, **others}


IN_GROUP = "member admin owner bot"
GROUP_ADMINS = "admin owner"
IN_RECORD = "member owner record_member"


# ---------------------------------------------------------------------------- the world


@dataclass
class World:
    tokens: dict[str, str]
    ids: dict[str, str]
    names: dict[str, str]


async def build_world(people: dict) -> World:
    owner, admin, member = people["owner"], people["admin"], people["member"]
    stranger, record_member = people["stranger"], people["record_member"]
    room = (await owner.api.create_room("matrix"))["id"]
    open_room = (await owner.api.create_room("matrix open", join_policy="open"))["id"]
    side = (await owner.api.create_room("shared with the owner, so the owner may invite them"))["id"]
    for person in (admin, member):
        await owner.api.add_member(room, person.id)
    await owner.api.put(f"/api/rooms/{room}/members/{admin.id}/role", {"role": "admin"})
    for person in (stranger, record_member):
        await owner.api.add_member(side, person.id)
    bot = await member.api.post("/api/bots", {"name": unique_name("bot")})
    bot_out = await member.api.post("/api/bots", {"name": unique_name("bot")})
    await owner.api.add_member(room, bot["user"]["id"])
    record = (await owner.api.post("/api/alumni", {"name": "class of 2010", "school": "no. 1 high school"}))["id"]
    await owner.api.put(f"/api/alumni/{record}/room", {"room_id": room})
    invited = await owner.api.post(f"/api/alumni/{record}/invitations",
                                   {"user_ids": [member.id, record_member.id, stranger.id]})
    invitation = {i["invitee"]["id"]: i["id"] for i in invited["invitations"]}
    for person in (member, record_member):
        await person.api.post(f"/api/invitations/{invitation[person.id]}/accept")
    # Files (docs/protocol.md §12.10): one in a group message, one in the record's post, one attached nowhere.
    photo = (await member.api.upload(_png(), name="photo.png"))["id"]
    doc = (await member.api.upload(b"minutes of the meeting", name="minutes.txt"))["id"]
    lonely = (await member.api.upload(b"draft", name="draft.txt"))["id"]
    await member.api.post(f"/api/rooms/{room}/messages", {"text": "", "cid": "photo", "files": [photo]})
    post = await member.api.post("/api/posts", {"title": "news", "body": "words", "alumni_ids": [record],
                                                "files": [doc]})
    message = await member.api.post(f"/api/rooms/{room}/messages", {"text": "recall me", "cid": "matrix"})
    request = await admin.api.post(f"/api/alumni/{record}/requests", {"note": "let me in"})
    tokens = {role: people[role].token for role in PEOPLE}
    tokens.update(bot=bot["token"], bot_out=bot_out["token"])
    ids = {role: people[role].id for role in PEOPLE}
    ids.update(bot=bot["user"]["id"], bot_out=bot_out["user"]["id"], room=room, open_room=open_room,
               record=record, post=post["id"], invitation=invitation[stranger.id], seq=str(message["seq"]),
               record_request=request["id"], unknown="x_unknown", photo=photo, doc=doc, lonely=lonely,
               emoji="plus1")
    names = {role: people[role].user["name"] for role in PEOPLE}
    names.update(bot=bot["user"]["name"], bot_out=bot_out["user"]["name"])
    return World(tokens, ids, names)


# ---------------------------------------------------------------------------- HTTP rows


Body = dict | Callable[[World, str], dict] | None


@dataclass(frozen=True)
class Http:
    method: str
    route: str  # as the server's route table spells it
    expect: dict[str, int]
    params: dict[str, str] = field(default_factory=dict)  # path parameter -> world id
    body: Body = None
    world: str = "shared"  # "row": a world for this row; "each": one per role that is allowed
    setup: Callable[[World, dict], Awaitable[None]] | None = None  # run on the row's world(s)
    fresh_token: bool = False  # the request spends the caller's token: sign in (or make a bot) anew
    label: str = ""
    query: str = ""  # the query string, with `{name}` for world ids

    @property
    def name(self) -> str:
        return f"{self.method} {self.route}{f' ({self.label})' if self.label else ''}"


async def unbound(world: World, people: dict) -> None:
    await people["owner"].api.delete(f"/api/alumni/{world.ids['record']}/room")


def new_name(world: World, role: str) -> dict:
    return {"name": unique_name("new"), "password": PASSWORD}


def own_login(world: World, role: str) -> dict:
    """Sign in as oneself; bots have no password, and anon tries someone else's with a wrong one."""
    if role == "anon":
        return {"name": world.names["stranger"], "password": "wrong"}
    return {"name": world.names[role], "password": PASSWORD}


def add_someone(world: World, role: str) -> dict:
    """Add the record member to the group (or, when the caller is the record member, the stranger)."""
    return {"user_id": world.ids["stranger" if role == "record_member" else "record_member"]}


async def commented(world: World, people: dict) -> None:
    """A comment of the record member's on the member's post."""
    comment = await people["record_member"].api.post(f"/api/posts/{world.ids['post']}/comments", {"text": "hi"})
    world.ids["comment"] = comment["id"]


def direct_with(world: World, role: str) -> dict:
    """A direct room with the owner (the owner's own: with the member, whose room with the owner exists)."""
    return {"user_id": world.ids["member" if role == "owner" else "owner"]}


def send_text(world: World, role: str) -> dict:
    return {"text": f"from {role}", "cid": uuid.uuid4().hex}


ROOM = {"room_id": "room"}
RECORD = {"record_id": "record"}
POST = {"post_id": "post"}
HUMANS = "stranger member admin owner record_member"

HTTP_ROWS = [
    # users and tokens
    Http("POST", "/api/users", only("everyone", 201, anon=201), body=new_name),
    Http("POST", "/api/tokens", only(HUMANS, 201, deny=401), body=own_login),
    Http("DELETE", "/api/tokens/current", only("everyone", 204), fresh_token=True),
    Http("GET", "/api/me", only("everyone", 200)),
    # bots
    Http("POST", "/api/bots", only(HUMANS, 201), body=lambda w, r: {"name": unique_name("bot")}),
    Http("GET", "/api/bots", only("everyone", 200)),
    Http("DELETE", "/api/bots/{bot_id}", only("member", 204), {"bot_id": "bot_out"}, world="each"),
    Http("DELETE", "/api/bots/{bot_id}", only("", 404, deny=404), {"bot_id": "unknown"}, label="unknown bot"),
    # rooms
    Http("POST", "/api/rooms", only("everyone", 201), body={"name": "another"}),
    Http("GET", "/api/rooms", only("everyone", 200)),
    Http("GET", "/api/rooms/{room_id}", only(IN_GROUP, 200), ROOM),
    Http("GET", "/api/rooms/{room_id}", only("everyone", 200), {"room_id": "open_room"}, label="open group"),
    Http("GET", "/api/rooms/{room_id}", only("", 404, deny=404), {"room_id": "unknown"}, label="unknown group"),
    Http("PATCH", "/api/rooms/{room_id}", only(GROUP_ADMINS, 200), ROOM, body={"topic": "new topic"}),
    Http("GET", "/api/rooms/{room_id}/members", only(IN_GROUP, 200), ROOM),
    # "A non-member may GET /api/rooms/{id} of an open room, nothing else."
    Http("GET", "/api/rooms/{room_id}/members", only("owner", 200), {"room_id": "open_room"}, label="open group"),
    Http("POST", "/api/rooms/{room_id}/members", only(GROUP_ADMINS, 201), ROOM, body=add_someone, world="each"),
    Http("POST", "/api/rooms/{room_id}/members", only("everyone", 201, owner=409), {"room_id": "open_room"},
         body=lambda w, r: {"user_id": w.ids.get(r, "x_unknown")}, world="row", label="join an open group"),
    Http("DELETE", "/api/rooms/{room_id}/members/{user_id}", only("member admin owner", 204),
         {**ROOM, "user_id": "member"}, world="each", label="leave or kick a member"),
    Http("DELETE", "/api/rooms/{room_id}/members/{user_id}", only("admin owner", 204),
         {**ROOM, "user_id": "admin"}, world="each", label="leave or kick an admin"),
    Http("DELETE", "/api/rooms/{room_id}/members/{user_id}", only("", 204, owner=409),
         {**ROOM, "user_id": "owner"}, label="the owner"),
    Http("PUT", "/api/rooms/{room_id}/members/{user_id}/role", only("owner", 200),
         {**ROOM, "user_id": "member"}, body={"role": "admin"}, world="each"),
    Http("GET", "/api/rooms/{room_id}/messages", only(IN_GROUP, 200), ROOM),
    Http("GET", "/api/rooms/{room_id}/messages", only("owner", 200), {"room_id": "open_room"}, label="open group"),
    Http("POST", "/api/rooms/{room_id}/messages", only(IN_GROUP, 201), ROOM, body=send_text),
    Http("POST", "/api/rooms/{room_id}/messages", only("", 404, deny=404), {"room_id": "unknown"},
         body=send_text, label="unknown group"),
    Http("GET", "/api/rooms/{room_id}/online", only(IN_GROUP, 200), ROOM),
    # timeline updates (docs/protocol.md §6.4): the message at `seq` is the member's
    Http("PATCH", "/api/rooms/{room_id}/messages/{seq}", only("member", 200), {**ROOM, "seq": "seq"},
         body={"text": "edited"}),
    Http("PUT", "/api/rooms/{room_id}/messages/{seq}/reactions/{emoji}", only(IN_GROUP, 200),
         {**ROOM, "seq": "seq", "emoji": "emoji"}),
    Http("DELETE", "/api/rooms/{room_id}/messages/{seq}/reactions/{emoji}", only(IN_GROUP, 204),
         {**ROOM, "seq": "seq", "emoji": "emoji"}),
    Http("GET", "/api/rooms/{room_id}/messages/{seq}/edits", only(IN_GROUP, 200), {**ROOM, "seq": "seq"}),
    # direct rooms (§12.11): each caller opens one with the owner; the owner's with the member exists by then
    Http("POST", "/api/dms", only("everyone", 201, owner=200), body=direct_with),
    # alumni records
    Http("POST", "/api/alumni", only("everyone", 201), body={"name": "another", "school": "school"}),
    Http("GET", "/api/alumni/{record_id}", only("everyone", 200), RECORD),
    Http("GET", "/api/alumni/{record_id}", only("", 404, deny=404), {"record_id": "unknown"},
         label="unknown record"),
    Http("GET", "/api/alumni/{record_id}/members", only("everyone", 200), RECORD),
    Http("PUT", "/api/alumni/{record_id}/room", only("owner", 200), RECORD, body=lambda w, r: {"room_id": w.ids["room"]},
         world="each", setup=unbound),
    Http("DELETE", "/api/alumni/{record_id}/room", only("owner admin", 204), RECORD, world="each"),
    Http("PUT", "/api/alumni/{record_id}/profile", only(IN_RECORD, 200), RECORD, body={"city": "Hangzhou"}),
    Http("POST", "/api/alumni/{record_id}/invitations", only(f"{IN_RECORD} bot bot_out", 201), RECORD,
         body=lambda w, r: {"user_ids": [w.ids["admin"]]}),
    Http("GET", "/api/me/invitations", only("everyone", 200)),
    Http("POST", "/api/invitations/{invitation_id}/accept", only("stranger", 200), {"invitation_id": "invitation"},
         world="each"),
    Http("POST", "/api/invitations/{invitation_id}/decline", only("stranger", 200), {"invitation_id": "invitation"},
         world="each"),
    Http("GET", "/api/alumni/{record_id}/feed", only(IN_RECORD, 200), RECORD),
    # spaces and posts
    Http("POST", "/api/posts", only("everyone", 201), body={"title": "mine", "body": "text"}),
    Http("POST", "/api/posts", only(IN_RECORD, 201), body=lambda w, r: {"title": "t", "body": "b",
                                                                         "alumni_ids": [w.ids["record"]]},
         label="published to the record"),
    Http("GET", "/api/posts/{post_id}", only(f"{IN_GROUP} record_member", 200), POST),
    Http("GET", "/api/posts/{post_id}", only("", 404, deny=404), {"post_id": "unknown"}, label="unknown post"),
    Http("PATCH", "/api/posts/{post_id}", only("member", 200), POST, body={"title": "edited"}),
    Http("DELETE", "/api/posts/{post_id}", only("member", 204), POST, world="each"),
    # comments and likes (§12.12): whoever may read the post
    Http("PUT", "/api/posts/{post_id}/likes/me", only(f"{IN_GROUP} record_member", 200), POST),
    Http("DELETE", "/api/posts/{post_id}/likes/me", only(f"{IN_GROUP} record_member", 204), POST),
    Http("POST", "/api/posts/{post_id}/comments", only(f"{IN_GROUP} record_member", 201), POST,
         body={"text": "a comment"}),
    Http("GET", "/api/posts/{post_id}/comments", only(f"{IN_GROUP} record_member", 200), POST),
    Http("DELETE", "/api/posts/{post_id}/comments/{comment_id}", only("member record_member", 204),
         {**POST, "comment_id": "comment"}, world="each", setup=commented),
    Http("POST", "/api/alumni/{record_id}/posts", only(IN_RECORD, 201), RECORD, body={"title": "t", "body": "b"}),
    Http("GET", "/api/alumni/{record_id}/posts", only(IN_RECORD, 200), RECORD),
    Http("GET", "/api/users/{user_id}/space", only("everyone", 200), {"user_id": "member"}),
    Http("GET", "/api/users/{user_id}/space", only("", 404, deny=404), {"user_id": "unknown"}, label="unknown user"),
    Http("GET", "/api/me/feed", only("everyone", 200)),
    # people, records and search (docs/protocol.md §12.13)
    Http("GET", "/api/users", only("everyone", 200), query="q=matrix"),
    Http("GET", "/api/users", only("everyone", 422), query="q=m", label="q too short"),
    Http("GET", "/api/users/{user_id}", only("everyone", 200), {"user_id": "member"}),
    Http("GET", "/api/users/{user_id}", only("", 404, deny=404), {"user_id": "unknown"}, label="unknown user"),
    Http("PATCH", "/api/me", only("everyone", 200), body={"display": "renamed"}, label="display"),
    Http("GET", "/api/me/blocks", only("everyone", 200)),
    Http("PUT", "/api/me/blocks/{user_id}", only("everyone", 204, bot_out=422), {"user_id": "bot_out"}),
    Http("PUT", "/api/me/blocks/{user_id}", only("", 404, deny=404), {"user_id": "unknown"}, label="unknown user"),
    Http("DELETE", "/api/me/blocks/{user_id}", only("everyone", 204), {"user_id": "bot_out"}),
    Http("GET", "/api/alumni", only("everyone", 200), query="q=class&year=2010"),
    Http("PATCH", "/api/alumni/{record_id}", only("owner", 200), RECORD, body={"description": "edited"}),
    Http("DELETE", "/api/alumni/{record_id}", only("owner", 204), RECORD, world="each"),
    Http("DELETE", "/api/alumni/{record_id}/members/{user_id}", only("owner record_member", 204),
         {**RECORD, "user_id": "record_member"}, world="each", label="leave or remove a member"),
    Http("DELETE", "/api/alumni/{record_id}/members/{user_id}", only("", 204, owner=409),
         {**RECORD, "user_id": "owner"}, label="the owner"),
    Http("POST", "/api/alumni/{record_id}/requests", only("stranger bot bot_out", 201, deny=409), RECORD,
         body={"note": "me too"}, world="row"),  # members and admin (pending already): 409
    Http("GET", "/api/alumni/{record_id}/requests", only("owner", 200), RECORD),
    Http("POST", "/api/record-requests/{request_id}/approve", only("owner", 200),
         {"request_id": "record_request"}, world="each"),
    Http("POST", "/api/record-requests/{request_id}/decline", only("owner", 200),
         {"request_id": "record_request"}, world="each"),
    Http("GET", "/api/rooms/discover", only("everyone", 200), query="q=matrix"),
    Http("GET", "/api/search", only("everyone", 200), query="q=recall"),
    Http("GET", "/api/search", only(IN_GROUP, 200), query="q=recall&room={room}", label="one room"),
    # files
    Http("POST", "/api/files", only("everyone", 201), body={"any": "bytes"}),
    Http("GET", "/api/files/{file_id}", only(IN_GROUP, 200), {"file_id": "photo"}, label="in a group message"),
    Http("GET", "/api/files/{file_id}/thumb", only(IN_GROUP, 200), {"file_id": "photo"}),
    Http("GET", "/api/files/{file_id}", only(f"{IN_GROUP} record_member", 200), {"file_id": "doc"},
         label="in a record's post"),
    Http("GET", "/api/files/{file_id}", only("member", 200), {"file_id": "lonely"}, label="attached nowhere"),
    Http("GET", "/api/files/{file_id}", only("", 404, deny=404), {"file_id": "unknown"}, label="unknown file"),
    Http("PATCH", "/api/me", only("everyone", 200), body={"avatar": None}),
    # operations
    *(Http("GET", path, only("everyone", 200, anon=200))
      for path in ("/healthz", "/readyz", "/livez", "/metrics", "/api/openapi.json")),
]


# ---------------------------------------------------------------------------- WebSocket rows


@dataclass(frozen=True)
class Ws:
    op: str
    frame: Callable[[World], dict]
    expect: dict[str, str]  # role -> "ok" or the error code
    world: str = "shared"  # as for `Http`
    label: str = ""

    @property
    def name(self) -> str:
        return f"ws {self.op}{f' ({self.label})' if self.label else ''}"


def ws_only(allowed: str, deny: str = "forbidden", **others) -> dict:
    return only(allowed, "ok", deny=deny, anon="unauthorized", **others)


def in_room(op: str, **fields):
    return lambda w: {"op": op, "room": w.ids["room"], **fields}


WS_ROWS = [
    Ws("hello", lambda w: {"op": "hello", "token": "again"}, ws_only("", deny="invalid"), label="said twice"),
    Ws("send", lambda w: {"op": "send", "room": w.ids["room"], "text": "hi", "cid": uuid.uuid4().hex},
       ws_only(IN_GROUP)),
    Ws("send", lambda w: {"op": "send", "room": w.ids["room"], "text": "hi all", "cid": uuid.uuid4().hex,
                          "mentions": "all"}, ws_only(GROUP_ADMINS), label='mentions "all"'),
    Ws("send", lambda w: {"op": "send", "room": "x_unknown", "text": "hi", "cid": "c"},
       ws_only("", deny="not_found"), label="unknown room"),
    Ws("history", in_room("history"), ws_only(IN_GROUP)),
    Ws("join", in_room("join"), ws_only("")),  # invite-only: nobody joins by themselves
    Ws("join", lambda w: {"op": "join", "room": w.ids["open_room"]}, ws_only("everyone", owner="conflict"),
       world="row", label="open group"),
    Ws("leave", in_room("leave"), ws_only("member admin bot", owner="conflict"), world="row"),
    Ws("typing", in_room("typing"), ws_only(IN_GROUP)),
    Ws("read", lambda w: {"op": "read", "room": w.ids["room"], "seq": int(w.ids["seq"])}, ws_only(IN_GROUP)),
    Ws("recall", lambda w: {"op": "recall", "room": w.ids["room"], "seq": int(w.ids["seq"])},
       ws_only("member admin owner"), world="row"),  # its author, or an owner/admin
    Ws("presence", in_room("presence"), ws_only(IN_GROUP)),
    Ws("edit", lambda w: {"op": "edit", "room": w.ids["room"], "seq": int(w.ids["seq"]), "text": "edited"},
       ws_only("member")),  # its author only
    Ws("react", lambda w: {"op": "react", "room": w.ids["room"], "seq": int(w.ids["seq"]), "emoji": "👍",
                           "on": True}, ws_only(IN_GROUP)),
    Ws("ping", lambda w: {"op": "ping"}, ws_only("everyone")),
]


async def ws_outcome(session: aiohttp.ClientSession, ws_url: str, token: str | None, frame: dict) -> str:
    """"ok", or the error code the server answered `frame` with (`unauthorized`: hello refused, close 4001)."""
    async with session.ws_connect(ws_url, protocols=("chat.v1.json",)) as ws:
        await ws.send_str(json.dumps({"op": "hello", "token": token or "not-a-token", "ref": "hello"}))
        welcome = await ws.receive_json(timeout=5)
        if welcome["op"] == "error":
            closing = await ws.receive(timeout=5)
            assert closing.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4001, closing
            return welcome["code"]
        await ws.send_str(json.dumps({**frame, "ref": "op"}))
        await ws.send_str(json.dumps({"op": "ping", "ref": "after"}))  # `typing` has no reply of its own
        while True:
            reply = await ws.receive_json(timeout=5)
            if reply.get("ref") == "op" or (reply.get("ref") == "after" and frame["op"] == "typing"):
                return reply["code"] if reply["op"] == "error" else "ok"


# ---------------------------------------------------------------------------- the test


async def test_every_route_and_op_against_every_role(server, make_account):
    people = {role: await make_account(role[:8]) for role in PEOPLE}
    shared = await build_world(people)
    mismatches: list[str] = []

    async def world_of(row) -> World:
        if row.world == "shared":
            return shared
        world = await build_world(people)
        if getattr(row, "setup", None):
            await row.setup(world, people)
        return world

    async def token_for(row, world: World, role: str) -> str | None:
        if role == "anon":
            return None
        if getattr(row, "fresh_token", False):
            if role in PEOPLE:
                return await people[role].api.login(people[role].user["name"], PASSWORD)
            return (await people["member"].api.post("/api/bots", {"name": unique_name("bot")}))["token"]
        return world.tokens[role]

    async with aiohttp.ClientSession() as session:
        for row in [*HTTP_ROWS, *WS_ROWS]:
            row_world = await world_of(row)
            for role in ROLES:
                expected = row.expect[role]
                succeeds = expected == "ok" or (isinstance(expected, int) and expected < 300)
                world = await world_of(row) if row.world == "each" and succeeds else row_world
                token = await token_for(row, world, role)
                if isinstance(row, Ws):
                    got = await ws_outcome(session, server.ws_url, token, row.frame(world))
                    text = ""
                else:
                    path = row.route.format(**{name: world.ids[key] for name, key in row.params.items()})
                    if row.query:
                        path += "?" + row.query.format(**world.ids)
                    body = row.body(world, role) if callable(row.body) else row.body
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    async with session.request(row.method, server.url + path, json=body, headers=headers) as response:
                        got, text = response.status, (await response.text(errors="replace"))[:160]
                if got != expected:
                    mismatches.append(f"{row.name} as {role}: expected {expected}, got {got} {text}")

    assert mismatches == [], "\n".join(mismatches)
    routes = {(r.method, r.path) for r in server.app[keys.ROUTES]}
    assert routes - {(row.method, row.route) for row in HTTP_ROWS} == set(), "routes missing from the matrix"
    assert CLIENT_OPS - {row.op for row in WS_ROWS} == set(), "ops missing from the matrix"
