"""Running a group in the page (docs/protocol.md §12.14), with two browsers (and a third for the
newcomer): the owner mutes a member, who sees why the input is off and until when and cannot send;
approves a join request; posts an announcement and pins a message, which both see in the group header."""

from __future__ import annotations

import asyncio

from .conftest import LOOP, screenshot, send_from_page, wait_for_text

pytestmark = LOOP


async def test_owner_mutes_approves_and_announces(web, person):
    alice, bob, dan = await asyncio.gather(person("Alice"), person("Bob"), person("Dan"))
    room = await alice.api.create_room("Class of 2010", join_policy="approval")
    room_id = room["id"]
    await alice.api.add_member(room_id, bob.id)
    alice_page = await web.open(alice, f"#/room/{room_id}")
    bob_page = await web.open(bob, f"#/room/{room_id}")
    await alice_page.wait_for_selector(".chat-head >> text=Class of 2010")
    await bob_page.wait_for_selector(".chat-head >> text=Class of 2010")

    # The owner mutes Bob for 10 minutes from the member list.
    await alice_page.click(".chat-head button:has-text('Members')")
    bob_row = f"#members-panel li[data-user='{bob.id}']"
    await alice_page.select_option(f"{bob_row} select[name=mute_for]", "600")
    await alice_page.click(f"{bob_row} button:has-text('Mute')")
    await alice_page.wait_for_selector(f"{bob_row} .muted-tag")
    await bob_page.wait_for_selector("#send-block:not([hidden])")
    block = await bob_page.text_content("#send-block")
    assert block.startswith("You are muted in this group until "), block
    assert await bob_page.is_disabled("textarea[name=text]")
    assert await bob_page.is_disabled(".composer button[type=submit]")
    await screenshot(bob_page, "group-admin-muted")
    # And the server agrees: his send is refused (a page could be stale; the server is not).
    refused = await bob_page.evaluate(
        """async (room) => {
             const r = await fetch(`/api/rooms/${room}/messages`, {method: "POST",
               headers: {"Content-Type": "application/json",
                         Authorization: `Bearer ${localStorage.getItem("chat.token")}`},
               body: JSON.stringify({text: "let me talk", cid: "page-1"})});
             return r.status;
           }""",
        room_id,
    )
    assert refused == 403

    # Dan asks to join from the group's page; the owner approves in the panel; Dan is in.
    dan_page = await web.open(dan, f"#/room/{room_id}")
    await dan_page.fill(".ask-to-join input[name=note]", "I was in class 3")
    await dan_page.click(".ask-to-join button:has-text('Ask to join')")
    await dan_page.wait_for_selector(".request-sent >> text=Request sent")
    await alice_page.wait_for_selector(".join-requests >> text=Dan")
    await alice_page.click(".join-requests button:has-text('Approve')")
    await dan_page.wait_for_selector(".chat-head >> text=Class of 2010")
    await alice_page.wait_for_selector(f"#members-panel li[data-user='{dan.id}']")

    # An announcement: both see it in the group header.
    await alice_page.fill(".announce textarea[name=announcement]", "Picnic on Sunday at noon")
    await alice_page.click(".announce button:has-text('Announce')")
    for page in (alice_page, bob_page):
        await wait_for_text(page, "#announcement", "Announcement: Picnic on Sunday at noon")
    await wait_for_text(bob_page, "#messages .system-detail", "Picnic on Sunday at noon")
    await alice_page.wait_for_selector(".announcement-list >> text=Picnic on Sunday at noon")

    # A pin: the owner pins her message; both headers show it.
    await send_from_page(alice_page, "Bring your class photos")
    await wait_for_text(alice_page, "#messages .msg.mine .msg-text", "Bring your class photos")
    mine = "#messages .msg.mine:has-text('Bring your class photos')"
    await alice_page.hover(mine)  # a message's actions show on hover (or a tap)
    await alice_page.click(f"{mine} button.pin")
    for page in (alice_page, bob_page):
        await wait_for_text(page, "#pins", "Pinned: Bring your class photos")
    await screenshot(alice_page, "group-admin-owner")
