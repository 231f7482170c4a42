"""The page through reloads, lost networks, dropped connections, gaps and rate limits:
nothing lost, nothing shown twice, and the reader's place kept."""

from __future__ import annotations

import asyncio

import pytest

from chatserver import keys
from client_proto.errors import CloseCode

from .conftest import LOOP, message_texts, post_messages, rendered_seqs, screenshot, send_from_page, wait_for_text

pytestmark = LOOP
REPLAY_LIMIT = 6


@pytest.fixture
def settings_overrides() -> dict:
    # A small replay limit makes a resume past it send a `gap`; a small burst makes rate limits easy to hit.
    return {"replay_limit": REPLAY_LIMIT, "send_rate": 4.0, "send_burst": 4}


def assert_unbroken(seqs: list[int], last: int) -> None:
    """Every seq from the first shown up to `last`, once each, in order."""
    assert seqs == list(range(seqs[0], last + 1)), seqs


async def open_room(web, person, make_room, messages: int = 0):
    alice, bob = await asyncio.gather(person("Alice"), person("Bob"))
    room, _ = await make_room(owner=alice, members=[bob], name="Reunion")
    seqs = await post_messages(bob, room["id"], [f"message {i}" for i in range(1, messages + 1)])
    page = await web.open(alice, f"#/room/{room['id']}")
    if messages:
        await wait_for_text(page, "#messages .msg-text", f"message {messages}")
    return alice, bob, room, page, seqs


async def scroll_to_top(page):
    """Scroll the messages to the top; returns where the top message was in the viewport then."""
    return await page.eval_on_selector(
        ".messages",
        "el => { el.scrollTop = 0; const first = document.querySelector('#messages > li');"
        " return [Number(first.dataset.seq), first.getBoundingClientRect().top]; }",
    )


async def test_scroll_back_and_reload_keep_history_once(web, person, make_room):
    alice, bob, room, page, seqs = await open_room(web, person, make_room, messages=120)
    last = seqs[-1]
    shown = await rendered_seqs(page)
    assert_unbroken(shown, last)
    assert len(shown) < last, "the newest page only, before scrolling back"

    # Scrolling to the top loads the page before; the message that was on top stays where it was.
    seq, top = await scroll_to_top(page)
    await page.wait_for_function(f"() => Number(document.querySelector('#messages > li').dataset.seq) < {seq}")
    await page.wait_for_selector(".history-loading", state="detached")
    moved = await page.eval_on_selector(f"#messages > li[data-seq='{seq}']", "el => el.getBoundingClientRect().top")
    assert abs(moved - top) <= 2, f"the message in view jumped from {top} to {moved}"
    while not await page.locator(".history-start").count():
        await scroll_to_top(page)
        await page.wait_for_timeout(100)
    full = await rendered_seqs(page)
    assert full == list(range(1, last + 1))
    texts = await message_texts(page)
    assert texts[-120:] == [f"message {i}" for i in range(1, 121)]

    # Reload while messages keep coming: the same history, resumed, nothing twice.
    resume = await page.evaluate("() => JSON.parse(sessionStorage.getItem('chat.resume:' + "
                                 "JSON.parse(localStorage.getItem('chat.user')).id))")
    assert resume[room["id"]] == last
    sending = asyncio.create_task(post_messages(bob, room["id"], [f"during reload {i}" for i in range(1, 4)]))
    await page.reload()
    await sending
    await page.goto("about:blank")
    more = await post_messages(bob, room["id"], [f"while away {i}" for i in range(1, 4)])
    await page.go_back()
    # A whole page load, its modules, a new socket and the catch-up: more than the usual
    # wait on a slow host.
    await wait_for_text(page, "#messages .msg-text", "while away 3", timeout_ms=30_000)
    # The resumed messages can arrive before the page of history that fills the view (a loaded
    # machine): wait for that page too, then count.
    await wait_for_text(page, "#messages .msg-text", "message 120")
    await page.wait_for_selector(".history-loading", state="detached")
    after = await rendered_seqs(page)
    assert_unbroken(after, more[-1])
    texts = await message_texts(page)
    for text in ["message 120", "during reload 1", "during reload 3", "while away 1"]:
        assert texts.count(text) == 1, text


async def test_offline_banner_then_everything_once_even_past_the_replay_limit(web, person, make_room):
    alice, bob, room, page, seqs = await open_room(web, person, make_room, messages=3)
    context = page.context
    await context.set_offline(True)
    await page.wait_for_selector("#offline-banner", state="visible")
    await page.wait_for_selector("#offline-banner >> text=You are offline")

    # Written while offline: waits, then goes once the network is back (same cid: never twice).
    await send_from_page(page, "written while offline")
    await page.wait_for_selector("#pending li.queued >> text=Waiting for the connection…")
    missed = await post_messages(bob, room["id"], [f"missed {i}" for i in range(1, REPLAY_LIMIT + 5)])
    await screenshot(page, "offline")

    await context.set_offline(False)
    await page.wait_for_selector("#offline-banner", state="hidden")
    await wait_for_text(page, "#messages .msg.mine .msg-text", "written while offline")
    # More were missed than the server replays: it sent a `gap` and the page pages it in.
    await wait_for_text(page, "#messages .msg-text", "missed 1")
    shown = await rendered_seqs(page)
    assert_unbroken(shown, missed[-1] + 1)
    texts = await message_texts(page)
    for text in ["message 3", "missed 1", f"missed {REPLAY_LIMIT + 4}", "written while offline"]:
        assert texts.count(text) == 1, text
    history = await alice.api.get(f"/api/rooms/{room['id']}/messages", limit=100)
    assert [m["text"] for m in history["messages"]].count("written while offline") == 1


async def test_server_closes_the_connection_and_the_page_resumes(web, server, person, make_room):
    alice, bob, room, page, seqs = await open_room(web, person, make_room, messages=2)
    hub = server.app[keys.HUB]
    await hub.close_all(CloseCode.GOING_AWAY, "test: server restarting")
    sent = await post_messages(bob, room["id"], ["after the drop 1", "after the drop 2"])
    await wait_for_text(page, "#messages .msg-text", "after the drop 2")
    assert_unbroken(await rendered_seqs(page), sent[-1])
    await page.wait_for_selector("body[data-socket=open]", state="attached")
    await send_from_page(page, "still here")
    await wait_for_text(page, "#messages .msg.mine .msg-text", "still here")

    # A revoked token (4001) ends the session: back to signing in, said in words.
    await alice.api.delete("/api/tokens/current")
    await page.wait_for_selector(".form-note >> text=Your session has ended. Please sign in again.")


async def test_a_4001_with_a_good_token_reconnects_instead_of_signing_out(web, server, person, make_room):
    """A 4001 also closes a socket whose hello came too late (a page frozen in the back/forward
    cache right after its socket opened): the page checks its token, and while it is good it
    reconnects and resumes, signed in. (Its revoked-token twin is in the test above.)"""
    alice, bob, room, page, seqs = await open_room(web, person, make_room, messages=1)
    hub = server.app[keys.HUB]
    (conn,) = hub.user_connections(alice.user["id"])
    conn.close(CloseCode.UNAUTHORIZED, "test: no hello in time")
    sent = await post_messages(bob, room["id"], ["after the 4001"])
    await wait_for_text(page, "#messages .msg-text", "after the 4001")
    await page.wait_for_selector("body[data-socket=open]", state="attached")
    assert_unbroken(await rendered_seqs(page), sent[-1])
    assert await page.locator(".auth-form").count() == 0
    assert hub.user_connections(alice.user["id"]) != [conn]  # a new session, not the old one


async def test_rate_limited_sends_wait_and_go_once(web, person, make_room):
    alice, bob, room, page, seqs = await open_room(web, person, make_room)
    texts = [f"quick {i}" for i in range(1, 9)]
    # All eight in one burst from the composer itself: typed one by one on a busy machine,
    # they could come slower than the bucket refills and never meet the limit.
    await page.evaluate(
        """texts => {
            const input = document.querySelector("textarea[name=text]");
            for (const text of texts) { input.value = text; input.form.requestSubmit(); }
        }""",
        texts,
    )
    await page.wait_for_selector("#pending li.waiting >> text=Sending too fast: retrying in")
    await wait_for_text(page, "#messages .msg.mine .msg-text", "quick 8")
    await page.wait_for_selector("#pending li", state="detached")
    shown = await message_texts(page)
    assert sorted(t for t in shown if t.startswith("quick")) == sorted(texts)


async def test_an_unreadable_answer_to_the_sign_in_check_keeps_the_page_signed_in(web, person, make_room):
    """The page checks its stored user on load (GET /api/me). An answer whose body never
    arrives whole (a navigation away mid-read, a proxy cutting it) is a failed check, not a
    user: it once stored `null` as the user, and the next load showed the sign-in form."""
    alice, bob, room, page, seqs = await open_room(web, person, make_room, messages=1)
    checked = asyncio.get_running_loop().create_future()

    async def cut_short(route):
        await route.fulfill(status=200, content_type="application/json", body='{"id": "')
        if not checked.done():
            checked.set_result(None)

    await page.route("**/api/me", cut_short)
    await page.reload()
    await checked
    await page.wait_for_selector("body[data-socket=open]", state="attached")
    await page.unroute("**/api/me")
    stored = await page.evaluate("() => JSON.parse(localStorage.getItem('chat.user'))")
    assert stored is not None and stored["id"] == alice.user["id"]

    await page.reload()
    sent = await post_messages(bob, room["id"], ["after two reloads"])
    await wait_for_text(page, "#messages .msg-text", "after two reloads")
    assert_unbroken(await rendered_seqs(page), sent[-1])
    assert await page.locator(".auth-form").count() == 0
