"""scripts/bench_reactions.py: a small storm against the test's server completes with every entry
seen once, in order, by every observer. No timing is asserted: figures are benchmark output."""

from __future__ import annotations

import pytest

from scripts.bench_reactions import storm

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


async def test_a_small_storm_is_delivered_once_in_order(server):
    result = await storm(server.url, reactors=6, messages=3, reaction_rate=30.0, senders=2, send_rate=5.0,
                         duration=1.0, warmup=0.2)
    assert result["observers_every_entry_once_in_order"] is True, result
    assert result["errors"] == {}, result
    assert result["reaction_deliveries_timed"] > 0 and result["reactor_bytes_received"] > 0, result
