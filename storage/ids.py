"""Opaque, unguessable ids (docs/protocol.md §2): a short type prefix and 16 random hex digits."""

import secrets


def new_id(prefix: str) -> str:
    """`new_id("u")` -> `"u_3f9c0a5e12b4d7e8"`; the prefix only helps people reading logs."""
    return f"{prefix}_{secrets.token_hex(8)}"
