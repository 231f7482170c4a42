"""Roles in a group (docs/protocol.md §12.4): named once for every service that checks them."""

from __future__ import annotations

from storage import rooms as room_store
from storage.records import Member, User

from ..errors import forbidden, not_found

ROLES = ("owner", "admin", "member")
ADMIN_ROLES = frozenset({"owner", "admin"})


def outranks(actor_role: str, subject_role: str | None) -> bool:
    """May someone of `actor_role` kick, mute or ban someone of `subject_role` (None: not a member)?

    The owner may act on anyone but themselves; an admin only on plain members and non-members.
    """
    if actor_role == "owner":
        return subject_role != "owner"
    return actor_role == "admin" and subject_role in (None, "member")


async def require_role(db, room_id: str, user: User, roles) -> Member:
    """The caller's membership with one of `roles`; `not_found` for no room, else `forbidden`."""
    member = await room_store.get_member(db, room_id, user.id)
    if member is None:
        if await room_store.get(db, room_id) is None:
            raise not_found("room")
        raise forbidden("you are not a member of this room")
    if member.role not in roles:
        raise forbidden("only the owner or an admin may do that")
    return member
