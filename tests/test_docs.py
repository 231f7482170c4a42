"""docs/protocol.md stays true to the code, and no file of the repository points outside it.

Pure: reads files, no sockets. The conventions it checks are written down in
docs/protocol.md §1.2; adding a frame or a code means adding a row there:

- a table whose first column is headed `client op`, `server op`, `error code`,
  `close code` or `system type` documents, in each row's first cell, one value in
  backticks (a `system type` row also names each field of its payload in backticks);
- a fenced block marked `json client` / `json server` holds example frames (one
  or more), each decoded with the real codec of the receiving side, in JSON and
  in msgpack; frames in `json client refused` blocks must fail to decode;
  `json http` blocks hold plain JSON bodies.
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import pytest
from markdown_it import MarkdownIt

from chatserver.announcements import PAYLOADS
from chatserver.errors import HTTP_STATUS
from client_proto import frames
from client_proto.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, client_codec, server_codec
from client_proto.errors import CloseCode, ErrorCode, FrameError

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_DOC = ROOT / "docs" / "protocol.md"
DOC = "docs/protocol.md"

# Closes the WebSocket layer (aiohttp) sends for RFC 6455 violations, below the chat protocol.
WEBSOCKET_LAYER_CLOSES = {"1002", "1007"}
# Error codes that exist over HTTP only (chatserver/errors.py).
HTTP_ONLY_CODES = {str(code) for code in HTTP_STATUS} - {code.value for code in ErrorCode}
EXAMPLE_MARKS = [["json", "client"], ["json", "server"], ["json", "client", "refused"], ["json", "http"]]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


@cache
def _tokens(path: Path) -> list:
    return _markdown().parse(path.read_text())


@cache
def _tables(path: Path) -> list[tuple[list[str], list[tuple[int, list[str]]]]]:
    """Each pipe table as (header cells, [(line, row cells)]), cells as raw markdown."""
    tables = []
    header: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    row: list[str] = []
    line = 0
    section = None
    for token in _tokens(path):
        if token.type == "thead_open":
            section, header, rows = "head", [], []
        elif token.type == "tbody_open":
            section = "body"
        elif token.type == "tr_open":
            row, line = [], token.map[0] + 1
        elif token.type == "inline" and section is not None:
            row.append(token.content.strip())
        elif token.type == "tr_close":
            if section == "head":
                header = row
            else:
                rows.append((line, row))
        elif token.type == "table_close":
            tables.append((header, rows))
            section = None
    return tables


def documented(first_header: str) -> dict[str, int]:
    """The values in backticks that open the rows of every table headed `first_header`, with their lines."""
    return {value: line for value, (line, _) in documented_rows(first_header).items()}


def documented_rows(first_header: str) -> dict[str, tuple[int, list[str]]]:
    """Like `documented`, with each row's cells."""
    found: dict[str, tuple[int, list[str]]] = {}
    for header, rows in _tables(PROTOCOL_DOC):
        if not header or header[0] != first_header:
            continue
        for line, cells in rows:
            match = re.fullmatch(r"`([^`]+)`", cells[0])
            assert match, (
                f"{DOC} line {line}: a row of a `{first_header}` table must start with the value in backticks, "
                f"found {cells[0]!r}"
            )
            found[match.group(1)] = (line, cells)
    return found


def _describe(missing: set[str], what: str, table: str) -> str:
    return f"{what} not documented in {DOC}: {sorted(missing)}; add a row to a `{table}` table for each"


# ------------------------------------------------------------------------------- frames and codes


def test_every_client_op_is_documented():
    ops = documented("client op")
    assert not frames.CLIENT_OPS - ops.keys(), _describe(
        frames.CLIENT_OPS - ops.keys(), "client ops of client_proto/frames.py (ClientFrame)", "client op")
    stale = {op: line for op, line in ops.items() if op not in frames.CLIENT_OPS}
    assert not stale, f"{DOC} documents client ops that client_proto/frames.py does not have (op: line): {stale}"


def test_every_server_op_is_documented():
    ops = documented("server op")
    assert not frames.SERVER_OPS - ops.keys(), _describe(
        frames.SERVER_OPS - ops.keys(), "server ops of client_proto/frames.py (ServerFrame)", "server op")
    stale = {op: line for op, line in ops.items() if op not in frames.SERVER_OPS}
    assert not stale, f"{DOC} documents server ops that client_proto/frames.py does not have (op: line): {stale}"


def test_every_error_code_is_documented():
    codes = documented("error code")
    known = {code.value for code in ErrorCode} | HTTP_ONLY_CODES
    missing = known - codes.keys()
    assert not missing, _describe(missing, "error codes of client_proto/errors.py (ErrorCode)", "error code")
    stale = {code: line for code, line in codes.items() if code not in known}
    assert not stale, f"{DOC} documents error codes the code does not have (code: line): {stale}"


def test_every_close_code_is_documented():
    codes = documented("close code")
    known = {str(code.value) for code in CloseCode}
    missing = known - codes.keys()
    assert not missing, _describe(missing, "close codes of client_proto/errors.py (CloseCode)", "close code")
    stale = {code: line for code, line in codes.items() if code not in known | WEBSOCKET_LAYER_CLOSES}
    assert not stale, f"{DOC} documents close codes the server never sends (code: line): {stale}"


def test_every_system_type_is_documented_with_its_fields():
    rows = documented_rows("system type")
    missing = PAYLOADS.keys() - rows.keys()
    assert not missing, _describe(missing, "system types of chatserver/announcements.py (PAYLOADS)", "system type")
    stale = {name: line for name, (line, _) in rows.items() if name not in PAYLOADS}
    assert not stale, f"{DOC} documents system types chatserver/announcements.py does not have: {stale}"
    unnamed = {}
    for name, payload in PAYLOADS.items():
        line, cells = rows[name]
        fields = [field.encode_name for field in msgspec.structs.fields(payload)]
        absent = [field for field in fields if f"`{field}`" not in " ".join(cells[1:])]
        if absent:
            unnamed[f"{name} (line {line})"] = absent
    assert not unnamed, f"{DOC}: `system type` rows that do not name these payload fields in backticks: {unnamed}"


# ------------------------------------------------------------------------------- example frames


def examples(role: str, *, refused: bool = False) -> list[tuple[int, object]]:
    """(line, value) of every JSON value in the fenced blocks marked `json <role>` (`json <role> refused`)."""
    found = []
    decoder = json.JSONDecoder()
    for token in _tokens(PROTOCOL_DOC):
        if token.type != "fence" or token.info.split() != ["json", role] + (["refused"] if refused else []):
            continue
        text, pos = token.content, 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos == len(text):
                break
            start = token.map[0] + 2 + text.count("\n", 0, pos)
            try:
                value, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                pytest.fail(f"{DOC} line {start}: a `json {role}` block is not JSON: {exc}")
            found.append((start, value))
    return found


def test_every_json_block_says_whose_it_is():
    unmarked = [
        (token.map[0] + 1, token.info)
        for token in _tokens(PROTOCOL_DOC)
        if token.type == "fence" and token.info.split()[:1] == ["json"]
        and token.info.split() not in EXAMPLE_MARKS
    ]
    assert not unmarked, (
        f"{DOC}: mark each ```json block `json client`, `json server`, `json client refused` or `json http` "
        f"(line, info): {unmarked}"
    )


def test_there_are_examples_of_both_sides():
    assert examples("client") and examples("server"), f"{DOC} has no `json client` or no `json server` examples"
    examples("http")  # parses


@pytest.mark.parametrize("subprotocol", [JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL])
@pytest.mark.parametrize("role", ["client", "server"])
def test_every_example_frame_decodes_with_the_real_codec(role, subprotocol):
    """Client frames as the server decodes them, server frames as a client does."""
    codec = (server_codec if role == "client" else client_codec)(subprotocol)
    failures = []
    for line, value in examples(role):
        data = msgspec.msgpack.encode(value) if codec.binary else json.dumps(value).encode()
        try:
            codec.decode(data)
        except FrameError as exc:
            op = value.get("op") if isinstance(value, dict) else None
            failures.append(f"line {line}: {op!r}: {exc.code} {exc.message}")
    assert not failures, f"{DOC}: `json {role}` examples that do not decode ({subprotocol}):\n" + "\n".join(failures)


@pytest.mark.parametrize("subprotocol", [JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL])
def test_every_refused_example_is_refused_by_the_codec(subprotocol):
    codec = server_codec(subprotocol)
    decoded = []
    for line, value in examples("client", refused=True):
        data = msgspec.msgpack.encode(value) if codec.binary else json.dumps(value).encode()
        try:
            codec.decode(data)
        except FrameError:
            continue
        decoded.append(f"line {line}: {value!r}")
    assert not decoded, f"{DOC}: `json client refused` examples that decode after all ({subprotocol}):\n" + (
        "\n".join(decoded))


# ------------------------------------------------------------------------------- nothing points outside


@cache
def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout ({exc}): cannot list the tracked files")
    return [ROOT / name for name in out.decode().split("\0") if name]


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return None  # binary, or deleted but not yet committed


# What points at documents outside the repository: the shared folder beside it, and the
# contract and design notes that live there. The repository's own copies are docs/*.md.
OUTSIDE = re.compile(r"\.\./shared|\bPROTOCOL(?:\.md)?\b(?!_)|\bDESIGN\.md\b|\bDESIGN:")


def test_no_file_refers_outside_the_repository():
    hits = []
    for path in tracked_files():
        if path == Path(__file__).resolve():
            continue  # this file names what it looks for
        text = _text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if match := OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)!r}")
    assert not hits, (
        "cite docs/protocol.md §N (or docs/architecture.md) instead of documents outside the repository:\n"
        + "\n".join(hits)
    )


def _links(path: Path) -> list[tuple[int, str]]:
    found = []
    for token in _markdown().parse(path.read_text()):
        for child in token.children or ():
            target = child.attrGet("href") if child.type == "link_open" else child.attrGet("src")
            if child.type in ("link_open", "image") and target:
                found.append((token.map[0] + 1, target))
    return found


CITATION = re.compile(r"docs/(protocol|architecture)\.md (§[\d.]*\d(?:(?:, | and |-|–)§[\d.]*\d)*)")


@cache
def _sections(name: str) -> set[str]:
    """What docs/<name>.md lets code cite: its numbered headings ("## 4. …" is 4, "### 4.2 …" is
    4.2) and the items of a numbered list right under a "## N." heading (its third item is N.3)."""
    sections: set[str] = set()
    tokens = _tokens(ROOT / "docs" / f"{name}.md")
    current, in_subsection, item, ordered = None, False, 0, False
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            match = re.match(r"(\d+(?:\.\d+)*)\.? ", tokens[i + 1].content)
            number = match.group(1) if match else None
            if number:
                sections.add(number)
            if token.tag == "h2":
                current, in_subsection = number, False
            elif token.tag != "h1":
                in_subsection = True
        elif token.type in ("ordered_list_open", "bullet_list_open") and token.level == 0:
            ordered = token.type == "ordered_list_open"
            item = int(token.attrGet("start") or 1) - 1
        elif token.type == "list_item_open" and token.level == 1 and ordered and current and not in_subsection:
            item += 1
            sections.add(f"{current}.{item}")
    return sections


def test_every_citation_names_a_section_that_exists():
    wrong = []
    for path in tracked_files():
        text = _text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for doc, refs in CITATION.findall(line):
                for ref in re.findall(r"§([\d.]*\d)", refs):
                    if ref not in _sections(doc):
                        wrong.append(f"{path.relative_to(ROOT)}:{number}: docs/{doc}.md §{ref}")
    assert not wrong, "citations of sections that do not exist:\n" + "\n".join(wrong)


def test_markdown_links_stay_inside_the_repository():
    bad = []
    for path in tracked_files():
        if path.suffix != ".md" or not path.exists():
            continue
        for line, target in _links(path):
            where = f"{path.relative_to(ROOT)}:{line}: {target}"
            url = urlsplit(target)
            if url.scheme:
                if url.scheme not in ("http", "https") or url.hostname not in LOCAL_HOSTS:
                    bad.append(f"{where} (a link to another site)")
                continue
            if not url.path:
                continue  # an anchor in the same file
            resolved = (path.parent / url.path).resolve()
            if not resolved.is_relative_to(ROOT):
                bad.append(f"{where} (outside the repository)")
            elif not resolved.exists():
                bad.append(f"{where} (no such file)")
    assert not bad, "markdown links must stay inside the repository:\n" + "\n".join(bad)


def test_the_readme_leads_to_the_docs():
    targets = {target for _, target in _links(ROOT / "README.md")}
    missing = {"docs/protocol.md", "docs/architecture.md", "docs/performance.md"} - targets
    assert not missing, f"README.md should link {sorted(missing)}"
