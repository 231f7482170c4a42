"""The in-process bus: one node, no network. A real engine, used by default."""

from __future__ import annotations

from .base import BusHandler
from .events import ControlEvent, RoomEvent


class MemoryBus:
    """Delivers synchronously to this node's handler, so events keep their publish order."""

    def __init__(self) -> None:
        self.healthy = True
        self._handler: BusHandler | None = None
        self._rooms: set[str] = set()
        self._online: set[str] = set()

    async def start(self, handler: BusHandler) -> None:
        self._handler = handler

    async def close(self) -> None:
        self._handler = None

    async def subscribe_room(self, room_id: str) -> None:
        self._rooms.add(room_id)

    async def unsubscribe_room(self, room_id: str) -> None:
        self._rooms.discard(room_id)

    def can_publish(self, room_id: str) -> bool:
        return True

    def publish_room(self, room_id: str, event: RoomEvent) -> None:
        if self._handler is not None and room_id in self._rooms:
            self._handler.on_room_event(room_id, event)

    def publish_control(self, event: ControlEvent) -> None:
        if self._handler is not None:
            self._handler.on_control_event(event)

    async def online(self, user_ids: set[str]) -> set[str]:
        return user_ids & self._online

    def set_online(self, user_id: str, online: bool) -> None:
        if online:
            self._online.add(user_id)
        else:
            self._online.discard(user_id)
