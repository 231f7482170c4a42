"""The REST API of PROTOCOL §3: thin handlers that parse, call a service, and answer JSON."""
