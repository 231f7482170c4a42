"""Who a bearer token belongs to, remembered for a few seconds, so that a request (a file
download, a thumbnail) does not pay a database round trip just to learn who is asking.

It never serves a token that was revoked where it could know: every way a token stops working
or a user changes is announced on the bus (`Revoked`: signing out, a new password, a deleted bot;
`UserChanged`: a new display name or avatar), which delivers on the publishing node at once,
before the request that revoked answers, and on the others as soon as the bus carries it. What
the bus might lose is covered three ways: the cache is neither read nor filled while the bus is
not healthy; it is emptied when the bus comes back (`on_bus_restored`); and an entry lives at
most `ttl` seconds, the bound on a revocation whose news was lost without the bus noticing
(docs/protocol.md §12.2). A lookup still in flight when entries are dropped does not put its
(possibly stale) answer back: each drop starts a new generation, and a lookup only fills the
cache in the generation it started in.

Entries are kept in the order they expire and the expired ones are shed as new ones come, so
the cache holds only the last `ttl` seconds' lookups: after a burst of sign-ins it does not
keep thousands of dead entries (~0.3 KiB each) until the size bound pushes them out.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from storage.records import User

from ..bus.events import ControlEvent, Revoked, UserChanged

SIZE = 10_000  # entries; the first to expire go first


class Ticket(NamedTuple):
    """Taken before a database lookup; its answer may fill the cache only with this ticket."""

    generation: int
    started: float


class TokenCache:
    def __init__(self, ttl: float, *, trusted: Callable[[], bool], size: int = SIZE,
                 clock: Callable[[], float] = time.monotonic):
        """`ttl` seconds an entry lives (0: no caching); `trusted()` says whether the bus is healthy."""
        self._ttl = ttl
        self._trusted = trusted
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, User]] = OrderedDict()
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token_hash: str) -> User | None:
        """The user of a token looked up less than `ttl` ago and not revoked since; else None."""
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if not self._trusted():  # revocations may be getting lost: ask the database until it is back
            self.clear()
            return None
        expires, user = entry
        if expires <= self._clock():
            del self._entries[token_hash]
            return None
        return user

    def ticket(self) -> Ticket:
        return Ticket(self._generation, self._clock())

    def put(self, token_hash: str, user: User, ticket: Ticket) -> None:
        """Remember what a lookup begun at `ticket` found, unless anything was dropped since."""
        if self._ttl <= 0 or ticket.generation != self._generation or not self._trusted():
            return
        self._entries[token_hash] = (ticket.started + self._ttl, user)
        # Lookups end about in the order they began, so entries stay about in expiry order; one
        # that overtook another only makes the other wait behind it (it is not served: `get`).
        self._entries.move_to_end(token_hash)
        now = self._clock()
        while self._entries and (len(self._entries) > self._size or next(iter(self._entries.values()))[0] <= now):
            self._entries.popitem(last=False)

    def forget(self, *, token_hash: str | None = None, user_id: str | None = None) -> None:
        """Drop one token, or every token of a user."""
        self._generation += 1
        if token_hash is not None:
            self._entries.pop(token_hash, None)
        if user_id is not None:
            for key in [key for key, (_, user) in self._entries.items() if user.id == user_id]:
                del self._entries[key]

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    def on_control_event(self, event: ControlEvent) -> None:
        match event:
            case Revoked(token_hash=token_hash, user_id=user_id):
                self.forget(token_hash=token_hash, user_id=user_id)
            case UserChanged(user=user):
                self.forget(user_id=user.id)


class CachingHandler:
    """The bus's handler on this node: the hub, with the token cache told first of what it must
    forget (room events go straight to the hub, with no extra call)."""

    def __init__(self, hub, cache: TokenCache):
        self._hub = hub
        self._cache = cache
        self.on_room_event = hub.on_room_event

    def on_control_event(self, event: ControlEvent) -> None:
        self._cache.on_control_event(event)
        self._hub.on_control_event(event)

    def on_bus_restored(self) -> None:
        self._cache.clear()
        self._hub.on_bus_restored()
