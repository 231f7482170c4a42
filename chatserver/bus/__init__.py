"""Buses carry events between nodes: `MemoryBus` on one node, `RedisBus` across many."""

from .base import Bus, BusHandler
from .memory import MemoryBus

__all__ = ["Bus", "BusHandler", "MemoryBus"]
