"""How long searches take at scale (docs/protocol.md §12.13): people, records, groups and messages.

Seeds, on SQLite and on PostgreSQL, 1,000,000 messages (English and Chinese
text, half each) in 1,000 rooms, 100,000 users and 10,000 alumni records,
with the searching user a member of 50 rooms, then times 200 queries of each
kind through `SearchService` (the code behind the HTTP routes: SQL, rows to
JSON, snippets) and prints p50/p95/p99 in milliseconds; for messages also
the 5th page of each query that has one (by its `next` cursors). Figures only;
nothing is asserted. Targets of issue 13: messages p95 < 100 ms, the others
p95 < 30 ms.

    .venv/bin/python scripts/bench_search.py                    # both databases, full scale
    .venv/bin/python scripts/bench_search.py --scale 0.1 --only sqlite

`--ingest` instead measures what the message indexes cost the writer:
messages stored a second by `append_batch` (batches of 100, as the writer
commits them), and the CPU a message costs, with the indexes and with them
dropped, on a fresh database each; and how fast the server's search indexer
then catches up (SQLite's FTS5 index, PostgreSQL's word index: both filled
after the commits).

`--scale` multiplies every count (users, rooms, records, messages; the
searcher's 50 rooms shrink with the rooms). Seeding goes through the same
schema, triggers and indexes the server uses (migrations 0004, 0008), in bulk
inserts, then does the search indexer's work. PostgreSQL: `--pg` names the
server; a scratch database is created and dropped. After seeding, PostgreSQL
gets the VACUUM ANALYZE autovacuum would give it (SQLite an ANALYZE).
`--keep` / `--pg-database` keep the database, and `--reuse` searches a kept
one again without seeding it anew.

Wall-clock latencies move with whatever else runs on the host; beside them
the table gives each query's CPU time (this process, plus the server's
backends when PostgreSQL runs on this host), which hardly does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from chatserver.services.search import SearchService  # noqa: E402
from scripts.bench_db import CpuMeter, insert_in_chunks, scratch_pg_database  # noqa: E402
from storage import search as search_store  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import AlumniMember, AlumniRecord, Membership, Message, Room, User  # noqa: E402
from storage.records import User as UserRecord  # noqa: E402

START = 1_700_000_000_000
DEEP_PAGE = 5  # messages: also timed, the 5th page of each query that has one

ENGLISH = (
    "the meeting tomorrow photos dinner class reunion school teacher weekend football coffee project "
    "deadline birthday party travel holiday train airport hotel restaurant movie music concert basketball "
    "morning evening office manager report budget market customer design review release server database "
    "kitchen garden river mountain beach summer winter spring autumn family children friends remember "
    "graduation university campus library homework exam results congratulations thanks welcome sorry "
    "great awesome maybe tonight later soon yesterday weather raining sunny cloudy subway station ticket "
    "wedding baby house apartment salary promotion interview resume startup investor product launch"
).split()
CHINESE = (
    "同学 毕业 北京 上海 聚会 老师 明天 周末 大学 照片 工作 公司 吃饭 电影 生日 快乐 学校 班级 回忆 时间 "
    "地方 晚上 喜欢 朋友 中午 下午 一起 火锅 旅游 孩子 考试 篮球 足球 春节 国庆 见面 天气 下雨 地铁 高铁 "
    "机场 酒店 餐厅 咖啡 啤酒 唱歌 跑步 健身 加班 开会 项目 老板 同事 工资 房子 结婚 恭喜 谢谢 再见 你好 "
    "哈哈 好的 没问题 可以 不行 怎么样 什么时候 在哪里 颐和园 长城 故宫 西湖 深圳 广州 杭州 南京 成都 "
    "重庆 武汉 西安 天津 苏州 厦门 青岛 大连 昆明 研究生 博士 硕士 本科 高中 初中 小学 食堂 宿舍 操场"
).split()
SURNAMES = "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗".split()
GIVEN = "伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀英 华 平 刚 桂英 文 辉 玲 鹏 红 飞".split()
FIRST = ("james mary john patricia robert jennifer michael linda william elizabeth david barbara richard "
         "susan joseph jessica thomas sarah charles karen wei ming lei jun hui").split()
LAST = "smith johnson williams brown jones garcia miller davis wang li zhang liu chen yang huang zhao".split()
SCHOOLS = [f"{city}第{n}中学" for city in ("北京", "上海", "杭州", "南京", "成都", "武汉", "西安", "广州")
           for n in range(1, 13)] + [f"{name} High School" for name in (
               "Lincoln", "Washington", "Jefferson", "Roosevelt", "Madison", "Franklin", "Kennedy", "Hamilton")]


def english_text(rng: random.Random) -> str:
    words = rng.choices(ENGLISH, k=rng.randint(5, 14))
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice((".", "!", "?", ""))


def chinese_text(rng: random.Random) -> str:
    words = rng.choices(CHINESE, k=rng.randint(3, 9))
    if rng.random() < 0.2:
        words.insert(rng.randrange(len(words)), rng.choice(ENGLISH))
    return "".join(words) + rng.choice(("。", "!", "?", "", "~"))


def person(rng: random.Random, i: int) -> tuple[str, str]:
    if i % 2:
        return f"{rng.choice(FIRST)}.{rng.choice(LAST)}{i}", f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}"
    display = rng.choice(SURNAMES) + rng.choice(GIVEN)
    return f"u{i:07d}", display


async def build(db: Database, args) -> tuple[UserRecord, dict]:
    rng = random.Random(13)
    n_users = max(100, int(100_000 * args.scale))
    n_rooms = max(20, int(1_000 * args.scale))
    n_records = max(100, int(10_000 * args.scale))
    n_messages = int(1_000_000 * args.scale)
    mine = max(5, n_rooms // 20)
    per_room = n_messages // n_rooms
    counts = {"users": n_users, "rooms": n_rooms, "records": n_records, "messages": per_room * n_rooms,
              "searcher's rooms": mine}
    started = time.perf_counter()
    user_ids = [f"u_{i:07d}" for i in range(n_users)]
    await insert_in_chunks(db, User, (
        {"id": uid, "name": name, "display": display, "password_hash": None, "bot": False, "owner_id": None,
         "created": START + i, "deleted": False}
        for i, uid in enumerate(user_ids) for name, display in [person(rng, i)]
    ))
    searcher = UserRecord(id=user_ids[0], name="u0000000", display="searcher")
    room_ids = [f"r_{i:05d}" for i in range(n_rooms)]
    policies = ("open", "approval", "invite")
    await insert_in_chunks(db, Room, (
        {"id": rid, "name": f"{rng.choice(CHINESE)}{rng.choice(CHINESE)} {rng.choice(ENGLISH)} group {i}",
         "topic": chinese_text(rng) if i % 2 else english_text(rng), "join_policy": policies[i % 3],
         "owner_id": user_ids[i % n_users], "last_seq": per_room, "created": START + i}
        for i, rid in enumerate(room_ids)
    ))
    # The searcher is in every 20th room; each room has 20 members besides.
    searcher_rooms = set(room_ids[:: max(1, n_rooms // mine)][:mine])
    await insert_in_chunks(db, Membership, (
        {"room_id": rid, "user_id": uid, "role": "member", "joined": START, "read_seq": 0}
        for rid in room_ids
        for uid in ({user_ids[(int(rid[2:]) * 101 + k * 7919) % (n_users - 1) + 1] for k in range(20)}
                    | ({searcher.id} if rid in searcher_rooms else set()))
    ))
    record_ids = [f"a_{i:06d}" for i in range(n_records)]
    await insert_in_chunks(db, AlumniRecord, (
        {"id": aid, "name": f"{school} {year} 届 {cls}班" if i % 2 else f"{school} class of {year}",
         "school": school, "year": year, "class_name": f"{cls}班", "description": english_text(rng),
         "owner_id": user_ids[i % n_users], "room_id": None, "created": START + i}
        for i, aid in enumerate(record_ids)
        for school, year, cls in [(rng.choice(SCHOOLS), rng.randint(1990, 2020), rng.randint(1, 12))]
    ))
    await insert_in_chunks(db, AlumniMember, (
        {"record_id": aid, "user_id": user_ids[i % n_users], "joined": START, "profile": {}, "visibility": {}}
        for i, aid in enumerate(record_ids)
    ))
    await insert_in_chunks(db, Message, (
        {"room_id": room_ids[r], "seq": s + 1, "id": f"m_{s:05d}_{r:05d}", "ts": START + s * n_rooms + r,
         "sender_id": user_ids[(r * 31 + s) % n_users], "kind": "text",
         "text": chinese_text(rng) if (s + r) % 2 else english_text(rng), "cid": None, "reply_to": None,
         "mentions": None, "recalled": False, "system_type": None, "system_data": None}
        for s in range(per_room) for r in range(n_rooms)  # rooms interleaved in time, as busy ones are
    ))
    indexed = time.perf_counter()
    while True:  # the search indexer's work after the commits (services/search_indexer.py)
        async with db.transaction() as conn:
            if not await search_store.index_messages(conn, 50_000):
                break
    counts["indexed after in"] = f"{time.perf_counter() - indexed:.0f} s"
    await maintain(db)
    counts["seeded in"] = f"{time.perf_counter() - started:.0f} s"
    return searcher, counts


async def maintain(db: Database) -> None:
    """What autovacuum would have done after a million inserts: planner statistics and, on
    PostgreSQL, a VACUUM, which also merges the GIN indexes' pending lists into the indexes
    (searches read a pending list whole, and the planner prices an index by it). SQLite gets
    no VACUUM: it may renumber the rowids its search tables key on."""
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE" if db.is_sqlite else "VACUUM ANALYZE"))


async def reuse(db: Database) -> tuple[UserRecord, dict]:
    """The searcher and the counts of a database an earlier run built (`--reuse`)."""
    counts: dict = {}
    async with db.read() as conn:
        for table in ("users", "rooms", "alumni_records", "messages"):
            counts[table.replace("alumni_", "")] = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
        counts["searcher's rooms"] = (await conn.execute(
            text("SELECT count(*) FROM memberships WHERE user_id = 'u_0000000'"))).scalar()
    await maintain(db)
    counts["reused"] = "(built by an earlier run)"
    return UserRecord(id="u_0000000", name="u0000000", display="searcher"), counts


def queries(rng: random.Random, n: int) -> dict[str, list]:
    """`n` queries of each kind: what people type (a name part, a school, a word of a message)."""
    def cjk_part(word: str, size: int) -> str:
        start = rng.randrange(0, max(1, len(word) - size + 1))
        return word[start:start + size]

    people = [rng.choice([rng.choice(SURNAMES) + rng.choice(GIVEN), rng.choice(FIRST), rng.choice(LAST)[:4],
                          rng.choice(FIRST).title(), rng.choice(GIVEN) * 1 + rng.choice(SURNAMES)])
              for _ in range(n)]
    people = [q if len(q) >= 2 else q + rng.choice(GIVEN) for q in people]
    records = [rng.choice([{"q": cjk_part(rng.choice(SCHOOLS[:96]), rng.randint(2, 5))},
                           {"q": rng.choice(SCHOOLS).split()[0][:6]},
                           {"school": rng.choice(SCHOOLS), "year": rng.randint(1990, 2020)},
                           {"q": f"{rng.randint(1990, 2020)} 届"}]) for _ in range(n)]
    groups = [rng.choice([rng.choice(CHINESE), rng.choice(ENGLISH), f"group {rng.randint(1, 999)}"])
              for _ in range(n)]
    messages = [rng.choice([rng.choice(ENGLISH), rng.choice(ENGLISH).upper()[:5], rng.choice(CHINESE),
                            cjk_part(rng.choice(CHINESE) + rng.choice(CHINESE), 3),
                            f"{rng.choice(ENGLISH)} {rng.choice(ENGLISH)}", "xylophone"])
                for _ in range(n)]
    return {"people": people, "records": records, "groups": groups, "messages": messages}


async def time_queries(db: Database, searcher: UserRecord, n: int) -> tuple[dict, dict, bool]:
    """Milliseconds per query by kind: wall clock, and CPU (this process and, on PostgreSQL,
    the server's backends: see `CpuMeter`)."""
    service = SearchService(db)
    meter = CpuMeter(db)
    kinds = queries(random.Random(7), n)
    calls = {
        "people": lambda q, before=None: service.people(searcher, q, before, 20),
        "records": lambda f, before=None: service.records(searcher, dict(f), before, 20),
        "groups": lambda q, before=None: service.groups(searcher, q, before, 20),
        "messages": lambda q, before=None: service.messages(searcher, q, None, before, 20),
    }
    took: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for kind, items in kinds.items():
        for warm in items[:5]:
            await calls[kind](warm)
        await meter.attach()
        for item in items:
            started, cpu_started = time.perf_counter(), meter.seconds()
            page = await calls[kind](item)
            ms, cpu_ms = (time.perf_counter() - started) * 1000, (meter.seconds() - cpu_started) * 1000
            kinds_of_item = [kind]
            if kind == "messages":
                kinds_of_item.append("messages, 2 chars" if len(item) == 2 else "messages, 3+ chars")
            for name in kinds_of_item:
                took.setdefault(name, []).append(ms)
                cpu.setdefault(name, []).append(cpu_ms)
            if kind == "messages":  # deeper: the 5th page, where there is one
                for _ in range(DEEP_PAGE - 1):
                    if page["next"] is None:
                        break
                    started, cpu_started = time.perf_counter(), meter.seconds()
                    page = await calls[kind](item, page["next"])
                else:
                    took.setdefault(f"messages, page {DEEP_PAGE}", []).append((time.perf_counter() - started) * 1000)
                    cpu.setdefault(f"messages, page {DEEP_PAGE}", []).append((meter.seconds() - cpu_started) * 1000)
    return took, cpu, meter.sees_server


@dataclass
class Ingest:
    stored: float  # messages a second `append_batch` stored
    cpu: float  # CPU µs a message while storing (this process + the server's backends)
    after: float | None = None  # messages a second the search indexer then caught up at
    after_cpu: float | None = None  # CPU µs a message of that


async def ingest_rate(url: str, messages: int, indexed: bool) -> Ingest:
    """`append_batch` of `messages`, 100 a batch across 100 rooms, with the message indexes as
    migrated or without them; with them, then what the server's search indexer does once the
    writer is idle (SQLite's FTS5 index, PostgreSQL's word index), timed apart."""
    from storage import messages as message_store
    from storage import rooms as room_store
    from storage import users as user_store
    from storage.records import NewMessage

    db = Database(url)
    try:
        await db.migrate()
        async with db.transaction() as conn:
            if not indexed:
                await conn.execute(text("DROP TRIGGER messages_fts_au" if db.is_sqlite
                                        else "DROP INDEX ix_messages_text_trgm"))
            senders = [await user_store.create(conn, name=f"s{i:03d}", display=f"S{i}", password_hash=None)
                       for i in range(100)]
            rooms = [await room_store.create(conn, name=f"r{i}", topic="", join_policy="invite", owner_id=u.id)
                     for i, u in enumerate(senders)]
        rng = random.Random(1)
        batches = [[NewMessage(rooms[i].id, senders[i], english_text(rng) if (b + i) % 2 else chinese_text(rng),
                               cid=f"{b}-{i}") for i in range(100)] for b in range(messages // 100)]
        meter = CpuMeter(db)
        await meter.attach()
        started, cpu_started = time.perf_counter(), meter.seconds()
        for batch in batches:
            async with db.transaction() as conn:
                await message_store.append_batch(conn, batch)
        took = time.perf_counter() - started
        result = Ingest(messages / took, (meter.seconds() - cpu_started) / messages * 1e6)
        if not indexed:
            return result
        started, cpu_started = time.perf_counter(), meter.seconds()
        while True:
            async with db.transaction() as conn:
                if not await search_store.index_messages(conn, 500):  # the indexer's chunk
                    break
        result.after = messages / (time.perf_counter() - started)
        result.after_cpu = (meter.seconds() - cpu_started) / messages * 1e6
        return result
    finally:
        await db.close()


async def bench_ingest(args) -> None:
    count = max(1_000, int(20_000 * args.scale))
    print(f"append_batch of {count:,} messages (100 a batch, 100 rooms); load average {os.getloadavg()[0]:.1f}")
    for name in ("SQLite", "PostgreSQL"):
        if args.only and args.only != name.lower():
            continue
        runs: dict[bool, list[Ingest]] = {}
        for indexed in (False, True) * args.ingest_runs:  # interleaved: the host's noise hits both alike
            if name == "SQLite":
                with tempfile.TemporaryDirectory() as tmp:
                    run = await ingest_rate(f"sqlite+aiosqlite:///{tmp}/ingest.db", count, indexed)
            else:
                async with scratch_pg_database(args.pg, "bench_ingest") as url:
                    run = await ingest_rate(url, count, indexed)
            runs.setdefault(indexed, []).append(run)
        without, with_ = (max(runs[i], key=lambda r: r.stored) for i in (False, True))
        cpu_without, cpu_with = (statistics.median(r.cpu for r in runs[i]) for i in (False, True))
        print(f"{name:<11} messages a second without the indexes {without.stored:8,.0f}, "
              f"with them {with_.stored:8,.0f} "
              f"({with_.stored / without.stored:.0%}; best of {args.ingest_runs} each)")
        print(f"{'':<11} CPU µs a message while storing: without {cpu_without:6.1f}, with {cpu_with:6.1f} "
              f"(+{cpu_with - cpu_without:.1f}; median)")
        after = max(runs[True], key=lambda r: r.after or 0)
        if after.after:
            what = "indexed after the commits" if name == "SQLite" else "word index filled after the commits"
            print(f"{'':<11} then {what} at {after.after:,.0f} messages a second "
                  f"({statistics.median(r.after_cpu for r in runs[True]):.1f} CPU µs a message)")
    print(f"load average {os.getloadavg()[0]:.1f}")


def percentiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"{cuts[49]:8.2f} {cuts[94]:8.2f} {cuts[98]:8.2f}"


async def bench(name: str, url: str, args) -> None:
    db = Database(url)
    try:
        await db.migrate()
        searcher, counts = await (reuse(db) if args.reuse else build(db, args))
        load = os.getloadavg()[0]
        took, cpu, sees_server = await time_queries(db, searcher, args.queries)
        load = max(load, os.getloadavg()[0])
    finally:
        await db.close()
    print(f"\n{name}: " + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in counts.items()))
    whose = "this process" + (" + the server's backends" if sees_server else "")
    print(f"load average (1 min) up to {load:.1f}; CPU = {whose}")
    print(f"{'kind':<20} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}   {'CPU p50':>8} {'p95':>8} {'p99':>8}  (queries)")
    for kind, values in took.items():
        print(f"{kind:<20} {percentiles(values)}   {percentiles(cpu[kind])}  ({len(values)})")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every count (default 1: 1,000,000 messages)")
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", help="SQLite: build the database in this file and keep it")
    parser.add_argument("--pg-database", help="PostgreSQL: build in this database (created) and keep it")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep or --pg-database: search the database an earlier run built (migrated to "
                             "the current head first) instead of building one")
    parser.add_argument("--ingest", action="store_true", help="measure what the index costs the writer instead")
    parser.add_argument("--ingest-runs", type=int, default=2, help="--ingest: runs with and without the indexes")
    args = parser.parse_args()
    if args.reuse and not (args.keep or args.pg_database):
        parser.error("--reuse needs --keep or --pg-database")
    if args.ingest:
        await bench_ingest(args)
        return
    print(f"bench_search --scale {args.scale} --queries {args.queries}")
    if args.only != "postgresql":
        if args.keep:
            await bench("SQLite", f"sqlite+aiosqlite:///{args.keep}", args)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                await bench("SQLite", f"sqlite+aiosqlite:///{tmp}/bench.db", args)
    if args.only != "sqlite":
        await bench_pg(args)


async def bench_pg(args) -> None:
    if args.pg_database:
        import asyncpg
        from sqlalchemy.engine import make_url

        admin = make_url(args.pg)
        if not args.reuse:
            conn = await asyncpg.connect(admin.set(drivername="postgresql").render_as_string(hide_password=False))
            try:
                await conn.execute(f'CREATE DATABASE "{args.pg_database}"')
            finally:
                await conn.close()
        await bench("PostgreSQL", admin.set(database=args.pg_database).render_as_string(hide_password=False), args)
        return
    async with scratch_pg_database(args.pg, "bench_search") as url:
        await bench("PostgreSQL", url, args)


if __name__ == "__main__":
    asyncio.run(main())
