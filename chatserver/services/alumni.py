"""Use cases of alumni records: create, bind to a group, profiles, invitations, feed.

Each change, its feed entry and the system message telling the bound group
are stored in one transaction, then published: nothing is announced that
was not stored, and nothing stored goes unannounced. System messages and
feed entries carry only what any signed-in user may see (the record's name,
people, public profile fields): a group may hold people who are not members
of its record.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from client_proto.errors import ErrorCode
from client_proto.frames import INT64_MAX
from storage import alumni as alumni_store
from storage import blocks as block_store
from storage import feed as feed_store
from storage import invitations as invitation_store
from storage import rooms as room_store
from storage import users as user_store
from storage.db import Database, now_ms
from storage.records import AlumniRecord, User

from ..alumni_views import (
    PROFILE_FIELDS,
    feed_entry_json,
    invitation_json,
    public_profile,
    record_json,
    record_member_json,
    visible_profile,
)
from ..announcements import (
    AlumniBound,
    AlumniInvitation,
    AlumniJoined,
    AlumniProfile,
    AlumniUnbound,
    Announcer,
    Person,
    RecordRef,
)
from ..bus.base import Bus
from ..bus.events import Notified
from ..config import Settings
from ..errors import ServiceError, conflict, forbidden, invalid, not_found
from ..views import user_json
from .roles import ADMIN_ROLES

HOUR_MS = 3_600_000
Json = dict[str, Any]


def gone(message: str) -> ServiceError:
    return ServiceError("gone", message)


class AlumniService:
    def __init__(self, db: Database, bus: Bus, announcer: Announcer, settings: Settings):
        self._db = db
        self._bus = bus
        self._announcer = announcer
        self._settings = settings

    # ------------------------------------------------------------------ records

    async def create(self, owner: User, fields: Json) -> Json:
        """The creator owns the record and is its first member, with a `joined` feed entry."""
        for name in ("name", "school"):
            if not fields[name].strip():
                raise invalid(f"{name}: must not be blank")
        async with self._db.transaction() as db:
            record = await alumni_store.create_record(db, owner_id=owner.id, **fields)
            await feed_store.add_entry(db, record_id=record.id, type="joined", actor_id=owner.id, data={})
        return record_json(record, owner)

    async def get(self, user: User, record_id: str) -> Json:
        """Any signed-in user may read a record."""
        async with self._db.read() as db:
            return await record_body(db, await require_record(db, record_id))

    async def members(self, viewer: User, record_id: str) -> list[Json]:
        """Everyone may list members; only members see members-only profile fields."""
        async with self._db.read() as db:
            await require_record(db, record_id)
            to_member = await alumni_store.is_member(db, record_id, viewer.id)
            found = await alumni_store.members(db, record_id)
        return [record_member_json(m, to_member=to_member) for m in found]

    # ------------------------------------------------------------------ binding

    async def bind(self, actor: User, record_id: str, room_id: str) -> Json:
        """Bind the record to a group: the caller owns the record and owns or admins the group.

        One group per record and one record per group (409); binding again to
        the same group changes nothing and posts nothing.
        """
        async with self._db.transaction() as db:
            record = await require_record(db, record_id)
            room = await room_store.get(db, room_id)
            if room is None:
                raise not_found("room")
            if room.kind == "direct":
                raise forbidden("a direct room cannot be bound to a record")
            self._require_owner(record, actor)
            await _require_room_admin(db, room_id, actor)
            if record.room_id == room_id:
                return await record_body(db, record)
            if record.room_id is not None:
                raise conflict("this record is already bound to a group; unbind it first")
            if await alumni_store.record_for_room(db, room_id) is not None:
                raise conflict("this group is already bound to another record")
            try:
                async with db.begin_nested():
                    record = await alumni_store.set_room(db, record_id, room_id)
            except IntegrityError:
                raise conflict("this group is already bound to another record") from None
            await feed_store.add_entry(db, record_id=record_id, type="bound", actor_id=actor.id,
                                       data={"room": room_id})
            message = await self._announcer.store(
                db, room_id, AlumniBound(record=record_ref(record), by=Person.of(actor)),
                f"{actor.display} linked this group to the alumni record “{record.name}”",
            )
            body = await record_body(db, record)
        self._announcer.publish(message)
        return body

    async def unbind(self, actor: User, record_id: str) -> None:
        """Either side may break the link: the record's owner, or an owner/admin of the group."""
        async with self._db.transaction() as db:
            record = await require_record(db, record_id)
            if record.room_id is None:
                raise not_found("group bound to this record")
            if actor.id != record.owner_id:
                await _require_room_admin(db, record.room_id, actor)
            message = await self._announcer.store(
                db, record.room_id, AlumniUnbound(record=record_ref(record), by=Person.of(actor)),
                f"{actor.display} unlinked this group from the alumni record “{record.name}”",
            )
            await alumni_store.set_room(db, record_id, None)
        self._announcer.publish(message)

    # ------------------------------------------------------------------ profiles

    async def set_profile(self, user: User, record_id: str, changes: Json, visibility: str | Json | None) -> Json:
        """Change the caller's own profile: given fields are set (null clears one), others kept.

        `visibility` "members"/"public" applies to every field; an object sets
        the fields it names. A field never given one is `members`. The feed
        entry and the group's `alumni.profile` carry only the public fields.
        """
        async with self._db.transaction() as db:
            record = await require_record(db, record_id)
            member = await alumni_store.get_member(db, record_id, user.id)
            if member is None:
                raise forbidden("only members of the record have a profile in it")
            profile = {**member.profile, **changes}
            profile = {k: v for k, v in profile.items() if v is not None}
            if isinstance(visibility, str):
                visibility = {f: visibility for f in PROFILE_FIELDS}
            shown = {**member.visibility, **(visibility or {})}
            shown = {f: v for f, v in shown.items() if v == "public"}  # stored: only the public ones
            if (profile, shown) == (member.profile, member.visibility):
                return visible_profile(member, to_member=True)
            member = await alumni_store.set_profile(db, record_id, user.id, profile, shown)
            public = public_profile(member)
            await feed_store.add_entry(db, record_id=record_id, type="profile", actor_id=user.id,
                                       data={"profile": public})
            message = None
            if record.room_id is not None:
                message = await self._announcer.store(
                    db, record.room_id, AlumniProfile(record=record_ref(record), user=Person.of(user), profile=public),
                    f"{user.display} updated their profile in “{record.name}”",
                )
        self._announcer.publish(message)
        return visible_profile(member, to_member=True)

    # ------------------------------------------------------------------ invitations

    async def invite(self, inviter: User, record_id: str, user_ids: list[str] | None, note: str) -> Json:
        """Invite people into the record: all or nothing, one `alumni.invitation` per batch.

        Without `user_ids`: every member of the bound group who is not in the
        record and has no pending invitation (the inviter and bots aside).
        Named users may be anyone (docs/protocol.md §12.7: finding classmates is the
        point); the hourly quota is the spam guard. Unknown ids: 404.
        """
        async with self._db.transaction() as db:
            record = await require_record(db, record_id)
            await self._require_inviter(db, record, inviter)
            await invitation_store.expire_stale(db, self._cutoff(), record_id=record_id)
            if user_ids is None:
                candidates = await self._group_candidates(db, record, inviter)
            else:
                candidates = list(dict.fromkeys(user_ids))
                known = await user_store.get_many(db, candidates)
                if missing := [u for u in candidates if u not in known]:
                    raise not_found(f"user: {missing[0]}")
            skipped = await self._skipped(db, record, inviter, candidates)
            wanted = [u for u in candidates if u not in skipped]
            await self._check_quota(db, inviter, len(wanted))
            try:
                async with db.begin_nested():
                    made = await invitation_store.create_many(
                        db, record_id=record_id, inviter_id=inviter.id, invitee_ids=wanted, note=note
                    )
            except IntegrityError:
                raise conflict("someone invited the same people at the same time; try again") from None
            message = None
            if made and record.room_id is not None:
                invited = AlumniInvitation(
                    record=record_ref(record), inviter=Person.of(inviter), invitees=[Person.of(i.invitee) for i in made]
                )
                message = await self._announcer.store(
                    db, record.room_id, invited,
                    f"{inviter.display} invited {_people(len(made))} to the alumni record “{record.name}”",
                )
            body = await record_body(db, record)
        self._announcer.publish(message)
        for invitation in made:
            self._bus.publish_control(
                Notified([invitation.invitee.id], "invitation", {"invitation": invitation_json(invitation, body)})
            )
        return {
            "invitations": [{"id": i.id, "invitee": user_json(i.invitee), "status": i.status} for i in made],
            "skipped": [{"user_id": u, "reason": reason} for u, reason in skipped.items()],
        }

    async def my_invitations(self, user: User, status: str | None) -> list[Json]:
        async with self._db.transaction() as db:
            await invitation_store.expire_stale(db, self._cutoff(), invitee_id=user.id)
            found = await invitation_store.for_invitee(db, user.id, status)
            records = {}
            for record_id in {i.record_id for i in found}:
                records[record_id] = await record_body(db, await require_record(db, record_id))
        return [invitation_json(i, records[i.record_id]) for i in found]

    async def accept(self, user: User, invitation_id: str) -> Json:
        """The invitee joins the record: a `joined` feed entry and `alumni.joined` in the group."""
        async with self._db.transaction() as db:
            invitation = await self._pending_for(db, user, invitation_id)
            if invitation is None:
                expired = True
            else:
                expired = False
                record = await require_record(db, invitation.record_id)
                await invitation_store.decide(db, invitation_id, "accepted")
                message = await join_record(db, self._announcer, record, user, invitation.inviter)
                body = await record_body(db, await require_record(db, record.id))
        if expired:  # raised after the commit, so the invitation stays marked expired
            raise gone("this invitation has expired")
        self._announcer.publish(message)
        return body

    async def decline(self, user: User, invitation_id: str) -> Json:
        async with self._db.transaction() as db:
            invitation = await self._pending_for(db, user, invitation_id)
            if invitation is not None:
                invitation = await invitation_store.decide(db, invitation_id, "declined")
                body = invitation_json(invitation, await record_body(db, await require_record(db, invitation.record_id)))
        if invitation is None:
            raise gone("this invitation has expired")
        return body

    # ------------------------------------------------------------------ feed

    async def feed(self, user: User, record_id: str, before: tuple[int, str] | None, limit: int) -> Json:
        """Members only: entries newest first; `next` is the cursor of the next page, or None."""
        async with self._db.read() as db:
            await require_record(db, record_id)
            if not await alumni_store.is_member(db, record_id, user.id):
                raise forbidden("only members of the record read its feed")
            found = await feed_store.entries(db, [record_id], before=before, limit=limit + 1)
        page = found[:limit]
        more = len(found) > limit
        return {"items": [feed_entry_json(e) for e in page], "next": feed_cursor(page[-1]) if more else None}

    # ------------------------------------------------------------------ rules

    def _cutoff(self) -> int:
        """Invitations created before this (ms) are past their lifetime."""
        return now_ms() - self._settings.invite_ttl * 1000

    @staticmethod
    def _require_owner(record: AlumniRecord, user: User) -> None:
        if record.owner_id != user.id:
            raise forbidden("only the record's owner may do that")

    async def _require_inviter(self, db, record: AlumniRecord, inviter: User) -> None:
        """A record member, or a bot owned by one."""
        if await alumni_store.is_member(db, record.id, inviter.id):
            return
        if inviter.bot and inviter.owner_id and await alumni_store.is_member(db, record.id, inviter.owner_id):
            return
        raise forbidden("only members of the record, or their bots, may invite")

    async def _group_candidates(self, db, record: AlumniRecord, inviter: User) -> list[str]:
        if record.room_id is None:
            raise invalid("user_ids: required, since the record is not bound to a group")
        return [
            m.user.id for m in await room_store.members(db, record.room_id)
            if m.user.id != inviter.id and not m.user.bot
        ]

    async def _skipped(self, db, record: AlumniRecord, inviter: User, candidates: list[str]) -> dict[str, str]:
        """Why each candidate who is not invited is not: `member`, `pending`, or `blocked` (they
        blocked the inviter, or the person whose bot invites)."""
        members = await alumni_store.members_among(db, record.id, candidates)
        pending = await invitation_store.pending_among(db, record.id, candidates)
        blockers = await block_store.blockers_among(db, inviter.id, candidates)
        if inviter.bot and inviter.owner_id:
            blockers |= await block_store.blockers_among(db, inviter.owner_id, candidates)
        skipped: dict[str, str] = {}
        for u in candidates:
            if u in members:
                skipped[u] = "member"
            elif u in pending:
                skipped[u] = "pending"
            elif u in blockers:
                skipped[u] = "blocked"
        return skipped

    async def _check_quota(self, db, inviter: User, count: int) -> None:
        """At most `invite_quota` invitations per inviter in any hour; 429 with when to retry."""
        if not count:
            return
        await invitation_store.lock_inviter(db, inviter.id)
        now = now_ms()
        recent = await invitation_store.created_since(db, inviter.id, now - HOUR_MS)
        over = len(recent) + count - self._settings.invite_quota
        if over <= 0:
            return
        wait = HOUR_MS if count > self._settings.invite_quota else recent[over - 1] + HOUR_MS - now
        raise ServiceError(
            ErrorCode.RATE_LIMITED,
            f"at most {self._settings.invite_quota} invitations an hour; this batch of {count} would pass it",
            retry_after=max(1, wait),
        )

    async def _pending_for(self, db, user: User, invitation_id: str):
        """The invitee's pending invitation; None (marked expired) if past its lifetime."""
        invitation = await invitation_store.get(db, invitation_id)
        if invitation is None:
            raise not_found("invitation")
        if invitation.invitee.id != user.id:
            raise forbidden("only the invitee may answer an invitation")
        if invitation.status == "expired":
            return None
        if invitation.status != "pending":
            raise conflict(f"this invitation was already {invitation.status}")
        if invitation.created < self._cutoff():
            await invitation_store.expire_stale(db, self._cutoff(), invitee_id=user.id)
            return None
        return invitation


def feed_cursor(entry) -> str:
    return f"{entry.ts}.{entry.id}"


def parse_feed_cursor(raw: str | None) -> tuple[int, str] | None:
    if not raw:
        return None
    ts, _, entry_id = raw.partition(".")
    # isascii: str.isdigit() also takes digits such as "²" that int() refuses.
    if not (ts.isascii() and ts.isdigit()) or not entry_id or int(ts) > INT64_MAX:
        raise invalid("before: not a cursor from this feed")
    return int(ts), entry_id


async def join_record(db, announcer: Announcer, record: AlumniRecord, user: User, inviter: User):
    """Make `user` a member: a `joined` feed entry and, in a bound group, `alumni.joined`, both
    naming `inviter` (who invited them, or the owner who approved their request). Returns the
    system message for `announcer.publish` after the commit, or None."""
    await alumni_store.add_member(db, record.id, user.id)
    await feed_store.add_entry(db, record_id=record.id, type="joined", actor_id=user.id,
                               data={"inviter": user_json(inviter)})
    if record.room_id is None:
        return None
    joined = AlumniJoined(record=record_ref(record), user=Person.of(user), inviter=Person.of(inviter))
    return await announcer.store(db, record.room_id, joined, f"{user.display} joined the alumni record “{record.name}”")


async def require_record(db, record_id: str) -> AlumniRecord:
    record = await alumni_store.get_record(db, record_id)
    if record is None:
        raise not_found("alumni record")
    return record


async def record_body(db, record: AlumniRecord) -> Json:
    return record_json(record, await user_store.get(db, record.owner_id))


async def _require_room_admin(db, room_id: str, user: User) -> None:
    member = await room_store.get_member(db, room_id, user.id)
    if member is None or member.role not in ADMIN_ROLES:
        raise forbidden("only the group's owner or an admin may do that")


def record_ref(record: AlumniRecord) -> RecordRef:
    return RecordRef(id=record.id, name=record.name)


def _people(n: int) -> str:
    return "1 person" if n == 1 else f"{n} people"
