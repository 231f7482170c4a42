"""The chat page in a real browser: signing in, groups, chatting, typing, recall, and text-only rendering."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.conftest import unique_name

from .conftest import (
    LOOP,
    PHONE,
    message_texts,
    post_messages,
    rendered_seqs,
    screenshot,
    send_from_page,
    wait_for_text,
)

pytestmark = LOOP


async def test_sign_up_create_a_group_sign_out_and_sign_in(web, server):
    page = await web.open()
    await page.click("text=New here? Create an account")
    await page.fill("input[name=name]", "Not Valid")
    await page.fill("input[name=password]", "pw")
    await page.click("button[type=submit]")
    await page.wait_for_selector(".form-error >> text=lowercase only")

    name = unique_name("carol")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=display]", "Carol")
    await page.fill("input[name=password]", "carol's secret")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#my-user-id")
    await page.wait_for_selector("body[data-socket=open]")

    await page.click("text=New group")
    await page.fill("input[name=name]", "Book club")
    await page.fill("input[name=topic]", "one chapter a week")
    await page.click("button:has-text('Create')")
    await page.wait_for_selector(".chat .room-topic >> text=one chapter a week")
    await page.wait_for_selector("#room-list >> text=Book club")
    await page.wait_for_selector(".history-top >> text=No messages yet")

    await page.click("text=Sign out")
    await page.wait_for_selector(".form-note >> text=You are signed out.")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", "wrong")
    await page.click("button[type=submit]")
    await page.wait_for_selector(".form-error >> text=Wrong user name or password.")
    await screenshot(page, "sign-in")
    await page.fill("input[name=password]", "carol's secret")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#room-list >> text=Book club")


async def test_two_users_chat_see_typing_and_unread(web, person):
    alice, bob = await asyncio.gather(person("Alice"), person("Bob"))
    alice_page = await web.open(alice)
    bob_page = await web.open(bob)

    # Alice creates a group in the page and adds Bob by his id; it appears in Bob's list live.
    await alice_page.click("text=New group")
    await alice_page.fill("input[name=name]", "Class of 2010")
    await alice_page.click("button:has-text('Create')")
    await alice_page.wait_for_selector(".chat-head >> text=Class of 2010")
    room_id = await alice_page.get_attribute(".chat", "data-room")
    await alice_page.click(".chat-head button:has-text('Members')")
    await alice_page.fill("input[name=user_id]", bob.id)
    await alice_page.click(".add-member button[type=submit]")
    await alice_page.wait_for_selector("#members-panel >> text=Bob")
    await alice_page.wait_for_selector("#messages li[data-system-type='member.joined'] >> text=Alice added Bob")
    await alice_page.click(".chat-head button:has-text('Members')")
    await bob_page.wait_for_selector("#room-list >> text=Class of 2010")

    # A message while Bob looks elsewhere: an unread badge, cleared when he opens the group.
    await send_from_page(alice_page, "Hi Bob, welcome!")
    await bob_page.wait_for_selector(f"#room-list a[data-room='{room_id}'] .badge >> text=1")
    await bob_page.click("#room-list >> text=Class of 2010")
    await wait_for_text(bob_page, "#messages .msg.theirs .msg-text", "Hi Bob, welcome!")
    await bob_page.wait_for_selector(f"#room-list a[data-room='{room_id}']:not(.has-unread)")

    # Bob types: Alice sees it; then his message arrives, and each sees their own marked.
    await bob_page.type("textarea[name=text]", "Hello Alice")
    await alice_page.wait_for_selector(".typing >> text=Bob is typing…")
    await bob_page.press("textarea[name=text]", "Enter")
    await wait_for_text(alice_page, "#messages .msg.theirs .msg-text", "Hello Alice")
    await wait_for_text(bob_page, "#messages .msg.mine .msg-text", "Hello Alice")
    await wait_for_text(alice_page, "#messages .msg.mine .msg-text", "Hi Bob, welcome!")
    await alice_page.wait_for_function("() => document.querySelector('.typing').textContent === ''")
    await send_from_page(alice_page, "How have you been these years? Still in Lyon?")
    await send_from_page(bob_page, "Yes! Working at the observatory now.\nCome visit 🙂")
    await wait_for_text(alice_page, "#messages .msg-text", "Yes! Working at the observatory now.\nCome visit 🙂")
    await wait_for_text(bob_page, "#messages .msg-text", "How have you been these years? Still in Lyon?")
    # Each page shows its own message once the server's copy of it comes back.
    await wait_for_text(alice_page, "#messages .msg.mine .msg-text", "How have you been these years? Still in Lyon?")
    await wait_for_text(bob_page, "#messages .msg.mine .msg-text", "Yes! Working at the observatory now.\nCome visit 🙂")
    assert await rendered_seqs(alice_page) == await rendered_seqs(bob_page) == [1, 2, 3, 4, 5]
    await alice_page.wait_for_selector("#pending li", state="detached")
    await screenshot(alice_page, "chat")

    phone = await web.open(bob, f"#/room/{room_id}", viewport=PHONE)
    await wait_for_text(phone, "#messages .msg-text", "How have you been these years? Still in Lyon?")
    await screenshot(phone, "chat-phone")
    await phone.click(".chat-head .back")
    await phone.wait_for_selector("#room-list >> text=Class of 2010")
    await screenshot(phone, "groups-phone")


async def test_markup_in_messages_names_and_groups_is_shown_as_text(web, server, person):
    evil = '<img src=x onerror="window.__pwned = 1">'
    alice = await person("<b>Alice</b>" + evil[:20])
    bob = await person("Bob")
    room = await alice.api.create_room("<script>window.__pwned = 2</script>Group", join_policy="invite")
    await alice.api.add_member(room["id"], bob.id)
    texts = [
        "<script>window.__pwned = 3</script>",
        evil,
        '<a href="javascript:window.__pwned = 4">click</a> & &amp; &lt;',
        "<style>body { display: none }</style>",
    ]
    await post_messages(alice, room["id"], texts)
    # bypass_csp: the page must be safe on its own, not only because the CSP blocks inline code.
    page = await web.open(bob, f"#/room/{room['id']}", bypass_csp=True)
    await wait_for_text(page, "#messages .msg-text", texts[-1])
    assert (await message_texts(page))[-4:] == texts
    assert await page.inner_text(".chat-head .room-name") == room["name"]
    assert await page.locator("#messages img, #messages script, #messages style, #messages a[href^=javascript]").count() == 0
    assert await page.locator("#room-list script, .chat-head script").count() == 0
    assert await page.evaluate("window.__pwned") is None
    assert await page.is_visible("#messages")

    # Sent from the page too, and shown as typed.
    await send_from_page(page, texts[1])
    await wait_for_text(page, "#messages .msg.mine .msg-text", texts[1])
    assert await page.locator("#messages img").count() == 0
    assert await page.evaluate("window.__pwned") is None

    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/") as response:
            csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


async def test_recall_own_message(web, person, make_room):
    alice, bob = await asyncio.gather(person("Alice"), person("Bob"))
    room, _ = await make_room(owner=alice, members=[bob])
    alice_page = await web.open(alice, f"#/room/{room['id']}")
    bob_page = await web.open(bob, f"#/room/{room['id']}")
    await send_from_page(alice_page, "oops, wrong group")
    await wait_for_text(bob_page, "#messages .msg-text", "oops, wrong group")
    # Bob (a plain member) cannot recall Alice's message: no button for him.
    assert await bob_page.locator("#messages .msg.theirs .recall").count() == 0
    message = alice_page.locator("#messages .msg.mine", has_text="oops, wrong group")
    await message.hover()
    await message.locator(".recall").click()
    await message.locator(".recall >> text=Recall for everyone?").click()
    await bob_page.wait_for_selector("#messages .msg.recalled >> text=This message was recalled.")
    await alice_page.wait_for_selector("#messages .msg.mine.recalled")
    assert await bob_page.locator("#messages >> text=oops, wrong group").count() == 0


async def test_join_an_open_group_by_id_and_errors_in_words(web, person, make_room):
    alice, bob = await asyncio.gather(person("Alice"), person("Bob"))
    open_room, _ = await make_room(owner=alice, join_policy="open", name="Open house")
    closed_room, _ = await make_room(owner=alice, join_policy="invite", name="Private")
    page = await web.open(bob, "#/groups/join")
    await page.fill("input[name=room]", "r_does_not_exist")
    await page.click("button:has-text('Join')")
    await page.wait_for_selector(".form-error >> text=There is no group with that id.")
    await page.fill("input[name=room]", closed_room["id"])
    await page.click("button:has-text('Join')")
    await page.wait_for_selector(".form-error >> text=That group is invite-only")
    await page.fill("input[name=room]", open_room["id"])
    await page.click("button:has-text('Join')")
    await page.wait_for_selector("#messages li[data-system-type='member.joined'] >> text=Bob joined")
    await page.wait_for_selector("#room-list >> text=Open house")

    # A message the server refuses (too long) is refused in words before it is sent.
    await page.fill("textarea[name=text]", "x" * 4001)
    await page.wait_for_selector(".counter.over >> text=4001/4000")
    await page.press("textarea[name=text]", "Enter")
    await page.wait_for_selector(".toast-error >> text=That message is too long")

    # Renaming the group shows as a system message and renames it in the list.
    await alice.api.patch(f"/api/rooms/{open_room['id']}", {"name": "Open house 2"})
    await page.wait_for_selector("#messages li[data-system-type='room.updated'] >> text=renamed the group to “Open house 2”")
    await page.wait_for_selector("#room-list >> text=Open house 2")

    # Kicked: the group goes away from the list and the page says so.
    await alice.api.delete(f"/api/rooms/{open_room['id']}/members/{bob.id}")
    await page.wait_for_selector("#room-list >> text=Open house 2", state="detached")
    await page.wait_for_selector(".toast >> text=You were removed from a group.")
