"""`create_app(settings)`: wires storage, bus, hub, services and handlers with typed app keys."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from client_proto.errors import CloseCode
from storage.blobs import BlobStore, DatabaseBlobStore, FilesystemBlobStore
from storage.db import Database

from . import keys, ws
from .announcements import Announcer
from .bus.base import Bus
from .bus.memory import MemoryBus
from .config import ConfigError, Settings
from .http import accounts as accounts_http
from .http import admin as admin_http
from .http import alumni as alumni_http
from .http import files as files_http
from .http import ops as ops_http
from .http import posts as posts_http
from .http import records as records_http
from .http import rooms as rooms_http
from .http import search as search_http
from .http.errors import error_middleware
from .http.routes import add_routes
from .hub import Hub
from .metrics import Metrics
from .ratelimit import LoginGuard
from .services.accounts import AccountService
from .services.alumni import AlumniService
from .services.direct import DirectService
from .services.files import FileService
from .services.messages import MessageService
from .services.moderation import ModerationService
from .services.posts import PostService
from .services.records import RecordService
from .services.rooms import RoomService
from .services.search import SearchService
from .services.search_indexer import SearchIndexer
from .services.token_cache import CachingHandler, TokenCache
from .services.writer import MessageWriter

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).with_name("web")
MAX_BODY = 2 * 1024 * 1024  # bytes of a request body: a 100,000-character post, \u-escaped, is ~1.2 MB
FAILED_LOGINS_PER_ADDRESS = 100  # a minute


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings.from_env()
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    app.on_response_prepare.append(security_headers)
    app[keys.SETTINGS] = settings
    app[keys.METRICS] = Metrics()
    app[keys.LOGIN_GUARD] = LoginGuard(settings.login_attempts, FAILED_LOGINS_PER_ADDRESS)
    app.cleanup_ctx.append(_server_parts)
    app.on_shutdown.append(drain)  # for runners other than chatserver.runner (tests' TestServer)

    # search first: its `/api/rooms/discover` must win over `/api/rooms/{room_id}`
    routes = [*search_http.ROUTES, *accounts_http.ROUTES, *rooms_http.ROUTES, *admin_http.ROUTES, *alumni_http.ROUTES,
              *records_http.ROUTES, *posts_http.ROUTES, *ops_http.ROUTES, *files_http.ROUTES]
    app[keys.ROUTES] = routes
    add_routes(app, routes)
    app.router.add_get("/ws", ws.handle)
    if (WEB_DIR / "index.html").exists():
        app.router.add_get("/", _index)
        app.router.add_static("/static/", WEB_DIR, show_index=False)
    return app


def make_blob_store(settings: Settings, db: Database) -> BlobStore:
    """The filesystem engine for one node; the database engine where nodes share PostgreSQL
    (`CHAT_FILE_STORE=auto`, the default), so a file uploaded on one downloads from any."""
    engine = settings.file_store
    if engine == "auto":
        engine = "filesystem" if db.is_sqlite else "database"
    if engine == "database":
        return DatabaseBlobStore(db)
    return FilesystemBlobStore(files_dir(settings, db))


def files_dir(settings: Settings, db: Database) -> Path:
    """`CHAT_FILES_DIR`, or `files` beside the SQLite database file (`./files` otherwise)."""
    if settings.files_dir:
        return Path(settings.files_dir)
    database = db.url.database if db.is_sqlite else None
    if database and database != ":memory:":
        return Path(database).expanduser().resolve().parent / "files"
    return Path("files")


def make_bus(settings: Settings) -> Bus:
    if settings.redis_url:
        try:
            from .bus.cluster import ClusterBus
            from .bus.redis import RedisBus
        except ImportError as exc:  # the `redis` extra is not installed
            raise ConfigError(f"CHAT_REDIS_URL needs the redis package: pip install 'chatserver[redis]' ({exc})")
        if settings.redis_cluster or settings.redis_url.startswith("redis+cluster://"):
            return ClusterBus(settings.redis_url, node_id=settings.node_id, presence_ttl=settings.presence_ttl)
        return RedisBus(settings.redis_url, node_id=settings.node_id, presence_ttl=settings.presence_ttl)
    return MemoryBus()


async def _server_parts(app: web.Application) -> AsyncIterator[None]:
    """Everything with a lifetime, started in order and stopped in reverse."""
    settings = app[keys.SETTINGS]
    metrics = app[keys.METRICS]
    db = Database(settings.database_url)
    await db.migrate()
    bus = make_bus(settings)
    hub = Hub(db, bus, replay_limit=settings.replay_limit, heartbeat=settings.heartbeat, metrics=metrics)
    tokens = TokenCache(settings.token_cache_ttl, trusted=lambda: bus.healthy)
    await bus.start(CachingHandler(hub, tokens))
    announcer = Announcer(bus)
    writer = MessageWriter(db, bus, announcer, metrics)
    writer.start()
    indexer = SearchIndexer(db, writer)
    indexer.start()
    app[keys.DB] = db
    app[keys.BUS] = bus
    app[keys.HUB] = hub
    app[keys.FLUSHER] = hub.flusher
    app[keys.WRITER] = writer
    app[keys.ACCOUNTS] = AccountService(db, bus, tokens)
    app[keys.MESSAGES] = MessageService(db, bus, writer, settings, policies=hub.policy)
    app[keys.FILES] = files = FileService(db, make_blob_store(settings, db), settings, bus)
    app[keys.ROOMS] = RoomService(db, bus, announcer, files, settings)
    app[keys.MODERATION] = ModerationService(db, announcer, app[keys.ROOMS], app[keys.MESSAGES])
    app[keys.DIRECT] = DirectService(db, bus)
    app[keys.ALUMNI] = AlumniService(db, bus, announcer, settings)
    app[keys.POSTS] = PostService(db, announcer, files, bus)
    sweeper = asyncio.get_running_loop().create_task(files.sweeper(), name="file-sweeper")
    app[keys.SEARCH] = SearchService(db)
    app[keys.RECORDS] = RecordService(db, bus, announcer)
    log.info("node %s ready (storage %s, bus %s)", settings.node_id, db.dialect, type(bus).__name__)
    try:
        yield
    finally:
        sweeper.cancel()
        files.close()
        hub.draining = True
        await indexer.close()
        await writer.close()
        await hub.close_all(CloseCode.GOING_AWAY, "server shutting down")
        await hub.close()
        await bus.close()
        await db.close()


async def drain(app: web.Application) -> None:
    """SIGTERM: refuse new connections, close open ones with 1001 so clients resume elsewhere."""
    hub = app.get(keys.HUB)
    if hub is None or hub.draining:
        return
    hub.draining = True
    await hub.close_all(CloseCode.GOING_AWAY, "server shutting down")


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Headers on every response, errors included (a signal, not a middleware: a middleware's
    frame would stay on every WebSocket connection's stack for its whole life)."""
    if response.status == 101:  # a WebSocket upgrade has no body to sniff; its headers live as long as it
        return
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.path == "/" or request.path.startswith("/static/"):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_DIR / "index.html")
