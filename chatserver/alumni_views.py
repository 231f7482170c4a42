"""Alumni records, members, invitations and feed entries as JSON (the alumni part of `views`).

Privacy lives here in one function, `visible_profile`: whatever shows a
profile to someone goes through it, so a members-only field cannot slip out
through one endpoint while the others hide it.
"""

from __future__ import annotations

from typing import Any

from storage import records

from .views import user_json

PROFILE_FIELDS = ("real_name", "class_name", "city", "employer", "bio", "contact")
VISIBILITIES = ("members", "public")


def record_json(record: records.AlumniRecord, owner: records.User) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "school": record.school,
        "year": record.year,
        "class_name": record.class_name,
        "description": record.description,
        "owner": user_json(owner),
        "room": record.room_id,
        "member_count": record.member_count,
    }


def public_profile(member: records.AlumniMember) -> dict[str, Any]:
    """The fields their owner made `public`: all that non-members, groups and feeds ever see."""
    return {k: v for k, v in member.profile.items() if member.visibility.get(k) == "public"}


def visible_profile(member: records.AlumniMember, *, to_member: bool) -> dict[str, Any]:
    """A member's profile as a reader sees it: whole, with each field's visibility, for members
    of the record; only the public fields for everyone else."""
    if not to_member:
        return public_profile(member)
    visibility = {f: member.visibility.get(f, "members") for f in PROFILE_FIELDS}
    return {**member.profile, "visibility": visibility}


def record_member_json(member: records.AlumniMember, *, to_member: bool) -> dict[str, Any]:
    return {
        "user": user_json(member.user),
        "profile": visible_profile(member, to_member=to_member),
        "joined": member.joined,
    }


def invitation_json(invitation: records.Invitation, record: dict[str, Any]) -> dict[str, Any]:
    """`record` is the record's JSON (see `record_json`)."""
    return {
        "id": invitation.id,
        "record": record,
        "inviter": user_json(invitation.inviter),
        "invitee": user_json(invitation.invitee),
        "note": invitation.note,
        "status": invitation.status,
        "created": invitation.created,
    }


def feed_entry_json(entry: records.FeedEntry) -> dict[str, Any]:
    """A feed entry `{id, ts, type, actor, data}` (docs/protocol.md §12.6), plus `record` (its id) for mixed feeds."""
    return {
        "id": entry.id,
        "ts": entry.ts,
        "type": entry.type,
        "actor": user_json(entry.actor),
        "data": entry.data,
        "record": entry.record_id,
    }
