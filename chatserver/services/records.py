"""Use cases of managing alumni records (docs/protocol.md §12.13): the owner edits or deletes a
record, members leave or are removed, and people ask to join and the owner decides.

Approving a request joins the record exactly as accepting an invitation does
(`join_record`: a `joined` feed entry and `alumni.joined` in the bound group,
whose `inviter` is then the owner who approved).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from storage import alumni as alumni_store
from storage import record_requests as request_store
from storage.db import Database
from storage.records import AlumniRecord, RecordRequest, User

from ..announcements import AlumniUnbound, Announcer, Person
from ..bus.base import Bus
from ..bus.events import Notified
from ..errors import conflict, forbidden, invalid, not_found
from ..views import user_json
from .alumni import join_record, record_body, record_ref, require_record

Json = dict[str, Any]
RECORD_FIELDS = ("name", "school", "year", "class_name", "description")


def request_json(request: RecordRequest, record: Json) -> Json:
    """`{id, record, user, note, status, created}`; `record` is the record's JSON, as in invitations."""
    return {"id": request.id, "record": record, "user": user_json(request.user), "note": request.note,
            "status": request.status, "created": request.created}


class RecordService:
    def __init__(self, db: Database, bus: Bus, announcer: Announcer):
        self._db = db
        self._bus = bus
        self._announcer = announcer

    async def update(self, actor: User, record_id: str, changes: Json) -> Json:
        """The owner changes any of name, school, year, class_name, description (null clears the
        optional ones); the search indexes follow by themselves."""
        for name in ("name", "school"):
            if name in changes and (changes[name] is None or not changes[name].strip()):
                raise invalid(f"{name}: must not be blank")
        async with self._db.transaction() as db:
            record = await require_record(db, record_id)
            _require_owner(record, actor)
            record = await alumni_store.update_record(db, record_id, **changes)
            return await record_body(db, record)

    async def delete(self, actor: User, record_id: str) -> None:
        """The owner deletes the record: a bound group is told `alumni.unbound`; posts published to
        it stay in their authors' spaces."""
        async with self._db.transaction() as db:
            record = await require_record(db, record_id)
            _require_owner(record, actor)
            message = None
            if record.room_id is not None:
                message = await self._announcer.store(
                    db, record.room_id, AlumniUnbound(record=record_ref(record), by=Person.of(actor)),
                    f"{actor.display} deleted the alumni record “{record.name}”",
                )
            await alumni_store.delete_record(db, record_id)
        self._announcer.publish(message)

    async def remove_member(self, actor: User, record_id: str, user_id: str) -> None:
        """Leave (yourself; the owner cannot: 409) or, as the owner, remove someone."""
        async with self._db.transaction() as db:
            record = await require_record(db, record_id)
            if actor.id == user_id:
                if record.owner_id == actor.id:
                    raise conflict("the owner cannot leave the record; delete it instead")
            elif record.owner_id != actor.id:
                raise forbidden("only the record's owner may remove others")
            if not await alumni_store.remove_member(db, record_id, user_id):
                raise not_found("member of this record")

    # ------------------------------------------------------------------ join requests

    async def request(self, user: User, record_id: str, note: str) -> Json:
        """Ask to join; the owner gets `notify` `record_request`. A member, or a pending request: 409."""
        async with self._db.transaction() as db:
            record = await require_record(db, record_id)
            if await alumni_store.is_member(db, record_id, user.id):
                raise conflict("you are already a member of this record")
            if await request_store.pending_of(db, record_id, user.id) is not None:
                raise conflict("you already asked to join this record; wait for the owner")
            try:
                async with db.begin_nested():
                    request = await request_store.create(db, record_id, user.id, note)
            except IntegrityError:  # the same request arrived twice at once
                raise conflict("you already asked to join this record; wait for the owner") from None
            body = request_json(request, await record_body(db, record))
        self._bus.publish_control(Notified([record.owner_id], "record_request", {"request": body}))
        return body

    async def requests(self, actor: User, record_id: str, status: str | None) -> list[Json]:
        async with self._db.read() as db:
            record = await require_record(db, record_id)
            _require_owner(record, actor)
            found = await request_store.for_record(db, record_id, status)
            body = await record_body(db, record)
        return [request_json(r, body) for r in found]

    async def decide(self, actor: User, request_id: str, approve: bool) -> Json:
        """The owner approves (the user joins, as by an accepted invitation) or declines; twice: 409."""
        async with self._db.transaction() as db:
            request = await request_store.get(db, request_id)
            if request is None:
                raise not_found("record request")
            record = await require_record(db, request.record_id)
            _require_owner(record, actor)
            decided = await request_store.decide(db, request_id, "approved" if approve else "declined")
            if decided is None:
                raise conflict(f"this request was already {request.status}")
            message = None
            if approve and not await alumni_store.is_member(db, record.id, request.user.id):
                message = await join_record(db, self._announcer, record, request.user, actor)
            body = request_json(decided, await record_body(db, await require_record(db, record.id)))
        self._announcer.publish(message)
        return body


def _require_owner(record: AlumniRecord, user: User) -> None:
    if record.owner_id != user.id:
        raise forbidden("only the record's owner may do that")
