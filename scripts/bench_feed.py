"""How long a page of the personal feed takes for a user in many busy records.

Builds the data of docs/protocol.md §12.8's personal feed at scale (by default a user in
20 records with 10,000 entries each, plus 1,000 posts of their own) on SQLite
and on PostgreSQL, then times `PostService.feed` (the code behind
`GET /api/me/feed`): the first page, and a page deep in the middle reached by
its cursor. Figures only; nothing is asserted.

    .venv/bin/python scripts/bench_feed.py                 # both databases
    .venv/bin/python scripts/bench_feed.py --only sqlite --records 5 --entries 2000

PostgreSQL: `--pg` (default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres)
is used only to create a scratch database, which is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from chatserver.services.posts import PostService, feed_key  # noqa: E402
from scripts.bench_db import insert_in_chunks, scratch_pg_database  # noqa: E402
from storage import alumni, users  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import FeedEntry, Post  # noqa: E402
from storage.records import User  # noqa: E402



async def build(db: Database, records: int, entries: int, own_posts: int) -> User:
    """A reader in `records` records of `entries` entries each (joins, profiles, posts by others)."""
    async with db.transaction() as conn:
        reader = await users.create(conn, name="reader", display="Reader", password_hash=None)
        actor = await users.create(conn, name="actor", display="Actor", password_hash=None)
        record_ids = [
            (await alumni.create_record(conn, name=f"Class {n}", school="No. 1 High", owner_id=reader.id)).id
            for n in range(records)
        ]
    start = 1_700_000_000_000
    rows = (
        {
            "id": f"f_{r:04d}{i:08d}",
            "record_id": record_id,
            # Records interleave in time, as busy ones do; some entries share a millisecond.
            "ts": start + i * records + r // 2,
            "type": ("joined", "profile", "post")[i % 3],
            "actor_id": actor.id,
            "data": {"n": i},
            "post_id": None,
        }
        for r, record_id in enumerate(record_ids)
        for i in range(entries)
    )
    await insert_in_chunks(db, FeedEntry, rows)
    posts = (
        {"id": f"p_{i:08d}", "author_id": reader.id, "title": f"post {i}", "body": "text " * 40,
         "created": start + i * 997, "updated": start + i * 997}
        for i in range(own_posts)
    )
    await insert_in_chunks(db, Post, posts)
    async with db.transaction() as conn:  # planner statistics, as autovacuum would gather them
        await conn.execute(text("ANALYZE"))
    return reader


async def time_pages(db: Database, reader: User, runs: int) -> dict[str, float]:
    """Median milliseconds of the first page and of a page reached by a cursor deep in the feed."""
    service = PostService(db, announcer=None)  # reading announces nothing
    page, _ = await service.feed(reader, limit=50)
    deep_cursor = feed_key(page[-1])
    for _ in range(200):  # walk 10,000 entries down, page by page
        page, more = await service.feed(reader, before=deep_cursor, limit=50)
        if not more:
            break
        deep_cursor = feed_key(page[-1])
    figures = {}
    for label, before in (("first page", None), ("page 200", deep_cursor)):
        took = []
        for _ in range(runs):
            started = time.perf_counter()
            page, _ = await service.feed(reader, before=before, limit=50)
            took.append((time.perf_counter() - started) * 1000)
        assert len(page) == 50
        figures[label] = statistics.median(took)
    return figures


async def bench(name: str, url: str, args, connect_args: dict | None = None) -> None:
    db = Database(url, connect_args=connect_args)
    try:
        await db.migrate()
        started = time.perf_counter()
        reader = await build(db, args.records, args.entries, args.own_posts)
        built = time.perf_counter() - started
        figures = await time_pages(db, reader, args.runs)
    finally:
        await db.close()
    total = args.records * args.entries
    shown = ", ".join(f"{label} {ms:.2f} ms" for label, ms in figures.items())
    print(f"{name:<10} {args.records} records x {args.entries} entries ({total:,}) + {args.own_posts} own posts, "
          f"built in {built:.1f} s; page of 50 (median of {args.runs}): {shown}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20)
    parser.add_argument("--entries", type=int, default=10_000, help="feed entries per record")
    parser.add_argument("--own-posts", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            await bench("SQLite", f"sqlite+aiosqlite:///{tmp}/bench.db", args)
    if args.only != "sqlite":
        await bench_pg(args)


async def bench_pg(args) -> None:
    async with scratch_pg_database(args.pg, "bench_feed") as url:
        await bench("PostgreSQL", url, args)


if __name__ == "__main__":
    asyncio.run(main())
