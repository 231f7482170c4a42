"""Personal spaces, blog posts and the personal feed over HTTP (docs/protocol.md §12.8).

Titles and bodies are stored and returned exactly as written: JSON text,
never HTML. Clients escape them at display (the bundled web page uses
`textContent`), so nothing in a post can run in anyone's browser.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta

from client_proto.frames import FileIds
from storage import records

from .. import keys
from ..alumni_views import feed_entry_json, record_json
from ..services.alumni import parse_feed_cursor
from ..services.posts import MAX_BODY, MAX_RECORDS, MAX_TITLE, Cursor, feed_key, summary
from ..views import user_json
from .alumni import RECORD
from .body import current_user, json_response, no_content, parse, query_int
from .routes import Route

# ---------------------------------------------------------------------------- bodies

Title = Annotated[str, Meta(max_length=MAX_TITLE)]
Body = Annotated[str, Meta(max_length=MAX_BODY)]
RecordIds = Annotated[list[Annotated[str, Meta(min_length=1, max_length=64)]], Meta(max_length=MAX_RECORDS)]


class NewPost(msgspec.Struct, frozen=True):
    title: Title
    body: Body
    alumni_ids: RecordIds | None = None
    files: FileIds | None = None


class NewRecordPost(msgspec.Struct, frozen=True):
    title: Title
    body: Body
    files: FileIds | None = None


class NewComment(msgspec.Struct, frozen=True):
    text: str
    reply_to: Annotated[str, Meta(max_length=64)] | None = None


class PostChanges(msgspec.Struct, frozen=True):
    """What to change; a field left out (or null) is kept. `alumni_ids` is the whole new list."""

    title: Title | None = None
    body: Body | None = None
    alumni_ids: RecordIds | None = None
    files: FileIds | None = None  # the whole new list


# ---------------------------------------------------------------------------- views


def post_json(post: records.Post) -> dict[str, Any]:
    return {
        "id": post.id,
        "author": user_json(post.author),
        "title": post.title,
        "body": post.body,
        "created": post.created,
        "updated": post.updated,
        "alumni_ids": list(post.alumni_ids),
        "files": post.files or [],
        "likes": post.likes,
        "liked": post.liked,
        "comments": post.comments,
    }


def comment_json(comment: records.Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "post": comment.post_id,
        "author": user_json(comment.author),
        "text": comment.text,
        "reply_to": comment.reply_to,
        "created": comment.created,
    }


def feed_item_json(item: records.FeedEntry | records.Post) -> dict[str, Any]:
    """A record's entry as the record feed shows it; an own post as a `post` entry of no record."""
    if isinstance(item, records.FeedEntry):
        return feed_entry_json(item)
    return {
        "id": item.id,
        "ts": item.created,
        "type": "post",
        "actor": user_json(item.author),
        "data": {"post": summary(item)},
        "record": None,
    }


def cursor(key: Cursor | None) -> str | None:
    """The opaque `next` for a page ending at `key`: the same form as the record feed's cursor."""
    return None if key is None else f"{key[0]}.{key[1]}"


def _page(request: web.Request) -> dict[str, Any]:
    return {
        "before": parse_feed_cursor(request.query.get("before")),
        "limit": query_int(request, "limit", default=50, low=1, high=100),
    }


def _paged(items: list, more: bool, key, render) -> dict[str, Any]:
    return {"items": [render(i) for i in items], "next": cursor(key(items[-1])) if more else None}


def _post_key(post: records.Post) -> Cursor:
    return (post.created, post.id)


def _comment_key(comment: records.Comment) -> Cursor:
    return (comment.created, comment.id)


# ---------------------------------------------------------------------------- handlers


async def create_post(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, NewPost)
    post = await request.app[keys.POSTS].create(user, body.title, body.body, body.alumni_ids, body.files)
    return json_response(post_json(post), 201)


async def create_record_post(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, NewRecordPost)
    post = await request.app[keys.POSTS].create_in_record(
        user, request.match_info["record_id"], body.title, body.body, body.files
    )
    return json_response(post_json(post), 201)


async def get_post(request: web.Request) -> web.Response:
    user = await current_user(request)
    return json_response(post_json(await request.app[keys.POSTS].get(user, request.match_info["post_id"])))


async def update_post(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, PostChanges)
    post = await request.app[keys.POSTS].update(
        user, request.match_info["post_id"], title=body.title, body=body.body, alumni_ids=body.alumni_ids,
        files=body.files,
    )
    return json_response(post_json(post))


async def delete_post(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.POSTS].delete(user, request.match_info["post_id"])
    return no_content()


async def record_posts(request: web.Request) -> web.Response:
    user = await current_user(request)
    posts, more = await request.app[keys.POSTS].in_record(user, request.match_info["record_id"], **_page(request))
    return json_response(_paged(posts, more, _post_key, post_json))


async def space(request: web.Request) -> web.Response:
    user = await current_user(request)
    found = await request.app[keys.POSTS].space(user, request.match_info["user_id"], **_page(request))
    return json_response({
        "user": user_json(found.user),
        "posts": [post_json(p) for p in found.posts],
        "alumni": [record_json(record, owner) for record, owner in found.records],
        "next": cursor(_post_key(found.posts[-1])) if found.more else None,
    })


async def my_feed(request: web.Request) -> web.Response:
    user = await current_user(request)
    items, more = await request.app[keys.POSTS].feed(user, **_page(request))
    return json_response(_paged(items, more, feed_key, feed_item_json))


# ---------------------------------------------------------------------------- routes

_USER = {"$ref": "#/components/schemas/User"}
POST = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "author": _USER, "title": {"type": "string"}, "body": {"type": "string"},
        "created": {"type": "integer"}, "updated": {"type": "integer"},
        "alumni_ids": {"type": "array", "items": {"type": "string"}},
        "likes": {"type": "integer"}, "liked": {"type": "boolean"}, "comments": {"type": "integer"},
        "files": {"type": "array", "items": {"type": "object"}},
    },
}
FEED_ITEM = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "ts": {"type": "integer"},
        "type": {"type": "string", "enum": ["joined", "profile", "post", "bound"]},
        "actor": _USER, "data": {"type": "object"},
        "record": {"type": "string", "nullable": True, "description": "null for the caller's own post"},
    },
}
NEXT = {"type": "string", "nullable": True, "description": "pass back as `before` for the next page"}


def _paged_schema(item: dict) -> dict:
    return {"type": "object", "properties": {"items": {"type": "array", "items": item}, "next": NEXT}}


async def like_post(request: web.Request) -> web.Response:
    user = await current_user(request)
    count = await request.app[keys.POSTS].like(user, request.match_info["post_id"])
    return json_response({"count": count, "liked": True})


async def unlike_post(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.POSTS].unlike(user, request.match_info["post_id"])
    return no_content()


async def add_comment(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, NewComment)
    comment = await request.app[keys.POSTS].comment(user, request.match_info["post_id"], body.text, body.reply_to)
    return json_response(comment_json(comment), 201)


async def list_comments(request: web.Request) -> web.Response:
    """Like history: the first page holds the newest, each page oldest first, `next` leads to older ones."""
    user = await current_user(request)
    found, more = await request.app[keys.POSTS].comments(user, request.match_info["post_id"], **_page(request))
    # The page is oldest first: the cursor is its first (oldest) comment.
    return json_response(
        {"items": [comment_json(c) for c in found], "next": cursor(_comment_key(found[0])) if more else None}
    )


async def delete_comment(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.POSTS].delete_comment(user, request.match_info["post_id"], request.match_info["comment_id"])
    return no_content()


COMMENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "post": {"type": "string"}, "author": _USER, "text": {"type": "string"},
        "reply_to": {"type": "string", "nullable": True}, "created": {"type": "integer"},
    },
}
PAGED = ("before:string", "limit")  # `before`: the `next` of the previous page
POST_PATH = "/api/posts/{post_id}"
TAGS = ("posts",)
ROUTES = [
    Route("POST", "/api/posts", create_post, "Write a post in the caller's space, published to `alumni_ids`",
          NewPost, 201, POST, tags=TAGS),
    Route("GET", POST_PATH, get_post, "A post (its author, or members of a record it is published to)",
          response=POST, tags=TAGS),
    Route("PATCH", POST_PATH, update_post, "Change a post everywhere it shows (author)", PostChanges,
          response=POST, tags=TAGS),
    Route("DELETE", POST_PATH, delete_post, "Delete a post everywhere (author)", status=204, tags=TAGS),
    Route("PUT", f"{POST_PATH}/likes/me", like_post, "Like a post (anyone who may read it)",
          response={"type": "object", "properties": {"count": {"type": "integer"}, "liked": {"type": "boolean"}}},
          tags=TAGS),
    Route("DELETE", f"{POST_PATH}/likes/me", unlike_post, "Take back one's like", status=204, tags=TAGS),
    Route("POST", f"{POST_PATH}/comments", add_comment, "Comment on a post (anyone who may read it)", NewComment,
          201, COMMENT, tags=TAGS),
    Route("GET", f"{POST_PATH}/comments", list_comments,
          "Comments: the newest first page, oldest first within a page; `next` leads to older ones",
          response=_paged_schema(COMMENT), query=PAGED, tags=TAGS),
    Route("DELETE", f"{POST_PATH}/comments/{{comment_id}}", delete_comment,
          "Delete a comment (its author or the post's)", status=204, tags=TAGS),
    Route("POST", "/api/alumni/{record_id}/posts", create_record_post,
          "Write a post from a record (members); it shows in the author's space too", NewRecordPost, 201, POST,
          tags=TAGS),
    Route("GET", "/api/alumni/{record_id}/posts", record_posts, "A record's posts, newest first (members)",
          response=_paged_schema(POST), query=PAGED, tags=TAGS),
    Route("GET", "/api/users/{user_id}/space", space,
          "A user's space: the user, their posts the caller may read (newest first), their records",
          response={"type": "object", "properties": {
              "user": _USER, "posts": {"type": "array", "items": POST},
              "alumni": {"type": "array", "items": RECORD}, "next": NEXT}},
          query=PAGED, tags=TAGS),
    Route("GET", "/api/me/feed", my_feed,
          "The activity of the caller's records and their own posts, newest first",
          response=_paged_schema(FEED_ITEM), query=PAGED, tags=TAGS),
]
