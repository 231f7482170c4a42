"""Shared steps of the alumni tests: a record, a bound group, and reading system messages."""

from __future__ import annotations

import pytest

from client_proto import frames
from client_proto.http import ApiError

RECORD = {"name": "Class of 2010", "school": "No. 1 High School", "year": 2010, "class_name": "3B"}


async def fails(call, status: int, code: str | None = None, field: str | None = None) -> ApiError:
    """Await `call` and assert it fails with this status (and code, and a message naming `field`)."""
    with pytest.raises(ApiError) as caught:
        await call
    error = caught.value
    assert error.status == status, error
    if code is not None:
        assert error.code == code, error
    if field is not None:
        assert field in error.message, error
    return error


async def create_record(account, **fields) -> dict:
    return await account.api.post("/api/alumni", {**RECORD, **fields})


async def bound_class(make_account, make_room, members: int = 2):
    """An owner with a record bound to their group of `members` others: (owner, record, room, others)."""
    owner = await make_account("owner")
    others = [await make_account("mate") for _ in range(members)]
    room, _ = await make_room(owner=owner, members=others, name="class 3B")
    record = await create_record(owner)
    record = await owner.api.put(f"/api/alumni/{record['id']}/room", {"room_id": room["id"]})
    return owner, record, room, others


def is_system(event, room_id: str, type_: str) -> bool:
    return (
        isinstance(event, frames.Message) and event.room == room_id
        and event.system is not None and event.system.type == type_
    )


async def wait_for(client, *wanted, timeout: float = 5.0) -> list:
    """Read live events until each predicate in `wanted` matched one; those events, in `wanted` order."""
    found: dict[int, object] = {}
    while len(found) < len(wanted):
        event = await client.next_event(timeout=timeout)
        for i, predicate in enumerate(wanted):
            if i not in found and predicate(event):
                found[i] = event
                break
    return [found[i] for i in range(len(wanted))]


async def next_system(client, room_id: str, type_: str, timeout: float = 5.0) -> frames.Message:
    """Skip events until the system message `type_` of `room_id` arrives live."""
    [event] = await wait_for(client, lambda e: is_system(e, room_id, type_), timeout=timeout)
    return event


async def next_notify(client, timeout: float = 5.0) -> frames.Notify:
    [event] = await wait_for(client, lambda e: isinstance(e, frames.Notify), timeout=timeout)
    return event


async def system_in_history(account, room_id: str, type_: str) -> list[dict]:
    """The stored system messages `type_` of a room, from HTTP history."""
    page = await account.api.get(f"/api/rooms/{room_id}/messages", limit=100)
    return [m for m in page["messages"] if m.get("system", {}).get("type") == type_]
