"""Invite a group's members into its alumni record, then welcome each one who joins.

A small bot built on `client_proto`: `ApiClient` for the invitations (HTTP),
`ChatClient` to hear `alumni.joined` in the group and to post the welcome
(WebSocket). Run it with a bot's token; the bot must be owned by a member of
the record (so it may invite) and be a member of the group (so it may post):

    # as the record's owner: create a bot and add it to the group
    curl -s -XPOST localhost:8080/api/bots -H "Authorization: Bearer $ALICE" -d '{"name":"classbot"}'
    curl -s -XPOST localhost:8080/api/rooms/$ROOM/members -H "Authorization: Bearer $ALICE" \\
        -d '{"user_id":"<the bot user id>"}'

    CHAT_BOT_TOKEN=<the bot token> .venv/bin/python scripts/invite_bot.py \\
        --server http://127.0.0.1:8080 --record $RECORD --room $ROOM --note "Join our class record!"

The server is `--server`, else `$CHAT_URL`, else http://127.0.0.1:8080.

It invites every member of the group who is not yet in the record and has no
pending invitation, prints the outcome as one JSON line, then runs until
stopped (Ctrl-C, SIGTERM), welcoming each new record member in the group.
`--invite-only` exits after inviting. The welcome's `cid` is derived from the
record and the member, so after a reconnect (the client resumes where it left
off) a welcome is never posted twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, not installed

from client_proto import frames  # noqa: E402
from client_proto.client import ChatClient, ChatError  # noqa: E402
from client_proto.http import ApiClient, ApiError  # noqa: E402

log = logging.getLogger("invite_bot")

DEFAULT_SERVER = "http://127.0.0.1:8080"
WELCOME = "Welcome to {record}, {name}! Please fill in your profile so classmates can find you."


class InviteBot:
    """Invites a bound group into its record and welcomes newcomers; `run()` until cancelled."""

    def __init__(self, server: str, token: str, record_id: str, room_id: str, *, note: str = "",
                 welcome: str = WELCOME):
        self.server = server.rstrip("/")
        self.token = token
        self.record_id = record_id
        self.room_id = room_id
        self.note = note
        self.welcome = welcome
        self.welcomed: list[str] = []  # user ids, in order: for callers and tests

    @property
    def ws_url(self) -> str:
        return self.server.replace("http", "ws", 1) + "/ws"

    async def invite(self, api: ApiClient) -> dict:
        """Invite the group's members who are not in the record yet: `{invitations, skipped}`."""
        body = {"note": self.note} if self.note else {}
        return await api.post(f"/api/alumni/{self.record_id}/invitations", body)

    async def run(self, *, invite_only: bool = False, on_invited=None) -> None:
        """Listen first, then invite, so nobody who accepts at once goes unwelcomed."""
        async with ApiClient(self.server, self.token) as api:
            record = await api.get(f"/api/alumni/{self.record_id}")
            if invite_only:
                self._report(await self.invite(api), on_invited)
                return
            async with ChatClient(self.ws_url, self.token) as chat:
                self._report(await self.invite(api), on_invited)
                async for event in chat.events():
                    if user := self._newcomer(event):
                        await self._greet(chat, record["name"], user)

    def _newcomer(self, event) -> dict | None:
        """The user of an `alumni.joined` of our record in our group, else None."""
        match event:
            case frames.Message(room=room, system=frames.SystemInfo(type="alumni.joined", data=data)) \
                    if room == self.room_id and data.get("record", {}).get("id") == self.record_id:
                return data.get("user")
        return None

    async def _greet(self, chat: ChatClient, record_name: str, user: dict) -> None:
        text = self.welcome.format(name=user.get("display") or user.get("name"), record=record_name)
        try:
            await chat.send(self.room_id, text, cid=f"welcome-{self.record_id}-{user['id']}")
            self.welcomed.append(user["id"])
        except ChatError as err:  # e.g. the bot was removed from the group: keep serving
            log.warning("could not welcome %s: %s", user.get("name"), err)

    @staticmethod
    def _report(result: dict, on_invited) -> None:
        print(json.dumps({"invited": [i["invitee"]["id"] for i in result["invitations"]],
                          "skipped": result["skipped"]}), flush=True)
        if on_invited is not None:
            on_invited(result)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("CHAT_URL") or DEFAULT_SERVER,
                        help=f"server root URL (default: $CHAT_URL, else {DEFAULT_SERVER})")
    parser.add_argument("--token", default=os.environ.get("CHAT_BOT_TOKEN"),
                        help="the bot's token (default: $CHAT_BOT_TOKEN, which keeps it out of `ps`)")
    parser.add_argument("--record", required=True, help="alumni record id")
    parser.add_argument("--room", required=True, help="the group bound to the record")
    parser.add_argument("--note", default="", help="note sent with each invitation")
    parser.add_argument("--welcome", default=WELCOME, help="welcome text; {name} and {record} are filled in")
    parser.add_argument("--invite-only", action="store_true", help="invite, then exit")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a bot token is required: --token or CHAT_BOT_TOKEN")
    return args


async def _main(args: argparse.Namespace) -> int:
    bot = InviteBot(args.server, args.token, args.record, args.room, note=args.note, welcome=args.welcome)
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await bot.run(invite_only=args.invite_only)
    except asyncio.CancelledError:
        pass  # stopped by a signal
    except (ApiError, ChatError, aiohttp.ClientError, OSError) as err:
        print(f"invite_bot: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return asyncio.run(_main(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
