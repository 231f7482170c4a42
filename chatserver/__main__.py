"""`chatserver [--host H] [--port P]` and `python -m chatserver`."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from . import logs
from .app import create_app
from .config import ConfigError, parse_args


def main(argv: list[str] | None = None) -> None:
    try:
        settings = parse_args(argv)
    except ConfigError as exc:
        sys.exit(f"chatserver: {exc}")
    logs.configure(settings.log_level, json=settings.log_format == "json")
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=None,
        print=lambda text: print(text, flush=True),
        loop=loop,
    )


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (the `fast` extra), else the standard loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


if __name__ == "__main__":
    main()
