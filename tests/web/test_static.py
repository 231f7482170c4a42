"""The page's files, read as text (no browser): nothing that parses HTML from data, nothing
inline that the Content-Security-Policy would refuse, and every module import resolves."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from chatserver.app import WEB_DIR

SCRIPTS = sorted((WEB_DIR / "js").rglob("*.js"))
HTML_SINKS = re.compile(r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(|"
                        r"createContextualFragment|DOMParser")


def test_no_script_builds_html_from_strings():
    assert SCRIPTS, "the page's modules are missing"
    offenders = [f"{path.name}:{n}: {line.strip()}"
                 for path in SCRIPTS
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if HTML_SINKS.search(line) and not line.strip().startswith("//")]
    assert not offenders, "data must reach the page as text only:\n" + "\n".join(offenders)


def test_index_has_nothing_inline():
    html = (WEB_DIR / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline <script>"
    assert "<style" not in html and " style=" not in html, "inline CSS"
    assert not re.search(r"\son[a-z]+=", html), "an inline event handler"
    assert '<script type="module" src="/static/js/main.js">' in html


def test_every_import_resolves():
    for path in SCRIPTS:
        for target in re.findall(r'^import .* from "(\.[^"]+)";$', path.read_text(), re.M):
            assert (path.parent / target).resolve().is_file(), f"{path.name} imports missing {target}"


@pytest.mark.skipif(shutil.which("node") is None, reason="no node to check the modules' syntax with")
def test_modules_parse(tmp_path):
    # node --check parses a file as a module only with the .mjs suffix.
    for path in SCRIPTS:
        copy = tmp_path / f"{path.stem}.mjs"
        copy.write_text(path.read_text())
        result = subprocess.run(["node", "--check", str(copy)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{path.name}: {result.stderr}"
