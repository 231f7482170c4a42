"""One typed settings object, read from the environment and the command line in one place.

Names and defaults follow docs/protocol.md §13. Every setting is an environment
variable `CHAT_<NAME>`; `--host` and `--port` also come from the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A setting has a value the server cannot run with; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = "sqlite+aiosqlite:///chat.db"
    redis_url: str | None = None
    redis_cluster: bool = False  # CHAT_REDIS_URL names a Redis Cluster (also said by a redis+cluster:// URL)
    allowed_origins: tuple[str, ...] = ()
    replay_limit: int = 500
    max_frame: int = 65536
    max_text: int = 4000
    send_rate: float = 20.0
    send_burst: int = 50
    send_buffer: int = 1_048_576
    heartbeat: float = 25.0
    hello_timeout: float = 10.0
    recall_window: float = 120.0
    edit_window: float = 172_800.0  # seconds an author may edit a message (docs/protocol.md §5.4)
    invite_ttl: int = 2_592_000
    invite_quota: int = 500  # invitations per inviter per hour
    room_max_members: int = 2000  # docs/protocol.md §12.14: adding or approving past it is 409
    max_connections: int = 50_000  # per node; the handshake answers 503 past it
    max_user_connections: int = 20  # per user per node
    login_attempts: int = 10  # per name and per address a minute
    shutdown_timeout: float = 25.0
    presence_ttl: float = 30.0  # seconds a crashed node's users stay "online" (Redis bus)
    token_cache_ttl: float = 5.0  # seconds a node remembers who a token belongs to (0: never)
    files_dir: str | None = None  # the filesystem blob store's directory; None: `files` beside chat.db
    file_store: str = "auto"  # filesystem | database | auto (database on PostgreSQL, else filesystem)
    max_file: int = 26_214_400  # bytes of one upload (docs/protocol.md §12.10)
    file_quota: int = 1_073_741_824  # bytes of one user's files
    file_sweep: float = 3600.0  # seconds between garbage sweeps of files
    log_level: str = "INFO"
    log_format: str = "json"  # or "console"
    node_id: str = field(default_factory=lambda: secrets.token_hex(4))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "Settings":
        """Settings from `CHAT_*` variables; `overrides` (e.g. from the CLI) win."""
        environ = os.environ if environ is None else environ
        values: dict = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f"CHAT_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        positive = ("replay_limit", "max_frame", "max_text", "send_rate", "send_burst", "send_buffer",
                    "heartbeat", "hello_timeout", "invite_ttl", "invite_quota", "max_connections",
                    "max_user_connections", "login_attempts", "presence_ttl", "max_file", "file_quota",
                    "file_sweep", "room_max_members")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"CHAT_{name.upper()} must be positive, not {getattr(self, name)}")
        if self.token_cache_ttl < 0:
            raise ConfigError(f"CHAT_TOKEN_CACHE_TTL must be 0 or more, not {self.token_cache_ttl}")
        if self.file_store not in ("auto", "filesystem", "database"):
            raise ConfigError(f"CHAT_FILE_STORE must be auto, filesystem or database, not {self.file_store!r}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be 1-65535, not {self.port}")


_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _parse(name: str, type_: str, raw: str):
    try:
        if type_ == "int":
            return int(raw)
        if type_ == "float":
            return float(raw)
        if type_ == "bool":
            if raw.strip().lower() not in _BOOLEANS:
                raise ValueError(raw)
            return _BOOLEANS[raw.strip().lower()]
        if type_.startswith("tuple"):
            return tuple(item.strip().rstrip("/") for item in raw.split(",") if item.strip())
        return raw
    except ValueError:
        raise ConfigError(f"CHAT_{name.upper()}={raw!r} is not a valid {type_}") from None


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    """Settings from the command line (`--host`, `--port`) over the environment."""
    parser = argparse.ArgumentParser(
        prog="chatserver",
        description="Real-time group chat server. Other settings: CHAT_* environment variables (see README).",
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; CHAT_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080; CHAT_PORT)")
    args = parser.parse_args(argv)
    return Settings.from_env(host=args.host, port=args.port)
