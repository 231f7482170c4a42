"""A real-time group chat server: WebSocket groups with durable, ordered history."""

__version__ = "0.1.0"
