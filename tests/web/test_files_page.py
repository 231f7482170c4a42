"""Files in the page (docs/protocol.md §12.10), in Chromium: attach by button, drop and paste; the
other member sees the thumbnail and opens the full image; posts show their pictures; avatars show
in the lists; a non-member's direct download is refused."""

from __future__ import annotations

import io

from PIL import Image

from .conftest import LOOP, screenshot

pytestmark = LOOP


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (220, 120, 30)).save(out, "JPEG")
    return out.getvalue()


async def group(person, *members):
    owner = await person("Alice")
    others = [await person(name) for name in members]
    room = await owner.api.create_room("Photos")
    for other in others:
        await owner.api.add_member(room["id"], other.id)
    return room, owner, others


async def test_an_image_sent_in_one_browser_shows_as_a_thumbnail_and_opens_full_size(web, person):
    room, alice, (bob,) = await group(person, "Bob")
    stranger = await person("Carol")
    mine = await web.open(alice, f"#/room/{room['id']}")
    theirs = await web.open(bob, f"#/room/{room['id']}")
    await mine.set_input_files("input[name=files]", files=[
        {"name": "sunset.jpg", "mimeType": "image/jpeg", "buffer": jpeg(900, 600)}])
    await mine.wait_for_selector("#attachments li[data-state=ready]")
    await mine.fill("textarea[name=text]", "look at this")
    await mine.press("textarea[name=text]", "Enter")

    thumb = await theirs.wait_for_selector("#messages .file-image img.thumb[data-state=loaded]")
    size = await thumb.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size == [320, 213]  # the thumbnail, not the original
    await thumb.click()
    full = await theirs.wait_for_selector(".lightbox img.full-image[data-state=loaded]")
    assert await full.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [900, 600]
    await screenshot(theirs, "files-full-image")
    await theirs.keyboard.press("Escape")
    await theirs.wait_for_selector(".lightbox", state="detached")

    file_id = await theirs.eval_on_selector("#messages .file-image", "b => b.dataset.file")
    outsider = await web.open(stranger)
    status = await outsider.evaluate(
        "async (id) => (await fetch(`/api/files/${id}`, {headers: {Authorization: "
        "`Bearer ${localStorage.getItem('chat.token')}`}})).status", file_id)
    assert status == 403
    assert (await outsider.goto(f"{web.server.url}/api/files/{file_id}")).status == 401  # no token in URLs


async def test_files_dropped_or_pasted_show_as_cards(web, person):
    room, alice, (bob,) = await group(person, "Bob")
    mine = await web.open(alice, f"#/room/{room['id']}")
    theirs = await web.open(bob, f"#/room/{room['id']}")
    await mine.evaluate("""() => {
        const dropped = new DataTransfer();
        dropped.items.add(new File(["minutes of the meeting"], "minutes.txt", {type: "text/plain"}));
        document.querySelector(".chat").dispatchEvent(
            new DragEvent("drop", {dataTransfer: dropped, bubbles: true, cancelable: true}));
        const pasted = new DataTransfer();
        pasted.items.add(new File(["a list"], "list.txt", {type: "text/plain"}));
        document.querySelector("textarea[name=text]").dispatchEvent(
            new ClipboardEvent("paste", {clipboardData: pasted, bubbles: true, cancelable: true}));
    }""")
    await mine.wait_for_function(
        "() => document.querySelectorAll('#attachments li[data-state=ready]').length === 2")
    await mine.press("textarea[name=text]", "Enter")  # files alone: no text needed
    await theirs.wait_for_selector("#messages .file-card >> text=minutes.txt")
    names = await theirs.eval_on_selector_all("#messages .file-card .file-name", "els => els.map(e => e.textContent)")
    assert sorted(names) == ["list.txt", "minutes.txt"]


async def test_pictures_in_posts_and_avatars_in_lists(web, person):
    room, alice, (bob,) = await group(person, "Bob")
    picture = await alice.api.upload(jpeg(400, 300), name="class.jpg")
    await alice.api.post("/api/posts", {"title": "Reunion", "body": "we met", "files": [picture["id"]]})
    face = await alice.api.upload(jpeg(64, 64), name="me.jpg")
    await alice.api.patch("/api/me", {"avatar": face["id"]})
    logo = await alice.api.upload(jpeg(80, 80), name="logo.jpg")
    await alice.api.patch(f"/api/rooms/{room['id']}", {"avatar": logo["id"]})

    page = await web.open(bob, f"#/space/{alice.id}")
    await page.wait_for_selector(".post .file-image img.thumb[data-state=loaded]")
    await page.goto(f"{web.server.url}/#/room/{room['id']}")
    await page.wait_for_selector("#room-list img.avatar[data-state=loaded]")  # the group's picture
    await page.click("button:has-text('Members')")
    await page.wait_for_selector(f"#members-panel li[data-user='{alice.id}'] img.avatar[data-state=loaded]")
    await screenshot(page, "files-avatars")
