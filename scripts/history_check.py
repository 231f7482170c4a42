"""An independent checker of chat histories: what clients logged against what storage holds.

Pure (no I/O, no project imports), so it trusts nothing of the server and can be fed doctored
histories by its own test. `scripts/chaos.py` records the histories and reads storage.

A client's log is a list of events, in the order the client saw them:

    {"e": "connect", "n": 1}                                  a (re)connection, numbered
    {"e": "sent", "room", "cid"}                              a send attempt (repeats reuse the cid)
    {"e": "acked", "room", "cid", "seq", "id"}                the server's ack
    {"e": "message", "room", "seq", "id", "cid"?, "from"?}    a live (or replayed) `message` event
    {"e": "gap", "room", "from", "to"}                        the server said it skipped these
    {"e": "paged", "room", "messages": [{"seq", "id"}, ...]}  what `history` returned for a gap

Storage is `{room: [{"seq", "id", "from", "cid"}, ...]}`. Each client is expected to have read every
room from seq 1 (it starts with `resume` 0) up to the last stored seq (it catches up at the end).

Properties (docs/protocol.md §10):
1. every acked message is stored exactly once, with the acked seq and id;
2. every client saw each room's messages in one order: increasing seqs, no duplicate across its
   reconnects, and no hole except one announced by a `gap` and paged with `history`; by the end it
   has every stored message;
3. nothing was delivered (live or paged) that is not stored as delivered (same seq, same id).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field


@dataclass
class Verdict:
    name: str
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        head = f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.checked} checked"
        if self.ok:
            return head
        shown = "; ".join(self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        return f"{head}, {len(self.problems)} violations: {shown}{more}"


def check(histories: dict[str, list[dict]], stored: dict[str, list[dict]], senders: dict[str, str]) -> list[Verdict]:
    """`histories` by client name; `senders` maps a client name to its user id."""
    return [
        acked_stored_once(histories, stored, senders),
        one_gapless_order(histories, stored),
        delivered_is_stored(histories, stored),
    ]


def acked_stored_once(histories, stored, senders) -> Verdict:
    verdict = Verdict("every acked message is stored exactly once")
    by_cid: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for room, messages in stored.items():
        for message in messages:
            if message.get("cid"):
                by_cid[(room, message.get("from"), message["cid"])].append(message)
    for client, events in histories.items():
        acks = {}
        for event in events:
            if event["e"] == "acked":
                key = (event["room"], event["cid"])
                if key in acks and (acks[key]["seq"], acks[key]["id"]) != (event["seq"], event["id"]):
                    verdict.problems.append(f"{client}: cid {event['cid']} acked as two messages")
                acks[key] = event
        for (room, cid), ack in acks.items():
            verdict.checked += 1
            copies = by_cid.get((room, senders[client], cid), [])
            if len(copies) != 1:
                verdict.problems.append(f"{client}: acked {room}#{ack['seq']} (cid {cid}) stored {len(copies)} times")
            elif (copies[0]["seq"], copies[0]["id"]) != (ack["seq"], ack["id"]):
                verdict.problems.append(
                    f"{client}: acked {room}#{ack['seq']} but stored as #{copies[0]['seq']} ({copies[0]['id']})")
    return verdict


def one_gapless_order(histories, stored) -> Verdict:
    verdict = Verdict("each client saw each room in one order, gapless, without duplicates")
    last_stored = {room: max((m["seq"] for m in messages), default=0) for room, messages in stored.items()}
    for client, events in histories.items():
        last: dict[str, int] = defaultdict(int)  # highest seq delivered live, per room
        have: dict[str, set[int]] = defaultdict(set)  # delivered live or paged
        announced: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for event in events:
            kind, room = event["e"], event.get("room")
            if kind == "gap":
                announced[room].append((event["from"], event["to"]))
            elif kind == "paged":
                have[room].update(m["seq"] for m in event["messages"])
            elif kind == "message":
                seq = event["seq"]
                verdict.checked += 1
                if seq <= last[room]:
                    what = "duplicate" if seq in have[room] else "out of order"
                    verdict.problems.append(f"{client}: {room}#{seq} {what} after #{last[room]}")
                    continue
                if seq != last[room] + 1 and (last[room] + 1, seq - 1) not in announced[room]:
                    verdict.problems.append(f"{client}: {room} jumped from #{last[room]} to #{seq} with no gap")
                last[room] = seq
                have[room].add(seq)
        for room, (low, high) in ((r, span) for r, spans in announced.items() for span in spans):
            unpaged = set(range(low, high + 1)) - have[room]
            if unpaged:
                verdict.problems.append(f"{client}: gap {room}#{low}-{high} left {len(unpaged)} unpaged")
        for room, top in last_stored.items():
            missing = set(range(1, top + 1)) - have[room]
            if missing:
                verdict.problems.append(
                    f"{client}: never got {len(missing)} of {room}'s {top} messages (first #{min(missing)})")
    return verdict


def delivered_is_stored(histories, stored) -> Verdict:
    verdict = Verdict("nothing delivered that is not stored")
    ids = {(room, m["seq"]): m["id"] for room, messages in stored.items() for m in messages}
    counts = Counter((room, m["seq"]) for room, messages in stored.items() for m in messages)
    for (room, seq), count in counts.items():
        if count > 1:
            verdict.problems.append(f"storage holds {room}#{seq} {count} times")
    for client, events in histories.items():
        for event in events:
            delivered = event["messages"] if event["e"] == "paged" else [event] if event["e"] == "message" else []
            for message in delivered:
                room = event["room"]
                verdict.checked += 1
                stored_id = ids.get((room, message["seq"]))
                if stored_id != message["id"]:
                    verdict.problems.append(
                        f"{client}: got {room}#{message['seq']} ({message['id']}), storage has {stored_id}")
    return verdict
