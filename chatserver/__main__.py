"""`chatserver [--host H] [--port P]` and `python -m chatserver`."""

from __future__ import annotations

import asyncio
import sys

from . import logs
from .app import create_app
from .config import ConfigError, parse_args
from .runner import serve


def main(argv: list[str] | None = None) -> None:
    try:
        settings = parse_args(argv)
    except ConfigError as exc:
        sys.exit(f"chatserver: {exc}")
    logs.configure(settings.log_level, json=settings.log_format == "json")
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(serve(create_app(settings), settings, lambda text: print(text, flush=True)))
    finally:
        loop.close()


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (the `fast` extra), else the standard loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


if __name__ == "__main__":
    main()
