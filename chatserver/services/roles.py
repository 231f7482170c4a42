"""Roles in a group (docs/protocol.md §12.4): named once for every service that checks them."""

ROLES = ("owner", "admin", "member")
ADMIN_ROLES = frozenset({"owner", "admin"})
