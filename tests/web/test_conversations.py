"""Conversations in two browsers: edits with their history, reactions, replies that quote, @-mentions,
direct rooms, and comments and likes under posts; and what changed while one browser was offline shows
correctly after it comes back, nothing twice (docs/protocol.md §6.4, §6.5, §12.11, §12.12)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from .conftest import (
    LOOP,
    SocketTap,
    message_texts,
    post_messages,
    rendered_seqs,
    screenshot,
    send_from_page,
    wait_for_text,
)

pytestmark = LOOP


async def two_in_a_room(web, person, make_room, texts):
    alice, bob = await asyncio.gather(person("Alice"), person("Bob"))
    room, _ = await make_room(owner=alice, members=[bob], name="Reunion")
    seqs = await post_messages(alice, room["id"], texts)
    pages = []
    for who in (alice, bob):
        page = await web.open(who, f"#/room/{room['id']}")
        await wait_for_text(page, "#messages .msg-text", texts[-1])
        pages.append(page)
    return alice, bob, room, seqs, pages


def message(page, seq: int):
    return page.locator(f'#messages > li[data-seq="{seq}"]')


async def act(page, seq: int, selector: str) -> None:
    """Click one of a message's actions (they show on hover)."""
    await message(page, seq).hover()
    await message(page, seq).locator(f".msg-actions {selector}").click()


async def reaction(page, seq: int) -> dict[str, str]:
    """The reaction chips of a message: emoji → count."""
    return await message(page, seq).locator(".reaction").evaluate_all(
        "els => Object.fromEntries(els.map(e => [e.dataset.emoji, e.querySelector('.count').textContent]))")


async def test_an_edit_a_reaction_and_a_recall_made_offline_show_once_after_reconnecting(web, person, make_room):
    alice, bob, room, (first, second), (alice_page, bob_page) = await two_in_a_room(
        web, person, make_room, ["hello wrold", "to recall"])

    # Bob reacts; Alice sees it live.
    await act(bob_page, first, '.react-choice[data-emoji="👍"]')
    await alice_page.wait_for_function(
        "seq => document.querySelector(`#messages > li[data-seq='${seq}'] .reaction[data-emoji='👍'] .count`)"
        "?.textContent === '1'", arg=first)

    # Bob goes offline; Alice edits, reacts and recalls meanwhile.
    await bob_page.context.set_offline(True)
    await bob_page.wait_for_selector("#offline-banner", state="visible")
    await act(alice_page, first, ".edit")
    await message(alice_page, first).locator("textarea[name=edit]").fill("hello world")
    await message(alice_page, first).locator(".edit-form button[type=submit]").click()
    await wait_for_text(alice_page, "#messages .msg-text", "hello world")
    await act(alice_page, first, '.react-choice[data-emoji="🎉"]')
    await act(alice_page, second, ".recall")
    await message(alice_page, second).locator(".recall >> text=Recall for everyone?").click()
    await alice_page.wait_for_selector(f'#messages > li[data-seq="{second}"].recalled')
    await alice_page.wait_for_function(
        "seq => document.querySelectorAll(`#messages > li[data-seq='${seq}'] .reaction`).length === 2", arg=first)
    assert await reaction(alice_page, first) == {"👍": "1", "🎉": "1"}

    # Back online: each change once, in place; no update entry shows as a row of its own.
    await bob_page.context.set_offline(False)
    await bob_page.wait_for_selector("#offline-banner", state="hidden")
    await wait_for_text(bob_page, "#messages .msg-text", "hello world")
    await bob_page.wait_for_selector(f'#messages > li[data-seq="{second}"].recalled')
    await bob_page.wait_for_function(
        "seq => document.querySelectorAll(`#messages > li[data-seq='${seq}'] .reaction`).length === 2", arg=first)
    await screenshot(bob_page, "conversations-after-reconnect")
    assert await reaction(bob_page, first) == {"👍": "1", "🎉": "1"}
    assert await message(bob_page, first).locator(".reaction.me").evaluate_all(
        "els => els.map(e => e.dataset.emoji)") == ["👍"]
    assert await rendered_seqs(bob_page) == [1, first, second]  # bob's member.joined, then the two
    texts = await message_texts(bob_page)
    assert texts.count("hello world") == 1 and "hello wrold" not in texts
    # A reload folds the same state from history.
    await bob_page.reload()
    await wait_for_text(bob_page, "#messages .msg-text", "hello world")
    await bob_page.wait_for_function(
        "seq => document.querySelectorAll(`#messages > li[data-seq='${seq}'] .reaction`).length === 2", arg=first)
    assert await reaction(bob_page, first) == {"👍": "1", "🎉": "1"}
    assert await rendered_seqs(bob_page) == [1, first, second]  # bob's member.joined, then the two

    # "edited" opens the earlier versions; Bob's click on his 👍 takes it back, for Alice too.
    await message(bob_page, first).locator(".edited").click()
    await wait_for_text(bob_page, ".msg-edits li", await message(bob_page, first).locator(".msg-edits li").first
                        .text_content())
    assert "hello wrold" in await message(bob_page, first).locator(".msg-edits").text_content()
    await message(bob_page, first).locator('.reaction[data-emoji="👍"]').click()
    await alice_page.wait_for_function(
        "seq => !document.querySelector(`#messages > li[data-seq='${seq}'] .reaction[data-emoji='👍']`)", arg=first)
    assert await reaction(alice_page, first) == {"🎉": "1"}


async def test_reply_quotes_and_mentions_badge_and_autocomplete(web, person, make_room):
    alice, bob, room, (first,), (alice_page, bob_page) = await two_in_a_room(
        web, person, make_room, ["who brings the cake?"])
    await alice_page.goto(alice_page.url.split("#")[0] + "#/")  # Alice looks elsewhere: her badge counts

    await act(bob_page, first, ".reply")
    await bob_page.wait_for_selector("#reply-bar >> text=Replying to Alice")
    await bob_page.fill("textarea[name=text]", "")
    await bob_page.type("textarea[name=text]", "@ali")
    option = bob_page.locator(f'#mention-list li[data-name="{alice.user["name"]}"]')
    await option.wait_for()
    await bob_page.press("textarea[name=text]", "Enter")  # takes the suggestion
    await bob_page.type("textarea[name=text]", "I do")
    assert await bob_page.input_value("textarea[name=text]") == f"@{alice.user['name']} I do"
    await bob_page.press("textarea[name=text]", "Enter")
    await wait_for_text(bob_page, "#messages .msg.mine .mention-badge", f"@{alice.user['name']}")

    badge = alice_page.locator(f'#room-list a[data-room="{room["id"]}"] .mention-count')
    await badge.wait_for()
    assert await badge.text_content() == "@1"
    await alice_page.click(f'#room-list a[data-room="{room["id"]}"]')
    reply = alice_page.locator("#messages .msg.mention")
    await reply.wait_for()
    assert "who brings the cake?" in await reply.locator(".quote").text_content()
    await reply.locator(".quote").click()
    await alice_page.wait_for_selector(f'#messages > li[data-seq="{first}"].flash')
    await badge.wait_for(state="detached")  # read now


async def test_message_button_opens_a_direct_room(web, person, make_room):
    alice, bob, room, _, (alice_page, bob_page) = await two_in_a_room(web, person, make_room, ["hi"])
    await alice_page.click("text=Members")
    await alice_page.locator(f'#members-panel li[data-user="{bob.id}"] .message-user').click()
    await alice_page.wait_for_function("room => !location.hash.includes(room)", arg=room["id"])
    await send_from_page(alice_page, "just between us")
    await wait_for_text(alice_page, "#messages .msg.mine .msg-text", "just between us")
    direct = bob_page.locator("#room-list .room-item:has(.direct-tag)")
    await direct.wait_for()
    await direct.click()
    await wait_for_text(bob_page, "#messages .msg-text", "just between us")
    rooms = (await bob.api.get("/api/rooms"))["items"]
    assert sorted(r["kind"] for r in rooms) == ["direct", "group"]


async def test_comments_and_likes_under_a_post(web, person):
    alice, bob = await asyncio.gather(person("Alice"), person("Bob"))
    post = await alice.api.post("/api/posts", {"title": "Ten years on", "body": "Who is coming?"})
    page = await web.open(bob, f"#/space/{alice.id}")
    item = page.locator(f'#posts li[data-post="{post["id"]}"]')
    await item.wait_for()
    await item.locator(".like").click()
    await page.wait_for_function(
        "id => document.querySelector(`#posts li[data-post='${id}'] .like-count`).textContent === '1'", arg=post["id"])
    await item.locator(".show-comments").click()
    await item.locator("input[name=comment]").fill("Count me in")
    await item.locator(".comment-form button[type=submit]").click()
    await wait_for_text(page, f'#posts li[data-post="{post["id"]}"] .comment-text', "Count me in")
    assert await item.locator(".comment-count").text_content() == "1"
    seen = await alice.api.get(f"/api/posts/{post['id']}")
    assert (seen["likes"], seen["liked"], seen["comments"]) == (1, False, 1)
    # Taking the like back.
    await item.locator(".like").click()
    await page.wait_for_function(
        "id => document.querySelector(`#posts li[data-post='${id}'] .like-count`).textContent === '0'", arg=post["id"])


# An update racing a page of older history (docs/protocol.md §5.2): the page is folded up to the
# reply's `last_seq`, and an entry that comes live meanwhile may lie on either side of it. The tap
# on Bob's WebSocket puts the frames in each of the two orders in turn; each update must show once.

PAST_A_PAGE = 51  # one more than the page's history page (PAGE in chatserver/web/js/chat.js)


async def a_room_of_two_pages(person, make_room):
    """Alice and Bob, and so many messages that Alice's first is on the second page back."""
    alice, bob = await asyncio.gather(person("Alice"), person("Bob"))
    room, _ = await make_room(owner=alice, members=[bob], name="Reunion")
    seqs = await post_messages(alice, room["id"], [f"note {i}" for i in range(PAST_A_PAGE)])
    return alice, bob, room["id"], seqs[0]


def older_page_request(frame) -> bool:
    return frame["op"] == "history" and "before" in frame


def update_entry(frame) -> bool:
    return frame["op"] == "message" and frame.get("kind") == "update"


async def react_over_http(account, room: str, seq: int, emoji: str) -> None:
    await account.api.put(f"/api/rooms/{room}/messages/{seq}/reactions/{quote(emoji)}")


async def settled(page, account, room: str) -> None:
    """Every frame sent before now has been handled: a message sent after them is shown (one
    socket, handled in order), so a check that follows sees what the page will keep showing."""
    [seq] = await post_messages(account, room, ["that is all"])
    await message(page, seq).wait_for()


async def test_an_update_read_into_an_older_page_is_not_applied_again_when_it_comes_live(web, person, make_room):
    alice, bob, room, first = await a_room_of_two_pages(person, make_room)
    tap = SocketTap()
    tap.hold("up", older_page_request)
    page = await web.open(bob, f"#/room/{room}/{first}", tap=tap)  # pages back to the first message
    await tap.until(lambda: tap.held["up"])

    # Alice and Bob (from another device) react while the request waits; their entries are
    # committed before the server reads the page, but reach the page only after it.
    tap.hold("down", update_entry)
    await react_over_http(alice, room, first, "👍")
    await react_over_http(bob, room, first, "🎉")
    await tap.until(lambda: len(tap.held["down"]) == 2)
    [request] = tap.held["up"]
    tap.release("up")
    await tap.until(lambda: any(f["op"] == "history" and f.get("ref") == request["ref"] for f in tap.passed["down"]))
    await message(page, first).wait_for()
    tap.release("down")

    await settled(page, alice, room)
    assert await reaction(page, first) == {"👍": "1", "🎉": "1"}
    assert await message(page, first).locator(".reaction.me").evaluate_all("els => els.map(e => e.dataset.emoji)") == [
        "🎉"]


async def test_an_update_that_comes_live_before_the_older_page_it_missed_is_applied_once(web, person, make_room):
    alice, bob, room, first = await a_room_of_two_pages(person, make_room)
    tap = SocketTap()

    def older_page_reply(frame) -> bool:
        asked = {f["ref"] for f in tap.passed["up"] if older_page_request(f)}
        return frame["op"] == "history" and frame.get("ref") in asked

    tap.hold("down", older_page_reply)
    page = await web.open(bob, f"#/room/{room}/{first}", tap=tap)
    await tap.until(lambda: tap.held["down"])  # the server has read the page

    # Alice edits and Bob (from another device) reacts after that read; the page gets the
    # entries before the page they change.
    await alice.api.patch(f"/api/rooms/{room}/messages/{first}", {"text": "note zero"})
    await react_over_http(bob, room, first, "🎉")
    await tap.until(lambda: sum(update_entry(f) for f in tap.passed["down"]) == 2)
    tap.release("down")
    await message(page, first).wait_for()

    await settled(page, alice, room)
    assert await message(page, first).locator(".msg-text").text_content() == "note zero"
    assert await reaction(page, first) == {"🎉": "1"}
    assert await message(page, first).locator(".reaction.me").count() == 1
