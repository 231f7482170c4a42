"""schemathesis against the served `GET /api/openapi.json` of a live server (docs/protocol.md §12).

Every operation of the document gets valid and invalid requests, signed in
as a real user, half of them aimed at things that exist (the user's own
group, bot, alumni record, a real invitation, another member) and half at
generated ids. No answer may be a 5xx, and every answer must match the
document: a documented status, the documented content type, a body that
fits the documented schema.

Hypothesis runs in a worker thread (schemathesis calls over blocking
`requests`) while the server keeps serving on the test's event loop.
`CHAT_SCHEMATHESIS_EXAMPLES` raises the examples per operation and mode.
"""

from __future__ import annotations

import asyncio
import os
import threading

import aiohttp
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)


EXAMPLES = int(os.environ.get("CHAT_SCHEMATHESIS_EXAMPLES", "12"))  # per operation and generation mode
# Invalid requests are sent too, but only to look for 5xx and undocumented answers: whether the server
# rejects every one (schemathesis's `negative_data_rejection`) is not checked, since unknown query
# parameters and fields are ignored by design.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
# Operations whose repeats would undo the run itself: signing out revokes the token every other call uses.
OWN_TOKEN = {"DELETE /api/tokens/current"}


pytestmark = pytest.mark.usefixtures("cheap_password_hashing")  # many accounts: Argon2id at its cheapest


async def known_ids(make_account, paths: set[str]) -> tuple[dict[str, str], object]:
    """Path parameters naming existing things the caller may touch, and the caller (an `Account`).

    The caller owns an open group (with another member and a message), a bot, an alumni record
    bound to that group, and a post; the other member invited the caller into their own record.
    """
    me, other = await make_account("st"), await make_account("st")
    room = await me.api.create_room("schemathesis", join_policy="open")
    await me.api.add_member(room["id"], other.id)
    await me.api.post(f"/api/rooms/{room['id']}/messages", {"text": "hello", "cid": "first"})
    bot = await me.api.post("/api/bots", {"name": f"bot{me.user['name'][:20]}"})
    ids = {"room_id": room["id"], "user_id": other.id, "bot_id": bot["user"]["id"]}
    if "/api/alumni" in paths:
        record = await me.api.post("/api/alumni", {"name": "class of 2010", "school": "no. 1 high school"})
        await me.api.put(f"/api/alumni/{record['id']}/room", {"room_id": room["id"]})
        theirs = await other.api.post("/api/alumni", {"name": "class of 2011", "school": "no. 2 high school"})
        invited = await other.api.post(f"/api/alumni/{theirs['id']}/invitations", {"user_ids": [me.id]})
        ids.update(record_id=record["id"], invitation_id=invited["invitations"][0]["id"])
    if "/api/posts" in paths:
        post = await me.api.post("/api/posts", {"title": "first", "body": "words"})
        ids["post_id"] = post["id"]
    return ids, me


def strategies_for(operation, known: dict[str, str]):
    """Valid and invalid requests; half of each with the path naming real things."""
    names = [p.name for p in operation.path_parameters]
    real = {name: known[name] for name in names if name in known}
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    found = []
    for mode in modes:
        found.append(operation.as_strategy(generation_mode=mode))
        if real:
            found.append(operation.as_strategy(generation_mode=mode, path_parameters=real))
    return st.one_of(found)


def run_all(schema, base_url: str, token: str, fresh_token, known: dict[str, str]) -> list[str]:
    """Every operation in turn; the failures, described (empty when all held)."""
    failures = []
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"

        @hypothesis.settings(
            max_examples=EXAMPLES * 2, deadline=None, database=None, derandomize=True,
            suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.target],
        )
        @hypothesis.given(case=strategies_for(operation, known))
        def check(case):
            bearer = fresh_token() if label in OWN_TOKEN else token
            case.call_and_validate(base_url=base_url, session=session, headers={"Authorization": f"Bearer {bearer}"},
                                   checks=CHECKS)

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - collected, reported together below
            failures.append(f"{label}: {exc}")
    session.close()
    return failures


async def test_every_operation_answers_as_documented(server, make_account):
    async with aiohttp.ClientSession() as session, session.get(server.url + "/api/openapi.json") as response:
        paths = set((await response.json())["paths"])
    known, owner = await known_ids(make_account, paths)
    loop = asyncio.get_running_loop()
    main_thread = threading.get_ident()

    def fresh_token() -> str:
        """A new token for the owner, signed in from the worker thread through the server's own loop."""
        assert threading.get_ident() != main_thread
        name = owner.user["name"]
        login = owner.api.post("/api/tokens", {"name": name, "password": "correct horse"})
        return asyncio.run_coroutine_threadsafe(login, loop).result(10)["token"]

    schema = await asyncio.to_thread(schemathesis.openapi.from_url, server.url + "/api/openapi.json")
    failures = await asyncio.to_thread(run_all, schema, server.url, owner.token, fresh_token, known)
    assert failures == [], "\n\n".join(failures)


# Values schemathesis seldom draws that once gave 500: numbers past int64 reaching the database,
# and cursors whose digits Python's str.isdigit() takes but int() refuses.
EDGES = [
    ("GET", "/api/rooms/{room_id}/messages?before=99999999999999999999999", None),
    ("GET", "/api/rooms/{room_id}/messages?after=9223372036854775808", None),
    ("POST", "/api/rooms/{room_id}/messages", {"text": "x", "cid": "edge", "reply_to": 2**63}),
    ("GET", "/api/alumni/{record_id}/feed?before=%C2%B2.x", None),
    ("GET", "/api/alumni/{record_id}/feed?before=99999999999999999999999.x", None),
    ("GET", "/api/me/feed?before=%C2%B2.x", None),
    ("GET", "/api/alumni/{record_id}/posts?before=99999999999999999999999.x", None),
    ("GET", "/api/users/{user_id}/space?before=%C2%B2.x", None),
]


async def test_out_of_range_numbers_and_cursors_are_422(server, make_account):
    me = await make_account("edge")
    ids = {
        "room_id": (await me.api.create_room("edges"))["id"],
        "record_id": (await me.api.post("/api/alumni", {"name": "edges", "school": "school"}))["id"],
        "user_id": me.id,
    }
    answers = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {me.token}"}) as session:
        for method, path, body in EDGES:
            url = server.url + path.format(**ids)
            async with session.request(method, url, json=body) as response:
                answers[path] = (response.status, (await response.json())["error"]["code"])
    assert answers == {path: (422, "invalid") for _, path, _ in EDGES}
