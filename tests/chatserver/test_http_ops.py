"""Operations routes (docs/protocol.md §12.9) and the served OpenAPI document."""

from __future__ import annotations

import re

from chatserver import keys

from .conftest import Reply, eventually

NOT_REST = {"/ws", "/", "/static"}  # the WebSocket, the page and its files: not part of the REST API


def registered_routes(app) -> set[tuple[str, str]]:
    """(METHOD, path) of every route the app's router serves, in OpenAPI's `{param}` form."""
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if route.method in ("HEAD", "OPTIONS") or path is None or path in NOT_REST or path.startswith("/static"):
            continue
        found.add((route.method, re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)))
    return found


async def test_healthz_is_200_when_storage_and_bus_answer(http):
    reply: Reply = await http("GET", "/healthz")
    assert reply.status == 200


async def test_metrics_are_prometheus_text(http):
    reply = await http("GET", "/metrics")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    assert "# TYPE" in reply.body


async def test_metrics_count_messages_deliveries_and_fanout_latency(http, pair, server):
    room, alice, bob = pair
    # A connection hears its rooms live once its hello's catch-up is done, which may be after its
    # `welcome`; until then a message reaches it by the catch-up and is not a delivery of the fan-out.
    live = server.app[keys.HUB]._rooms
    await eventually(lambda: room in live and len(live[room].json) == 2)
    await alice.call("send", room=room, text="counted", cid="m1")
    await bob.expect("message", text="counted")
    body = (await http("GET", "/metrics")).body
    samples = dict(line.rsplit(" ", 1) for line in body.splitlines() if line and not line.startswith("#"))
    assert float(samples["chat_messages_in_total"]) >= 1
    assert float(samples["chat_deliveries_total"]) >= 2  # the message, to alice and to bob
    assert float(samples["chat_fanout_latency_seconds_count"]) >= 1
    assert float(samples["chat_connections"]) == 2


async def test_openapi_documents_every_registered_route(http, server):
    reply = await http("GET", "/api/openapi.json")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("application/json")
    document = reply.body
    assert document["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    registered = registered_routes(server.app)
    assert registered, "the router lists routes"
    assert registered - documented == set(), "routes the document leaves out"
    assert documented - registered == set(), "documented routes nobody serves"


async def test_openapi_names_success_statuses_and_error_shape(http):
    document = (await http("GET", "/api/openapi.json")).body
    paths = document["paths"]
    expected = {
        ("post", "/api/users"): "201",
        ("post", "/api/tokens"): "201",
        ("delete", "/api/tokens/current"): "204",
        ("get", "/api/me"): "200",
        ("post", "/api/rooms"): "201",
        ("get", "/api/rooms"): "200",
        ("get", "/api/rooms/{room_id}"): "200",
        ("patch", "/api/rooms/{room_id}"): "200",
        ("get", "/api/rooms/{room_id}/members"): "200",
        ("post", "/api/rooms/{room_id}/members"): "201",
        ("delete", "/api/rooms/{room_id}/members/{user_id}"): "204",
        ("put", "/api/rooms/{room_id}/members/{user_id}/role"): "200",
        ("get", "/api/rooms/{room_id}/messages"): "200",
        ("post", "/api/rooms/{room_id}/messages"): "201",
        ("get", "/api/rooms/{room_id}/online"): "200",
        ("post", "/api/bots"): "201",
        ("get", "/api/bots"): "200",
        ("delete", "/api/bots/{bot_id}"): "204",
        ("get", "/healthz"): "200",
    }
    for (method, path), status in expected.items():
        assert path in paths and method in paths[path], (method, path)
        responses = paths[path][method]["responses"]
        assert status in responses, (method, path, sorted(responses))
    error = document["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message"]
    assert paths["/api/rooms/{room_id}/messages"]["post"]["responses"]["422"]["content"]


async def test_unknown_api_path_is_404_with_the_error_shape(http):
    (await http("GET", "/api/no-such-thing")).error(404, "not_found")


async def test_error_responses_carry_the_security_headers_too(http):
    reply = await http("GET", "/api/no-such-thing")
    reply.error(404, "not_found")
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in reply.headers  # the page's policy is for the page
    page = await http("GET", "/static/no-such-file.js")
    assert page.status == 404
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
