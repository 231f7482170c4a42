"""Typed application keys: how handlers reach the server's parts (no module globals)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from storage.db import Database

    from .bus.base import Bus
    from .config import Settings
    from .connection import Flusher
    from .hub import Hub
    from .metrics import Metrics
    from .ratelimit import LoginGuard
    from .services.accounts import AccountService
    from .services.alumni import AlumniService
    from .services.files import FileService
    from .services.messages import MessageService
    from .services.posts import PostService
    from .services.records import RecordService
    from .services.rooms import RoomService
    from .services.search import SearchService
    from .services.writer import MessageWriter

SETTINGS = web.AppKey("settings", "Settings")
DB = web.AppKey("db", "Database")
BUS = web.AppKey("bus", "Bus")
HUB = web.AppKey("hub", "Hub")
METRICS = web.AppKey("metrics", "Metrics")
FLUSHER = web.AppKey("flusher", "Flusher")
WRITER = web.AppKey("writer", "MessageWriter")
ACCOUNTS = web.AppKey("accounts", "AccountService")
MESSAGES = web.AppKey("messages", "MessageService")
ROOMS = web.AppKey("rooms", "RoomService")
DIRECT = web.AppKey("direct", "DirectService")
ALUMNI = web.AppKey("alumni", "AlumniService")
POSTS = web.AppKey("posts", "PostService")
SEARCH = web.AppKey("search", "SearchService")
RECORDS = web.AppKey("records", "RecordService")
FILES = web.AppKey("files", "FileService")
LOGIN_GUARD = web.AppKey("login_guard", "LoginGuard")
ROUTES = web.AppKey("routes", list)
