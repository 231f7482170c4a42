"""Who may send in a room right now: mute-all, the owner and admins, and members' mutes.

The hub keeps one `RoomPolicy` per room it serves, loaded with the room and
kept current by the room's own system messages (`apply`), the same durable,
sequenced messages every node hears: a mute decided on one node binds the
member on every node as soon as its `member.muted` arrives, and deciding a
send costs a dict lookup, not a query (docs/protocol.md §12.14).
"""

from __future__ import annotations

from storage.records import RoomPolicyState

from .announcements import MemberJoined, MemberKicked, MemberLeft, MemberMuted, MemberUnmuted, RoomUpdated, \
    SystemPayload
from .errors import ServiceError, forbidden
from .services.roles import ADMIN_ROLES

from client_proto.errors import ErrorCode


class RoomPolicy:
    __slots__ = ("muted", "admins", "mutes")

    def __init__(self, state: RoomPolicyState):
        self.muted = state.muted
        self.admins = set(state.admins)
        self.mutes = dict(state.mutes)

    def refusal(self, user_id: str, now_ms: int) -> ServiceError | None:
        """Why `user_id` may not send now (None: they may)."""
        mutes = self.mutes
        if mutes:
            until = mutes.get(user_id)
            if until is not None:
                if until > now_ms:
                    return ServiceError(ErrorCode.FORBIDDEN, "you are muted in this group",
                                        retry_after=until - now_ms)
                del mutes[user_id]
        if self.muted and user_id not in self.admins:
            return forbidden("the group is muted: only the owner and admins may send")
        return None

    def apply(self, payload: SystemPayload | None) -> None:
        """Follow a system message of the room (any type; those that change nothing here are ignored)."""
        match payload:
            case MemberMuted(user=user, until=until):
                self.mutes[user.id] = until
            case MemberUnmuted(user=user):
                self.mutes.pop(user.id, None)
            case MemberLeft(user=user) | MemberKicked(user=user):
                self.admins.discard(user.id)
            case MemberJoined(user=user):
                self.admins.discard(user.id)  # everyone (re)joins as a plain member
            case RoomUpdated(by=by, changes=changes):
                if "muted" in changes:
                    self.muted = bool(changes["muted"])
                role = changes.get("role")
                if isinstance(role, dict):
                    user_id = role["user"]["id"]
                    if role["role"] in ADMIN_ROLES:
                        self.admins.add(user_id)
                    else:
                        self.admins.discard(user_id)
                    # A handed-over group: the old owner stays an admin (still in `admins`).
