"""Prometheus metrics of one server, in a registry of its own (no module globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    """Counters the hub, services and handlers update; `render()` gives the text format."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.connections = Gauge("chat_connections", "Open WebSocket connections", registry=r)
        self.messages_in = Counter(
            "chat_messages_in", "Messages stored by the group commit (sends over WebSocket and HTTP)", registry=r
        )
        self.deliveries = Counter("chat_deliveries", "Message frames queued to connections", registry=r)
        self.commit_batch = Histogram(
            "chat_commit_batch_size", "Messages per group commit", registry=r,
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
        )
        self.storage_seconds = Histogram(
            "chat_storage_commit_seconds", "Time of one group commit", registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.fanout_latency = Histogram(
            "chat_fanout_latency_seconds", "From a message's storing to its fan-out on this node", registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.closes = Counter("chat_closes", "Connections closed by the server", ["reason"], registry=r)
        self.errors = Counter("chat_errors", "Error frames and responses sent", ["code"], registry=r)
        self.gap_fills = Counter("chat_gap_fills", "Sequencer gaps filled from storage", registry=r)
        self.bus_reconnects = Counter("chat_bus_reconnects", "Times the bus reconnected", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
