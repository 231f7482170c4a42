"""Files' metadata, where each is attached, who may read it, and which are garbage.

A file is attached to messages (by room and seq) and posts through `file_links`; links go with
their message or post (foreign keys cascade). Who may read a file (docs/protocol.md §12.10): its
uploader; current members of a room where a message that is not recalled carries it; whoever may
read a post that carries it; anyone signed in when it is a user's or a room's avatar.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import now_ms
from .ids import new_id
from .models import File as FileRow, FileLink, Membership, Message as MessageRow, Room as RoomRow, User as UserRow
from .prepared import prepared
from .records import FileMeta, NewMessage, Stored

_COLUMNS = (
    FileRow.id, FileRow.owner_id, FileRow.name, FileRow.size, FileRow.content_type, FileRow.sha256,
    FileRow.created, FileRow.width, FileRow.height, FileRow.thumb,
)


def _file(row) -> FileMeta:
    return FileMeta(
        id=row.id, owner_id=row.owner_id, name=row.name, size=row.size, content_type=row.content_type,
        sha256=row.sha256, created=row.created, width=row.width, height=row.height, thumb=row.thumb,
    )


class FilesRefused(Exception):
    """A message names files that do not exist (`missing`) or that are not the sender's (`foreign`)."""

    def __init__(self, missing: list[str], foreign: list[str]):
        super().__init__(f"missing {missing}, not the sender's {foreign}")
        self.missing = missing
        self.foreign = foreign


async def create(
    conn: AsyncConnection, *, owner_id: str, name: str, size: int, content_type: str, sha256: str,
    width: int | None = None, height: int | None = None, thumb: str | None = None,
) -> FileMeta:
    meta = FileMeta(id=new_id("f"), owner_id=owner_id, name=name, size=size, content_type=content_type,
                    sha256=sha256, created=now_ms(), width=width, height=height, thumb=thumb)
    await conn.execute(insert(FileRow).values(
        id=meta.id, owner_id=owner_id, name=name, size=size, content_type=content_type, sha256=sha256,
        width=width, height=height, thumb=thumb, created=meta.created,
    ))
    return meta


async def get_many(conn: AsyncConnection, file_ids: Iterable[str]) -> dict[str, FileMeta]:
    ids = list(set(file_ids))
    if not ids:
        return {}
    return {row.id: _file(row) for row in await conn.execute(select(*_COLUMNS).where(FileRow.id.in_(ids)))}


async def usage(conn: AsyncConnection, owner_id: str) -> int:
    """Bytes of the owner's files (the quota counts each upload, identical ones too)."""
    return (await conn.execute(select(func.coalesce(func.sum(FileRow.size), 0)).where(FileRow.owner_id == owner_id))).scalar()


async def image_twin(conn: AsyncConnection, sha256: str) -> FileMeta | None:
    """An earlier upload of the same bytes that was read as an image: its size and thumbnail serve again."""
    row = (await conn.execute(
        select(*_COLUMNS).where(FileRow.sha256 == sha256, FileRow.width.is_not(None)).limit(1)
    )).first()
    return _file(row) if row else None


async def referenced(conn: AsyncConnection, keys: Iterable[str]) -> set[str]:
    """Which of these blob keys a file still uses (as its bytes or its thumbnail)."""
    keys = list(set(keys))
    if not keys:
        return set()
    rows = await conn.execute(select(FileRow.sha256, FileRow.thumb).where(
        or_(FileRow.sha256.in_(keys), FileRow.thumb.in_(keys))))
    used = set()
    for sha, thumb in rows:
        used.update((sha, thumb))
    return used & set(keys)


async def own_files(conn: AsyncConnection, owner_id: str, file_ids: list[str]) -> list[FileMeta]:
    """The files in the order given; `FilesRefused` naming any that is missing or someone else's."""
    found = await get_many(conn, file_ids)
    missing = [f for f in file_ids if f not in found]
    foreign = [f for f in file_ids if f in found and found[f].owner_id != owner_id]
    if missing or foreign:
        raise FilesRefused(missing, foreign)
    return [found[f] for f in file_ids]


# ---------------------------------------------------------------------------- attaching


async def resolve_for_messages(conn: AsyncConnection, batch: list[NewMessage]) -> dict[int, list[dict] | FilesRefused]:
    """For each message of the batch that names files (by index): what it carries, or why not."""
    wanted = {f for m in batch if m.files for f in m.files}
    if not wanted:
        return {}
    found = await get_many(conn, wanted)
    resolved: dict[int, list[dict] | FilesRefused] = {}
    for i, m in enumerate(batch):
        if not m.files:
            continue
        missing = [f for f in m.files if f not in found]
        foreign = [f for f in m.files if f in found and (m.sender is None or found[f].owner_id != m.sender.id)]
        resolved[i] = FilesRefused(missing, foreign) if missing or foreign else [found[f].carried() for f in m.files]
    return resolved


async def link_messages(conn: AsyncConnection, stored: list[Stored]) -> None:
    """Record where the new messages' files are attached (one statement for the batch)."""
    rows = [
        {"file_id": f["id"], "room_id": s.message.room_id, "seq": s.message.seq, "post_id": None}
        for s in stored if not s.dup and s.message.files for f in s.message.files
    ]
    if rows:
        await conn.execute(insert(FileLink.__table__), rows)
        await _mark_attached(conn, {r["file_id"] for r in rows})


async def link_post(conn: AsyncConnection, post_id: str, file_ids: list[str]) -> None:
    """Attach exactly these files to a post (replacing what it had)."""
    await conn.execute(delete(FileLink).where(FileLink.post_id == post_id))
    if file_ids:
        await conn.execute(insert(FileLink.__table__),
                           [{"file_id": f, "room_id": None, "seq": None, "post_id": post_id} for f in file_ids])
        await _mark_attached(conn, set(file_ids))


async def _mark_attached(conn: AsyncConnection, file_ids: set[str]) -> None:
    await conn.execute(
        update(FileRow).where(FileRow.id.in_(list(file_ids)), FileRow.attached.is_(None)).values(attached=now_ms())
    )


async def set_avatar(conn: AsyncConnection, table, row_id: str, file_id: str | None) -> bool:
    """Set a user's or room's avatar (`table`: `User` or `Room` model); False if there is no such row."""
    result = await conn.execute(update(table).where(table.id == row_id).values(avatar=file_id))
    if file_id is not None:
        await _mark_attached(conn, {file_id})
    return result.rowcount > 0


# ---------------------------------------------------------------------------- reading


# Whether the user may read the file (`FileRow`, in the statement) without looking at posts: as its
# uploader, as a current member of a room where a message that is not recalled carries it, or
# because it is an avatar. Built once, with the user as a parameter.
_READABLE_WITHOUT_POSTS = or_(
    FileRow.owner_id == bindparam("user_id"),
    exists().where(
        FileLink.file_id == FileRow.id,
        MessageRow.room_id == FileLink.room_id,
        MessageRow.seq == FileLink.seq,
        MessageRow.recalled.is_(False),
        Membership.room_id == FileLink.room_id,
        Membership.user_id == bindparam("user_id"),
    ),
    exists().where(UserRow.avatar == FileRow.id),
    exists().where(RoomRow.avatar == FileRow.id),
)
_GET_FOR_READER = prepared(select(*_COLUMNS, _READABLE_WITHOUT_POSTS.label("allowed")).where(
    FileRow.id == bindparam("file_id")))


async def get_for_reader(conn: AsyncConnection, file_id: str, user_id: str) -> tuple[FileMeta, bool] | None:
    """The file, and whether the user may read it as its uploader, through a room, or as an avatar
    (posts are the caller's to check when this says no); one statement. None: no such file."""
    row = (await conn.execute(_GET_FOR_READER, {"file_id": file_id, "user_id": user_id})).first()
    return (_file(row), bool(row.allowed)) if row else None


async def posts_carrying(conn: AsyncConnection, file_id: str) -> list[str]:
    rows = await conn.execute(select(FileLink.post_id).where(FileLink.file_id == file_id, FileLink.post_id.is_not(None)))
    return [row.post_id for row in rows]


# ---------------------------------------------------------------------------- garbage


def _garbage(unattached_before: int):
    """Nothing uses the file: never attached and uploaded before `unattached_before`, or attached
    once and now carried by no post, no message that is not recalled, and no avatar."""
    live_link = exists().where(
        FileLink.file_id == FileRow.id,
        or_(
            FileLink.post_id.is_not(None),
            exists().where(MessageRow.room_id == FileLink.room_id, MessageRow.seq == FileLink.seq,
                           MessageRow.recalled.is_(False)),
        ),
    )
    avatar = or_(exists().where(UserRow.avatar == FileRow.id), exists().where(RoomRow.avatar == FileRow.id))
    return and_(~live_link, ~avatar, or_(FileRow.attached.is_not(None), FileRow.created < unattached_before))


async def garbage(conn: AsyncConnection, *, unattached_before: int, limit: int = 500) -> list[FileMeta]:
    """Up to `limit` files that nothing uses (see `_garbage`)."""
    query = select(*_COLUMNS).where(_garbage(unattached_before)).limit(limit)
    return [_file(row) for row in await conn.execute(query)]


async def delete_garbage(conn: AsyncConnection, file_ids: list[str], *, unattached_before: int) -> list[str]:
    """Delete those of these files that are still garbage (one attached meanwhile stays); their ids."""
    if not file_ids:
        return []
    deleted = (await conn.execute(
        delete(FileRow).where(FileRow.id.in_(file_ids), _garbage(unattached_before)).returning(FileRow.id)
    )).scalars().all()
    if deleted:
        await conn.execute(delete(FileLink).where(FileLink.file_id.in_(deleted)))
    return list(deleted)
