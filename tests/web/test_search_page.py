"""Finding people, records, groups and messages in the browser (docs/protocol.md §12.13): find a
classmate's record, ask to join, the owner approves in a second browser, then chat in the bound group;
the search box links to a message in its history; a person's page (block, message); account settings."""

from __future__ import annotations

import asyncio

from .conftest import LOOP, screenshot, send_from_page, wait_for_text

pytestmark = LOOP
RECORD = {"name": "北京四中 2010 届", "school": "北京四中", "year": 2010, "class_name": "高三(2)班"}


async def test_find_your_class_request_approve_and_chat_in_the_bound_group(web, person, make_room):
    alice, bob = await asyncio.gather(person("Alice"), person("Bob"))
    room, _ = await make_room(owner=alice, join_policy="open", name="四中 2010")
    record = await alice.api.post("/api/alumni", RECORD)
    await alice.api.put(f"/api/alumni/{record['id']}/room", {"room_id": room["id"]})
    alice_page = await web.open(alice, f"#/alumni/{record['id']}")
    await alice_page.wait_for_selector("#record-requests >> text=No one is waiting.")

    # Bob finds the record by school and year and asks to join.
    bob_page = await web.open(bob, "#/classmates")
    await bob_page.fill("#find-class input[name=school]", "四中")
    await bob_page.fill("#find-class input[name=year]", "2010")
    await bob_page.click("#find-class button[type=submit]")
    item = f"#class-results li[data-record='{record['id']}']"
    await bob_page.wait_for_selector(f"{item} >> text={RECORD['name']}")
    await bob_page.click(f"{item} button")
    await bob_page.wait_for_selector(f"{item} button:disabled >> text=Requested")

    # Alice is told at once; she approves from the record's list of requests.
    await alice_page.wait_for_selector(".toast >> text=Bob asks to join")
    await alice_page.reload()
    await alice_page.click(f"#record-requests li[data-user='{bob.id}'] >> text=Approve")
    await alice_page.wait_for_selector(f"#record-members li[data-user='{bob.id}']")
    await screenshot(alice_page, "record-requests")

    # Bob is in the record now; from it he joins the open bound group and they chat.
    await bob_page.goto(f"{web.server.url}/#/alumni/{record['id']}")
    await bob_page.wait_for_selector(".profile-form")
    await bob_page.click("#record-group")
    await bob_page.click("text=Join this group")
    await alice_page.goto(f"{web.server.url}/#/room/{room['id']}")
    await send_from_page(bob_page, "同学们好! hello class")
    await wait_for_text(alice_page, "#messages .msg-text", "同学们好! hello class")


async def test_search_box_finds_everything_and_links_to_the_message(web, person, make_room):
    alice, bob = await asyncio.gather(person("Alice"), person("Bob Zhang"))
    room, _ = await make_room(owner=alice, members=[bob], name="Zhang family")
    seqs = []
    for i in range(60):  # the hit is far up the history: the page loads older pages to show it
        text = "the photos from 颐和园 are here" if i == 0 else f"filler {i}"
        seqs.append((await alice.api.post(f"/api/rooms/{room['id']}/messages",
                                          {"text": text, "cid": f"c{i}"}))["seq"])
    page = await web.open(alice)
    await page.fill("#search-box", "颐和园")
    await page.press("#search-box", "Enter")
    hit = "#search-messages a.message-hit"
    await wait_for_text(page, f"{hit} mark", "颐和园")
    await page.click(hit)
    await page.wait_for_selector(f"#messages li.found[data-seq='{seqs[0]}']")

    await page.fill("#search-box", "zhang")
    await page.press("#search-box", "Enter")
    await page.wait_for_selector(f"#search-people >> text=Bob Zhang")
    await page.click("#search-people a")
    await page.click("#block-user")
    await page.wait_for_selector("#block-user >> text=Unblock")
    assert [u["id"] for u in (await alice.api.get("/api/me/blocks"))["items"]] == [bob.id]
    await page.click("#message-user")  # the server has direct rooms: one with Bob opens
    await page.wait_for_url("**/#/room/**")
    room_id = await page.evaluate("decodeURIComponent(location.hash.slice('#/room/'.length))")
    assert (await alice.api.get(f"/api/rooms/{room_id}"))["kind"] == "direct"

    await page.goto(f"{web.server.url}/#/settings")
    await page.fill("#display-form input[name=display]", "Alice 王")
    await page.click("#display-form button[type=submit]")
    await page.wait_for_selector(".me-name >> text=Alice 王")
    await page.fill("#password-form input[name=old]", "wrong")
    await page.fill("#password-form input[name=new]", "new horse")
    await page.click("#password-form button[type=submit]")
    await page.wait_for_selector("#password-form .form-error >> text=The current password is wrong.")
    assert (await alice.api.get("/api/me"))["display"] == "Alice 王"
