"""Structured JSON logs (structlog over the standard library) with connection, user and room in context.

Never a token, password or message body in a log line: such keys are
redacted here, and the database engine hides SQL parameters (storage.db).
"""

from __future__ import annotations

import logging
import sys

import structlog

SECRET_KEYS = frozenset({"token", "password", "text", "body", "authorization", "password_hash"})


def _redact(_, __, event: dict) -> dict:
    for key in SECRET_KEYS & event.keys():
        event[key] = "[redacted]"
    return event


def configure(level: str = "INFO", *, json: bool = True) -> None:
    """Route every log record (ours, aiohttp's, SQLAlchemy's) through one JSON renderer on stderr."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for noisy in ("alembic", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def bind(**context) -> None:
    """Add fields to every log line of the current task (a connection's handler)."""
    structlog.contextvars.bind_contextvars(**context)
