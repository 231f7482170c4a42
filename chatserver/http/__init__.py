"""The REST API of docs/protocol.md §12: thin handlers that parse, call a service, and answer JSON."""
