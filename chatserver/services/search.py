"""Use cases of search (docs/protocol.md §12.13): people, records, groups and messages.

Privacy is decided here, before storage is asked: a message search reads
only the rooms the caller belongs to at the moment of the query (the query
itself joins the memberships, so a room left a second ago is not read), and
group discovery lists only groups anyone may join or ask to join.
"""

from __future__ import annotations

from typing import Any

from storage import rooms as room_store
from storage import search as search_store
from storage import users as user_store
from storage.db import Database
from storage.records import User

from ..alumni_views import record_json
from ..errors import forbidden, invalid, not_found
from ..views import room_json, user_json

Json = dict[str, Any]
SHORT_QUERY = (2, 64)  # people, records, groups
MESSAGE_QUERY = (2, 200)


def check_query(q: str | None, bounds: tuple[int, int], *, required: bool = True) -> str | None:
    """`q` within its length bounds (422 naming `q` otherwise); None when optional and absent."""
    if q is None or q == "":
        if required:
            raise invalid(f"q: required, {bounds[0]} to {bounds[1]} characters")
        return None
    low, high = bounds
    q = q.strip()  # "王 " means "王": the spaces around a query are not part of it
    if not low <= len(q) <= high:
        raise invalid(f"q: {low} to {high} characters (spaces around it aside)")
    if "\x00" in q:
        raise invalid("q: must not contain NUL")
    return q


def _cursor(raw: str | None):
    try:
        return search_store.parse_ranked_cursor(raw)
    except search_store.BadCursor:
        raise invalid("before: not a cursor from this search") from None


def _page(found: list, limit: int, cursor) -> tuple[list, str | None]:
    """The page and the `next` cursor: `found` holds up to limit + 1 rows, the extra one meaning more."""
    page = found[:limit]
    return page, (cursor(page[-1]) if len(found) > limit else None)


class SearchService:
    def __init__(self, db: Database):
        self._db = db

    async def people(self, viewer: User, q: str | None, before: str | None, limit: int) -> Json:
        q = check_query(q, SHORT_QUERY)
        async with self._db.read() as db:
            found = await search_store.people(db, q, after=before or None, limit=limit + 1)
        page, next_ = _page(found, limit, lambda u: u.name)
        return {"items": [user_json(u) for u in page], "next": next_}

    async def user(self, viewer: User, user_id: str) -> Json:
        async with self._db.read() as db:
            found = await user_store.created_of(db, user_id)
        if found is None:
            raise not_found("user")
        user, created = found
        return {**user_json(user), "created": created}

    async def records(self, viewer: User, filters: Json, before: str | None, limit: int) -> Json:
        q = check_query(filters.pop("q", None), SHORT_QUERY, required=False)
        for name in ("school", "class_name"):
            if filters.get(name) is not None and len(filters[name]) > 200:
                raise invalid(f"{name}: at most 200 characters")
        async with self._db.read() as db:
            found = await search_store.records(db, q=q, before=_cursor(before), limit=limit + 1, **filters)
            page, next_ = _page(found, limit, lambda r: r.cursor())
            owners = await user_store.get_many(db, {r.item.owner_id for r in page})
        return {"items": [record_json(r.item, owners[r.item.owner_id]) for r in page], "next": next_}

    async def groups(self, viewer: User, q: str | None, before: str | None, limit: int) -> Json:
        q = check_query(q, SHORT_QUERY, required=False)
        async with self._db.read() as db:
            found = await search_store.groups(db, q, before=_cursor(before), limit=limit + 1)
            page, next_ = _page(found, limit, lambda g: g.cursor())
            owners = await user_store.get_many(db, {g.item.owner_id for g in page})
        return {"items": [room_json(g.item, owners[g.item.owner_id]) for g in page], "next": next_}

    async def messages(self, viewer: User, q: str | None, room_id: str | None, before: str | None,
                       limit: int) -> Json:
        """Text messages of the caller's rooms, newest first, each with a `[`…`]`-marked snippet."""
        q = check_query(q, MESSAGE_QUERY)
        async with self._db.read() as db:
            if room_id is not None:
                if await room_store.get_member(db, room_id, viewer.id) is None:
                    if await room_store.get(db, room_id) is None:
                        raise not_found("room")
                    raise forbidden("you are not a member of this room")
            try:
                found = await search_store.messages(
                    db, q, member_id=viewer.id, room_id=room_id, before=before or None, limit=limit + 1
                )
            except search_store.BadCursor:
                raise invalid("before: not a cursor from this search") from None
        page, next_ = _page(found, limit, lambda hit: hit.cursor)
        return {"items": [_hit_json(hit, q) for hit in page], "next": next_}


def _hit_json(hit: search_store.MessageHit, q: str) -> Json:
    return {
        "room": hit.room_id,
        "seq": hit.seq,
        "id": hit.id,
        "ts": hit.ts,
        "from": user_json(hit.sender) if hit.sender is not None else None,
        "text": hit.text,
        "snippet": search_store.snippet(hit.text, q),
    }
