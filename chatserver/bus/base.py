"""The bus contract that every engine (in-memory, Redis) fulfils, and the handler it calls."""

from __future__ import annotations

from typing import Protocol

from .events import ControlEvent, RoomEvent


class BusHandler(Protocol):
    """What a bus calls on this node (the hub). Calls happen on the event loop and must not block."""

    def on_room_event(self, room_id: str, event: RoomEvent) -> None: ...

    def on_control_event(self, event: ControlEvent) -> None: ...

    def on_bus_restored(self) -> None:
        """Events may have been lost while the bus was down: catch up from storage."""


class Bus(Protocol):
    """Carries events between the nodes of a cluster.

    Contract (tested against every engine by one shared test):
    - `publish_room(room, e)` reaches `on_room_event` of every node that is
      subscribed to `room` when it arrives, this node included, at most once
      per node; events of one publisher arrive in publish order. Nodes not
      subscribed to the room receive nothing of it.
    - `publish_control(e)` reaches `on_control_event` of every node.
    - Publishing never blocks and never raises: it is fire-and-forget. Storage
      is the source of truth; an engine that lost events while down calls
      `on_bus_restored` once it is back, so nodes catch up from storage.
    - `healthy` is False while the engine cannot reach its peers, or any part of them.
    - `can_publish(room)` is False while `room`'s events would not reach the other nodes; the writer
      refuses sends to that room meanwhile. An engine in one piece answers `healthy`; a sharded one
      only for the shard carrying the room, so one shard's repair does not stop the other rooms.
    """

    healthy: bool

    def can_publish(self, room_id: str) -> bool: ...

    async def start(self, handler: BusHandler) -> None: ...

    async def close(self) -> None: ...

    async def subscribe_room(self, room_id: str) -> None:
        """Start receiving `room_id`'s events; returns once the subscription is active."""

    async def unsubscribe_room(self, room_id: str) -> None: ...

    def publish_room(self, room_id: str, event: RoomEvent) -> None: ...

    def publish_control(self, event: ControlEvent) -> None: ...

    async def online(self, user_ids: set[str]) -> set[str]:
        """Which of these users have a live connection on any node."""

    def set_online(self, user_id: str, online: bool) -> None:
        """This node gained its first / lost its last connection of `user_id`."""
