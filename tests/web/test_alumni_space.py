"""Alumni records, invitations, personal spaces, posts and feeds in the browser, and how
they show in the bound group (docs/protocol.md §12.6, §12.8)."""

from __future__ import annotations

import asyncio

import pytest

from chatserver import keys

from .conftest import LOOP, screenshot, wait_for_text

pytestmark = LOOP
RECORD = {"name": "Lycée Hugo 2010", "school": "Lycée Victor Hugo", "year": 2010, "class_name": "Terminale S"}


def api_paths(server) -> set[str]:
    return {route.path for route in server.app[keys.ROUTES]}


@pytest.fixture
def alumni_group(server, person, make_room):
    """`alice, bob, room, record = await alumni_group()`: Alice owns a group with Bob in it and a
    record bound to it; with `bob_in_record`, Bob has accepted an invitation to the record."""
    if "/api/alumni" not in api_paths(server):
        pytest.skip("the alumni API is not in this tree yet")

    async def make(bob_in_record: bool = False):
        alice, bob = await asyncio.gather(person("Alice"), person("Bob"))
        room, _ = await make_room(owner=alice, members=[bob], name="Class of 2010")
        record = await alice.api.post("/api/alumni", RECORD)
        await alice.api.put(f"/api/alumni/{record['id']}/room", {"room_id": room["id"]})
        if bob_in_record:
            await alice.api.post(f"/api/alumni/{record['id']}/invitations", {"user_ids": [bob.id]})
            (invitation,) = (await bob.api.get("/api/me/invitations", status="pending"))["items"]
            await bob.api.post(f"/api/invitations/{invitation['id']}/accept")
        return alice, bob, room, record

    return make


async def test_invitation_accepted_in_the_browser_shows_alumni_joined_in_the_group(web, alumni_group):
    alice, bob, room, record = await alumni_group()
    bob_page = await web.open(bob, f"#/room/{room['id']}")
    await bob_page.wait_for_selector("#messages li[data-system-type='alumni.bound'] >> text=Open the alumni record")
    alice_page = await web.open(alice, f"#/alumni/{record['id']}")

    # Alice fills in her profile, her city public, and invites the whole group.
    await alice_page.fill(".profile-form input[name=real_name]", "Alice Martin")
    await alice_page.fill(".profile-form input[name=city]", "Lyon")
    await alice_page.select_option(".profile-form select[name=city_visibility]", "public")
    await alice_page.click(".profile-form button[type=submit]")
    await alice_page.wait_for_selector(".toast >> text=Profile saved.")
    await alice_page.wait_for_selector("#record-members >> text=Alice Martin")
    await alice_page.click("#invite-group")
    await alice_page.wait_for_selector("[role=status] >> text=Invited 1 person.")
    await screenshot(alice_page, "alumni-record")

    # Bob is told at once, and the group says so too.
    await bob_page.wait_for_selector(f".toast >> text=Alice invited you to {RECORD['name']}.")
    await bob_page.wait_for_selector("#messages li[data-system-type='alumni.invitation']")
    await bob_page.wait_for_selector(".nav .badge >> text=1")
    await bob_page.click(".nav >> text=Invitations")
    await bob_page.wait_for_selector(f".invitation >> text={RECORD['name']}")
    await screenshot(bob_page, "invitations")
    await bob_page.click(".invitation button:has-text('Accept')")

    # Accepted: Bob is on the record's page, sees Alice's profile as a member, and the group shows it.
    await bob_page.wait_for_selector(f".record-head h1 >> text={RECORD['name']}")
    await bob_page.wait_for_selector("#record-members >> text=Alice Martin")
    assert await bob_page.locator(".nav .badge").is_hidden()
    await bob_page.click(".record-head >> text=Open the group")
    joined = f"#messages li[data-system-type='alumni.joined'] >> text=Bob joined the alumni record “{RECORD['name']}”"
    await bob_page.wait_for_selector(joined)
    alice_chat = await web.open(alice, f"#/room/{room['id']}")
    await alice_chat.wait_for_selector(joined)
    await screenshot(alice_chat, "chat-alumni")


async def test_post_published_to_a_record_links_from_the_group_to_the_space(web, server, alumni_group):
    if "/api/posts" not in api_paths(server):
        pytest.skip("the spaces and posts API is not in this tree yet")
    alice, bob, room, record = await alumni_group(bob_in_record=True)
    title = "<b>Reunion</b> in June"
    body = 'We meet at the old gym <img src=x onerror="window.__pwned = 1">\nBring photos!'
    bob_page = await web.open(bob, "#/space")
    await bob_page.fill(".post-form input[name=title]", title)
    await bob_page.fill(".post-form textarea[name=body]", body)
    await bob_page.check(f".post-form input[value='{record['id']}']")
    await bob_page.click(".post-form button:has-text('Publish')")
    await wait_for_text(bob_page, "#posts .post-title", title)
    await screenshot(bob_page, "space")

    # In the group: a system message linking to the post, read as text in Bob's space.
    alice_page = await web.open(alice, f"#/room/{room['id']}", bypass_csp=True)
    published = alice_page.locator("#messages li[data-system-type='post.published']")
    await published.locator(f"text=Bob published the post “{title}”").wait_for()
    await published.locator("text=Read the post").click()
    await alice_page.wait_for_selector("#posts .post.focused")
    assert await alice_page.inner_text("#posts .post.focused .post-title") == title
    assert await alice_page.text_content("#posts .post.focused .post-body") == body
    assert await alice_page.locator("#posts img, #posts b").count() == 0
    assert await alice_page.evaluate("window.__pwned") is None

    # Bob edits it: the group hears of it; Alice's feed lists it.
    await bob_page.click("#posts .post button:has-text('Edit')")
    await bob_page.fill("#posts .post-form input[name=title]", "Reunion on June 14")
    await bob_page.click("#posts .post-form button:has-text('Save')")
    await wait_for_text(bob_page, "#posts .post-title", "Reunion on June 14")
    await alice_page.go_back()
    await alice_page.wait_for_selector(
        "#messages li[data-system-type='post.updated'] >> text=Bob updated the post “Reunion on June 14”")
    await alice_page.click(".nav >> text=Feed")
    await alice_page.wait_for_selector(".feed-entry.feed-post >> text=Bob wrote “Reunion on June 14”")
    await alice_page.wait_for_selector(f".feed-entry.feed-joined >> text={RECORD['name']}")
    await screenshot(alice_page, "feed")
