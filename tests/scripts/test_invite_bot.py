"""scripts/invite_bot.py against a live server: it invites the bound group into the record and
welcomes in the group whoever accepts; run in-process and as the command-line program."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from client_proto import frames
from scripts.invite_bot import InviteBot, parse_args
from tests.conftest import ROOT

TIMEOUT = 10


async def _class_with_bot(make_account, make_room):
    """alice owns a record bound to her group of bob and carol; her bot is in the group."""
    alice, bob, carol = await make_account("alice"), await make_account("bob"), await make_account("carol")
    room, _ = await make_room(owner=alice, members=[bob, carol], name="class 3B")
    record = await alice.api.post("/api/alumni", {"name": "Class of 2010", "school": "No. 1 High"})
    await alice.api.put(f"/api/alumni/{record['id']}/room", {"room_id": room["id"]})
    bot = await alice.api.post("/api/bots", {"name": f"classbot_{alice.user['name'][-6:]}"})
    await alice.api.add_member(room["id"], bot["user"]["id"])
    return alice, bob, carol, record, room, bot


async def _welcome_for(client, room_id: str, bot_id: str) -> frames.Message:
    while True:
        event = await client.next_event(timeout=TIMEOUT)
        if isinstance(event, frames.Message) and event.room == room_id and event.from_ is not None \
                and event.from_.id == bot_id:
            return event


async def _accept(account) -> None:
    [invitation] = (await account.api.get("/api/me/invitations", status="pending"))["items"]
    await account.api.post(f"/api/invitations/{invitation['id']}/accept")


async def test_the_bot_invites_the_group_and_welcomes_each_new_member(make_account, make_room, server):
    alice, bob, carol, record, room, bot_account = await _class_with_bot(make_account, make_room)
    invited = asyncio.Event()
    outcome = {}

    def on_invited(result):
        outcome.update(result)
        invited.set()

    bot = InviteBot(server.url, bot_account["token"], record["id"], room["id"], note="join us")
    task = None
    try:
        async with bob.client() as bob_ws, alice.client() as alice_ws:
            # Only now: the notification of an invitation is live only, not replayed to a later connection.
            task = asyncio.create_task(bot.run(on_invited=on_invited))
            await asyncio.wait_for(invited.wait(), TIMEOUT)
            assert sorted(i["invitee"]["id"] for i in outcome["invitations"]) == sorted([bob.id, carol.id])
            while not isinstance(notice := await bob_ws.next_event(timeout=TIMEOUT), frames.Notify):
                pass  # the group's alumni.invitation may come first
            assert notice.invitation["note"] == "join us"
            assert notice.invitation["inviter"]["id"] == bot_account["user"]["id"]
            await _accept(bob)
            welcome = await _welcome_for(alice_ws, room["id"], bot_account["user"]["id"])
            assert bob.user["display"] in welcome.text and "Class of 2010" in welcome.text
            await _accept(carol)
            welcome = await _welcome_for(alice_ws, room["id"], bot_account["user"]["id"])
            assert carol.user["display"] in welcome.text
            async with asyncio.timeout(TIMEOUT):  # the bot notes a welcome once its send is acked
                while len(bot.welcomed) < 2:
                    await asyncio.sleep(0.05)
        assert bot.welcomed == [bob.id, carol.id]
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_the_command_line_bot_runs_until_sigterm(make_account, make_room, server):
    alice, bob, carol, record, room, bot_account = await _class_with_bot(make_account, make_room)
    await alice.api.post(f"/api/alumni/{record['id']}/invitations", {"user_ids": [carol.id]})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / "invite_bot.py"), "--server", server.url,
        "--record", record["id"], "--room", room["id"],
        env={**os.environ, "CHAT_BOT_TOKEN": bot_account["token"]},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        report = json.loads(line)
        assert report["invited"] == [bob.id]
        assert {(s["user_id"], s["reason"]) for s in report["skipped"]} == {(alice.id, "member"), (carol.id, "pending")}
        async with alice.client() as alice_ws:
            await _accept(bob)
            welcome = await _welcome_for(alice_ws, room["id"], bot_account["user"]["id"])
        assert bob.user["display"] in welcome.text
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_the_command_line_bot_reports_a_refusal(make_account, make_room, server):
    """Also: with no `--server`, the bot finds the server in `CHAT_URL` (as the README's walkthrough has it)."""
    alice, bob, carol, record, room, _ = await _class_with_bot(make_account, make_room)
    strangers_bot = await bob.api.post("/api/bots", {"name": f"nosy_{bob.user['name'][-6:]}"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / "invite_bot.py"), "--invite-only",
        "--record", record["id"], "--room", room["id"], "--token", strangers_bot["token"],
        env={**os.environ, "CHAT_URL": server.url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 1 and b"403" in err


def test_server_comes_from_the_option_then_chat_url_then_the_default(monkeypatch):
    args = ["--record", "a_1", "--room", "r_1", "--token", "t"]
    monkeypatch.delenv("CHAT_URL", raising=False)
    assert parse_args(args).server == "http://127.0.0.1:8080"
    monkeypatch.setenv("CHAT_URL", "http://127.0.0.1:9000")
    assert parse_args(args).server == "http://127.0.0.1:9000"
    assert parse_args([*args, "--server", "http://127.0.0.1:9001"]).server == "http://127.0.0.1:9001"
