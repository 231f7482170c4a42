"""Serve the app until SIGTERM or SIGINT, then drain it in the order the contract needs.

aiohttp's own shutdown stops reading every connection (`RequestHandler.close()`)
before the app's `on_shutdown` hooks run, so a WebSocket peer's answer to our
close frame would go unread and every socket would hang until the close grace
(docs/protocol.md §8.3: once the peer answers, TCP ends at once, during a drain
too). Here the drain comes first, while connections still read: stop
listening, close every WebSocket with 1001 (after the answers each is owed),
wait for the peers' close frames, and only then let aiohttp finish the HTTP
requests in flight (up to `shutdown_timeout`) and run the cleanup.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from aiohttp import web

from .app import drain
from .config import Settings


async def serve(app: web.Application, settings: Settings, announce: Callable[[str], object] = print) -> None:
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=settings.shutdown_timeout)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        announce(f"======== Running on http://{settings.host}:{settings.port} ========")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await site.stop()  # the port refuses new connections from here on
        await drain(app)
    finally:
        await runner.cleanup()
