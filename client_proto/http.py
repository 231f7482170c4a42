"""A small client for the HTTP API (docs/protocol.md §12), for tests, bots and the load tester.

    async with ApiClient("http://127.0.0.1:8080") as api:
        user = await api.register("alice", "secret-pw")
        alice = api.as_user(await api.login("alice", "secret-pw"))
        room = await alice.create_room("general", join_policy="open")
"""

from __future__ import annotations

import json as jsonlib
from typing import Any

import aiohttp


class ApiError(Exception):
    """A non-2xx answer: its HTTP `status` and the §3 error body's `code` and `message`.

    `retry_after` is the `Retry-After` header in seconds (on 429), else None.
    """

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class ApiClient:
    """JSON over HTTP against `base_url` (the server root, e.g. "http://127.0.0.1:8080").

    Paths start with "/api/". With `token`, every request carries
    `Authorization: Bearer <token>`. A session passed in is borrowed, not closed.
    """

    def __init__(
        self, base_url: str, token: str | None = None, *, session: aiohttp.ClientSession | None = None
    ):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def as_user(self, token: str) -> ApiClient:
        """Another client for the same server with `token`, sharing this one's connections."""
        return ApiClient(self.base_url, token, session=self._http())

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession must be made inside the running loop.
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def request(
        self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """The decoded JSON body (None for 204); `ApiError` for any status >= 300."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self._http().request(
            method, self.base_url + path, json=json, params=params, headers=headers
        ) as resp:
            return await self._answer(resp)

    @staticmethod
    async def _answer(resp: aiohttp.ClientResponse) -> Any:
        """The decoded JSON body (None for 204); `ApiError` for any status >= 300."""
        raw = await resp.read()
        if resp.status < 300:
            return jsonlib.loads(raw) if raw else None
        try:  # docs/protocol.md §12.1: {"error": {"code", "message"}}; a proxy may send anything
            error = dict(jsonlib.loads(raw)["error"])
        except (ValueError, KeyError, TypeError):
            error = {}
        retry_after = resp.headers.get("Retry-After")
        raise ApiError(
            resp.status,
            error.get("code", "http_error"),
            error.get("message", resp.reason or ""),
            float(retry_after) if retry_after else None,
        )

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params or None)

    async def post(self, path: str, json: Any = None) -> Any:
        return await self.request("POST", path, json)

    async def patch(self, path: str, json: Any = None) -> Any:
        return await self.request("PATCH", path, json)

    async def put(self, path: str, json: Any = None) -> Any:
        return await self.request("PUT", path, json)

    async def delete(self, path: str) -> Any:
        return await self.request("DELETE", path)

    # Files (docs/protocol.md §12.10): the body is the bytes, not JSON.

    async def upload(self, data: Any, name: str | None = None, content_type: str | None = None) -> dict:
        """Upload `data` (bytes, or an async iterable of bytes to stream); returns the file object."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if content_type:
            headers["Content-Type"] = content_type
        params = {"name": name} if name is not None else None
        async with self._http().post(self.base_url + "/api/files", data=data, params=params, headers=headers) as resp:
            return await self._answer(resp)

    async def download(self, file_id: str, *, thumb: bool = False, headers: dict[str, str] | None = None):
        """`(status, headers, body)` of `GET /api/files/{id}` (or its `/thumb`), whatever the status."""
        sent = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        sent.update(headers or {})
        path = f"/api/files/{file_id}" + ("/thumb" if thumb else "")
        async with self._http().get(self.base_url + path, headers=sent) as resp:
            return resp.status, resp.headers, await resp.read()

    # Conveniences for the calls every test and bot starts with.

    async def register(self, name: str, password: str, display: str | None = None) -> dict:
        """Create a user; returns the user object."""
        body = {"name": name, "password": password}
        if display is not None:
            body["display"] = display
        return await self.post("/api/users", body)

    async def login(self, name: str, password: str) -> str:
        """A new token for the user (this client keeps its own token; see `as_user`)."""
        return (await self.post("/api/tokens", {"name": name, "password": password}))["token"]

    async def create_room(
        self, name: str, join_policy: str = "invite", topic: str | None = None
    ) -> dict:
        body = {"name": name, "join_policy": join_policy}
        if topic is not None:
            body["topic"] = topic
        return await self.post("/api/rooms", body)

    async def add_member(self, room_id: str, user_id: str) -> dict:
        return await self.post(f"/api/rooms/{room_id}/members", {"user_id": user_id})
