"""The chaos history checker must be able to fail: fed doctored histories, it catches each fault."""

from __future__ import annotations

import copy

import pytest

from scripts.history_check import check

SENDERS = {"alice": "u_a", "bob": "u_b"}


def m(seq: int, sender: str = "u_a", cid: str | None = None) -> dict:
    return {"seq": seq, "id": f"id{seq}", "from": sender, "cid": cid or f"c{seq}"}


def good() -> tuple[dict, dict]:
    """Alice sends 6 messages to room r; bob reads them across a reconnect and a paged gap."""
    stored = {"r": [m(seq) for seq in range(1, 7)]}
    alice = [{"e": "connect", "n": 1}]
    for seq in range(1, 7):
        alice += [{"e": "sent", "room": "r", "cid": f"c{seq}"},
                  {"e": "acked", "room": "r", "cid": f"c{seq}", "seq": seq, "id": f"id{seq}"},
                  {"e": "message", "room": "r", "seq": seq, "id": f"id{seq}"}]
    bob = [{"e": "connect", "n": 1},
           {"e": "message", "room": "r", "seq": 1, "id": "id1"},
           {"e": "connect", "n": 2},  # resumed from 1; the server skipped 2-4 and replayed 5-6
           {"e": "gap", "room": "r", "from": 2, "to": 4},
           {"e": "message", "room": "r", "seq": 5, "id": "id5"},
           {"e": "message", "room": "r", "seq": 6, "id": "id6"},
           {"e": "paged", "room": "r", "messages": [{"seq": s, "id": f"id{s}"} for s in (2, 3, 4)]}]
    return {"alice": alice, "bob": bob}, stored


def failed(histories, stored) -> set[str]:
    return {v.name for v in check(histories, stored, SENDERS) if not v.ok}


def test_a_sound_history_passes_every_property():
    verdicts = check(*good(), SENDERS)
    assert all(v.ok for v in verdicts), [v.line() for v in verdicts]
    assert [v.checked for v in verdicts] == [6, 9, 12]


def test_a_lost_ack_is_caught():
    histories, stored = good()
    stored["r"] = [x for x in stored["r"] if x["seq"] != 6]
    assert failed(histories, stored) == {
        "every acked message is stored exactly once", "nothing delivered that is not stored"}


def test_a_message_stored_twice_for_one_cid_is_caught():
    histories, stored = good()
    stored["r"].append({**m(7), "cid": "c3"})
    histories = {c: e + [{"e": "message", "room": "r", "seq": 7, "id": "id7"}] for c, e in histories.items()}
    assert failed(histories, stored) == {"every acked message is stored exactly once"}


ORDER = "each client saw each room in one order, gapless, without duplicates"
STORED = "nothing delivered that is not stored"


@pytest.mark.parametrize("doctor, caught_by", [
    ("duplicate", ORDER), ("reorder", ORDER), ("silent hole", ORDER), ("unpaged gap", ORDER),
    ("not stored", STORED), ("missed end", ORDER),
])
def test_each_delivery_fault_is_caught(doctor, caught_by):
    histories, stored = good()
    bob = copy.deepcopy(histories["bob"])
    if doctor == "duplicate":  # replayed again after a reconnect
        bob.insert(5, {"e": "message", "room": "r", "seq": 5, "id": "id5"})
    elif doctor == "reorder":
        bob[4], bob[5] = bob[5], bob[4]
    elif doctor == "silent hole":  # no gap frame announced the skip
        del bob[3]
    elif doctor == "unpaged gap":
        bob[-1]["messages"] = bob[-1]["messages"][:2]
    elif doctor == "not stored":  # delivered with an id storage does not have
        bob[4]["id"] = "forged"
    elif doctor == "missed end":
        del bob[5]
    histories["bob"] = bob
    assert caught_by in failed(histories, stored), doctor
