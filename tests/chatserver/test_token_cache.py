"""The token cache (chatserver/services/token_cache.py) never serves a token it was told is
revoked, nor one that a lookup read before the revocation; it is neither read nor filled while
the bus is down, and is emptied when the bus comes back. Across real nodes: tests/test_revocation_nodes.py."""

from __future__ import annotations

import dataclasses

from chatserver.bus.events import MembershipChanged, Revoked, UserChanged
from chatserver.services.token_cache import CachingHandler, TokenCache
from storage.records import User

ALICE = User(id="u-alice", name="alice", display="Alice")
BOB = User(id="u-bob", name="bob", display="Bob")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Bus:
    """Stands for the bus's `healthy` flag."""

    healthy = True


def cache(ttl: float = 5.0, size: int = 100) -> tuple[TokenCache, Clock, Bus]:
    clock, bus = Clock(), Bus()
    return TokenCache(ttl, trusted=lambda: bus.healthy, size=size, clock=clock), clock, bus


def filled(tokens: TokenCache, token_hash: str, user: User) -> None:
    tokens.put(token_hash, user, tokens.ticket())


def test_a_looked_up_token_is_served_until_its_time_is_up():
    tokens, clock, _ = cache(ttl=5.0)
    assert tokens.get("h1") is None
    filled(tokens, "h1", ALICE)
    assert tokens.get("h1") == ALICE
    clock.now += 4.9
    assert tokens.get("h1") == ALICE
    clock.now += 0.1
    assert tokens.get("h1") is None and len(tokens) == 0


def test_a_ttl_of_zero_caches_nothing():
    tokens, _, _ = cache(ttl=0)
    filled(tokens, "h1", ALICE)
    assert tokens.get("h1") is None


def test_revoked_tokens_and_users_are_forgotten():
    tokens, _, _ = cache()
    filled(tokens, "h1", ALICE)
    filled(tokens, "h2", ALICE)
    filled(tokens, "h3", BOB)
    tokens.on_control_event(Revoked(token_hash="h1"))
    assert (tokens.get("h1"), tokens.get("h2"), tokens.get("h3")) == (None, ALICE, BOB)
    tokens.on_control_event(Revoked(user_id=ALICE.id))  # a deleted bot: every token of the user
    assert (tokens.get("h2"), tokens.get("h3")) == (None, BOB)
    tokens.on_control_event(UserChanged(user=dataclasses.replace(BOB, display="Bobby")))
    assert tokens.get("h3") is None  # asked again: the next lookup brings the new display name
    tokens.on_control_event(MembershipChanged(room_id="r", user_id=BOB.id, added=True, seq=1))  # not about tokens


def test_a_lookup_that_read_before_a_revocation_does_not_put_the_token_back():
    tokens, _, _ = cache()
    ticket = tokens.ticket()  # a lookup starts; the database still has the token...
    tokens.on_control_event(Revoked(token_hash="h1"))  # ...then it is revoked, before the lookup ends
    tokens.put("h1", ALICE, ticket)
    assert tokens.get("h1") is None
    # A revocation of anything else also ends the ticket: revocations are rare, lookups cheap.
    ticket = tokens.ticket()
    tokens.on_control_event(Revoked(token_hash="other"))
    tokens.put("h1", ALICE, ticket)
    assert tokens.get("h1") is None
    filled(tokens, "h1", ALICE)  # a lookup begun after the revocation fills it
    assert tokens.get("h1") == ALICE


def test_an_entry_lives_ttl_from_when_its_lookup_began():
    tokens, clock, _ = cache(ttl=5.0)
    ticket = tokens.ticket()
    clock.now += 3.0  # a slow lookup
    tokens.put("h1", ALICE, ticket)
    clock.now += 2.0
    assert tokens.get("h1") is None


def test_while_the_bus_is_down_the_cache_is_neither_read_nor_filled():
    tokens, _, bus = cache()
    filled(tokens, "h1", ALICE)
    bus.healthy = False  # revocations from other nodes may be getting lost
    assert tokens.get("h1") is None and len(tokens) == 0
    filled(tokens, "h2", BOB)
    assert len(tokens) == 0
    ticket = tokens.ticket()
    bus.healthy = True
    tokens.put("h2", BOB, ticket)
    assert tokens.get("h2") == BOB


def test_the_bus_coming_back_empties_the_cache_and_ends_tickets_then_tells_the_hub():
    tokens, _, _ = cache()

    class Hub:
        def __init__(self) -> None:
            self.calls = []
            self.on_room_event = lambda room_id, event: self.calls.append(("room", room_id))

        def on_control_event(self, event) -> None:
            self.calls.append(("control", len(tokens)))  # the cache has forgotten by then

        def on_bus_restored(self) -> None:
            self.calls.append(("restored", len(tokens)))

    hub = Hub()
    handler = CachingHandler(hub, tokens)
    filled(tokens, "h1", ALICE)
    ticket = tokens.ticket()
    handler.on_bus_restored()  # what was lost while the bus was away is unknown: forget everything
    tokens.put("h2", BOB, ticket)
    assert len(tokens) == 0
    filled(tokens, "h1", ALICE)
    handler.on_control_event(Revoked(token_hash="h1"))
    handler.on_room_event("r1", None)
    assert hub.calls == [("restored", 0), ("control", 0), ("room", "r1")]


def test_the_cache_is_bounded_first_to_expire_first():
    tokens, _, _ = cache(size=3)
    for n in range(3):
        filled(tokens, f"h{n}", ALICE)
    assert tokens.get("h0") == ALICE  # being read does not make it live longer
    filled(tokens, "h3", BOB)
    assert len(tokens) == 3 and tokens.get("h0") is None
    assert [tokens.get(f"h{n}") for n in (1, 2, 3)] == [ALICE, ALICE, BOB]


def test_expired_entries_are_shed_as_new_ones_come_without_being_read():
    tokens, clock, _ = cache(ttl=5.0, size=100)
    for n in range(50):
        filled(tokens, f"old{n}", ALICE)
    clock.now += 3.0
    filled(tokens, "young", BOB)
    assert len(tokens) == 51
    clock.now += 2.0  # the first fifty are 5 s old: expired, never read again
    filled(tokens, "new", BOB)
    assert len(tokens) == 2 and tokens.get("young") == BOB and tokens.get("new") == BOB
