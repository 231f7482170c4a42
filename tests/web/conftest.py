"""Browser tests: the page at `/` in Debian's Chromium, driven by Playwright (async API).

Each test gets a fresh in-process server (the `server` fixture) and a fresh
headless Chromium; `web.open(account)` gives a signed-in page. Screenshots go
to `test-artifacts/`. Without Chromium (or Playwright) the tests are skipped
with the reason, or fail when `CHAT_REQUIRE_SERVICES=1`.

Starting Playwright and Chromium takes seconds, so one browser serves the
whole session; Playwright is bound to the event loop it started on, so every
test here (mark `LOOP`) and the async fixtures it uses run on the session's
loop: `server` and `api` are redefined here for that (SQLite only: the
browser tests are about the page, the storage tests cover PostgreSQL).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from chatserver import keys
from chatserver.app import create_app
from chatserver.config import Settings
from client_proto.http import ApiClient
from tests.conftest import ROOT, Account, LiveServer, free_port, require, unique_name

CHROMIUM = os.environ.get("CHAT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
DESKTOP = {"width": 1180, "height": 760}
PHONE = {"width": 390, "height": 780}
TIMEOUT_MS = 10_000


def browser_missing() -> str | None:
    """None when the browser tests can run, else why not (said loudly in the skip)."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "BROWSER TESTS CANNOT RUN: Playwright is not installed (pip install -e '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"BROWSER TESTS CANNOT RUN: no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


LOOP = pytest.mark.asyncio(loop_scope="session")
_skipped: set[str] = set()  # why the browser tests could not run, said again at the end


def pytest_terminal_summary(terminalreporter) -> None:
    for reason in _skipped:
        terminalreporter.write_line(f"!!! {reason}: the browser tests were SKIPPED", red=True, bold=True)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _chromium():
    """(browser, None) for the session, or (None, why not)."""
    missing = browser_missing()
    if missing:
        _skipped.add(missing)
        yield None, missing
        return
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser, None
        finally:
            await browser.close()


@pytest.fixture
def browser(_chromium):
    browser, missing = _chromium
    require(missing, "CHAT_REQUIRE_SERVICES")
    return browser


@pytest_asyncio.fixture(loop_scope="session")
async def server(tmp_path, settings_overrides) -> AsyncIterator[LiveServer]:
    """The app in this process on a free port, on the session's loop (see the module doc)."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}", **settings_overrides)
    test_server = TestServer(create_app(settings), host="127.0.0.1", port=free_port())
    await test_server.start_server()
    _cheap_password_hashing(test_server.app)
    try:
        yield LiveServer(url=str(test_server.make_url("")).rstrip("/"), app=test_server.app, settings=settings)
    finally:
        await test_server.close()


def _cheap_password_hashing(app) -> None:
    """Argon2 at its production cost takes over a second per sign-up and sign-in here; the page
    does not care how passwords are hashed, so these tests use the cheapest valid parameters."""
    accounts = app[keys.ACCOUNTS]
    if hasattr(accounts, "_hasher"):
        accounts._hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@pytest_asyncio.fixture(loop_scope="session")
async def api(server) -> AsyncIterator[ApiClient]:
    async with ApiClient(server.url) as client:
        yield client


class SocketTap:
    """Sits on a page's WebSocket (Playwright's `route_web_socket`) and passes every frame on, in
    order, except those a test holds back: a browser test can then make a race happen in the one
    order it wants instead of hoping for it.

    Directions are "up" (page to server) and "down"; frames are JSON (`chat.v1.json`).
    `hold(direction, match)` keeps back each later frame that `match(frame)` accepts until
    `release(direction)` sends them on, in order. `passed[direction]` and `held[direction]`
    list the frames so far; `until(check)` waits (with the tests' deadline) until `check()` holds.
    """

    def __init__(self):
        self.passed: dict[str, list[dict]] = {"up": [], "down": []}
        self.held: dict[str, list[dict]] = {"up": [], "down": []}
        self._match: dict[str, Callable[[dict], bool] | None] = {"up": None, "down": None}
        self._raw: dict[str, list] = {"up": [], "down": []}
        self._send: dict[str, Callable] = {}
        self._moved = asyncio.Event()

    async def attach(self, page) -> None:
        await page.route_web_socket(re.compile(r"/ws$"), self._route)

    def _route(self, ws) -> None:
        server = ws.connect_to_server()
        self._send = {"up": server.send, "down": ws.send}
        ws.on_message(lambda message: self._on("up", message))
        server.on_message(lambda message: self._on("down", message))

    def _on(self, direction: str, message) -> None:
        frame = json.loads(message)
        match = self._match[direction]
        if match is not None and match(frame):
            self.held[direction].append(frame)
            self._raw[direction].append(message)
        else:
            self.passed[direction].append(frame)
            self._send[direction](message)
        self._moved.set()

    def hold(self, direction: str, match: Callable[[dict], bool]) -> None:
        self._match[direction] = match

    def release(self, direction: str) -> None:
        """Send the held frames on, in order, and hold no more."""
        self._match[direction] = None
        for frame, message in zip(self.held[direction], self._raw[direction]):
            self.passed[direction].append(frame)
            self._send[direction](message)
        self.held[direction].clear()
        self._raw[direction].clear()
        self._moved.set()

    async def until(self, check: Callable[[], bool], timeout: float = TIMEOUT_MS / 1000) -> None:
        async with asyncio.timeout(timeout):
            while not check():
                self._moved.clear()
                await self._moved.wait()


class Web:
    """Opens pages of the server under test and collects what goes wrong in them."""

    def __init__(self, browser, server: LiveServer):
        self.browser = browser
        self.server = server
        self.errors: list[str] = []
        self.contexts = []

    async def new_page(self, *, viewport=DESKTOP, bypass_csp: bool = False):
        context = await self.browser.new_context(viewport=viewport, bypass_csp=bypass_csp)
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and self._console_error(page, msg.text))
        return page

    def _console_error(self, page, text: str) -> None:
        # Refused WebSocket handshakes while offline are expected; script errors are not.
        if "WebSocket" in text or "ERR_INTERNET_DISCONNECTED" in text or "Failed to load resource" in text:
            return
        self.errors.append(f"{page.url}: console: {text}")

    async def open(self, account: Account | None = None, hash: str = "#/", tap: SocketTap | None = None, **kwargs):
        """A page signed in as `account` (token put in localStorage as the sign-in form would);
        `tap` sits on its WebSocket from the start."""
        page = await self.new_page(**kwargs)
        if tap is not None:
            await tap.attach(page)
        if account is not None:
            # Signed in as the sign-in form leaves it, in this page's first load only.
            await page.add_init_script(
                "if (location.protocol === 'http:' && !sessionStorage.getItem('test.signed-in')) {"
                f" localStorage.setItem('chat.token', {json.dumps(account.token)});"
                f" localStorage.setItem('chat.user', {json.dumps(json.dumps(account.user))});"
                " sessionStorage.setItem('test.signed-in', '1'); }"
            )
        await page.goto(f"{self.server.url}/{hash}")
        if account is not None:
            await page.wait_for_selector("body[data-socket=open]", state="attached")
        return page

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def web(browser, server) -> AsyncIterator[Web]:
    web = Web(browser, server)
    try:
        yield web
    finally:
        await web.close()
    assert not web.errors, "errors in the page:\n" + "\n".join(web.errors)


async def screenshot(page, name: str) -> Path:
    """Save a PNG of the page into test-artifacts/ (kept out of git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


async def rendered_seqs(page) -> list[int]:
    """The seqs of the messages shown in the open group, top to bottom."""
    return await page.eval_on_selector_all("#messages > li", "els => els.map(e => Number(e.dataset.seq))")


async def message_texts(page) -> list[str]:
    return await page.eval_on_selector_all("#messages > li .msg-text", "els => els.map(e => e.textContent)")


async def wait_for_text(page, selector: str, text: str, timeout_ms: float | None = None) -> None:
    """Wait until an element matching `selector` has exactly `text` as its text.

    On a timeout the error says what the page showed instead: the socket's state and the
    last texts that matched `selector`.
    """
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError  # only here: it may be missing

    try:
        await page.wait_for_function(
            "([sel, text]) => [...document.querySelectorAll(sel)].some(e => e.textContent === text)",
            arg=[selector, text],
            timeout=timeout_ms,
        )
    except PlaywrightTimeoutError as exc:
        shown = await page.evaluate(
            "(sel) => ({socket: document.body.dataset.socket || null, url: location.href,"
            " ready: document.readyState, body: document.body.innerHTML.slice(0, 400),"
            " nav: performance.getEntriesByType('navigation').map(e => e.type),"
            " texts: [...document.querySelectorAll(sel)].slice(-5).map(e => e.textContent)})",
            selector,
        )
        raise AssertionError(f"{text!r} never appeared in {selector!r}; the page showed {shown}") from exc


async def send_from_page(page, text: str) -> None:
    await page.fill("textarea[name=text]", text)
    await page.press("textarea[name=text]", "Enter")


@pytest.fixture
def person(server, api):
    """`await person("Alice")`: a signed-up, signed-in user with that display name."""

    async def make(display: str, password: str = "correct horse") -> Account:
        name = unique_name(re.sub(r"[^a-z]", "", display.lower())[:8] or "u")
        await api.register(name, password, display)
        token = await api.login(name, password)
        user_api = api.as_user(token)
        return Account(user=await user_api.get("/api/me"), token=token, api=user_api, ws_url=server.ws_url)

    return make


async def post_messages(account: Account, room_id: str, texts) -> list[int]:
    """Send over HTTP (as a bot or another client would); returns the seqs."""
    seqs = []
    for text in texts:
        ack = await account.api.post(f"/api/rooms/{room_id}/messages", {"text": text, "cid": uuid.uuid4().hex})
        seqs.append(ack["seq"])
    return seqs
