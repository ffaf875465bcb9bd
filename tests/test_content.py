"""Which answers are readable pages: no real page is misjudged, bad bodies are named."""

from __future__ import annotations

import gzip
import json
import random
import zlib
from pathlib import Path

import pytest

from evidence.content import (binary_kind, challenge_reason, compressed_stream_problem, drew_nothing,
                              unreadable_reason)
from evidence.judgement import http_status_kind
from vocabulary import BLOCKED_STATUSES, DOWN_STATUSES, NOTHING_SHOWN_STATUSES
from evidence import Page
from tests.hostile.cases import JSL, PNG, RUISHU

ROOT = Path(__file__).resolve().parents[1]
REAL_PAGES = ROOT.parent / "shared" / "realpages"


def _page(body: bytes, content_type: str | None = "text/html") -> Page:
    return Page.from_bytes("http://127.0.0.9/", body, content_type=content_type)


def _project_pages() -> list[Path]:
    corpus = sorted((ROOT / "tests" / "evidence" / "corpus" / "pages").glob("*"))
    sandbox = sorted((ROOT / "sandbox" / "sites").rglob("*.html"))
    return corpus + sandbox


@pytest.mark.parametrize("path", _project_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_project_pages_are_readable(path: Path):
    body = path.read_bytes()
    page = _page(body)
    assert unreadable_reason(body, page) is None
    assert challenge_reason(body, page) is None


def test_real_pages_are_readable():
    if not (REAL_PAGES / "labels.json").is_file():
        pytest.skip("the shared real pages are not here")
    entries = json.loads((REAL_PAGES / "labels.json").read_text(encoding="utf-8"))
    assert entries
    for entry in entries:
        body = (REAL_PAGES / entry["file"]).read_bytes()
        page = _page(body, f"text/html; charset={entry.get('charset_declared') or 'utf-8'}")
        assert unreadable_reason(body, page) is None, entry["file"]
        assert challenge_reason(body, page) is None, entry["file"]


@pytest.mark.parametrize("body, content_type, words", [
    (random.Random(7).randbytes(20_000), "text/html", "control or undecodable"),
    (random.Random(7).randbytes(20_000), "text/html; charset=iso-8859-1", "control or undecodable"),
    (random.Random(7).randbytes(20_000), "text/html; charset=gbk", "control or undecodable"),
    (b"\x00" * 4096, "text/html", "control or undecodable"),
    (PNG, "text/html", "PNG image"),
    (gzip.compress(b"<html><body>x</body></html>", mtime=0), "text/html", "gzip stream"),
    ("系统维护中，请稍后访问".encode("utf-8"), "text/html; charset=utf-8", "no markup"),
    (("<html><body>" + "<div>" * 5000 + "x" + "</div>" * 5000 + "</body></html>").encode(), "text/html",
     "parser kept"),
])
def test_unreadable_bodies_are_named(body: bytes, content_type: str, words: str):
    reason = unreadable_reason(body, _page(body, content_type))
    assert reason and words in reason


def test_binary_kinds():
    assert binary_kind(b"%PDF-1.7\n...") == "PDF document"
    assert binary_kind(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "RIFF WEBP media"
    assert binary_kind(b"<!DOCTYPE html>") is None


@pytest.mark.parametrize("script", [JSL, RUISHU, 'document.cookie="a=b";location.reload()'])
def test_challenges_are_recognised(script: str):
    body = f"<html><head></head><body><script>{script}</script></body></html>".encode()
    assert "cookie" in challenge_reason(body, _page(body))


def test_script_shells_and_redirects_are_not_challenges():
    for body in (b'<html><body><div id="app"></div><script src="/app.js"></script></body></html>',
                 b'<html><body><script>location.href="/main.html"</script></body></html>',
                 b'<html><body><script>document.cookie="x=1"</script><p>' + "正文".encode() * 40 + b"</p></body></html>"):
        assert challenge_reason(body, _page(body)) is None


def test_rendered_nothing():
    assert drew_nothing(_page(b"<html><head></head><body></body></html>"))
    assert drew_nothing(_page(b"<html><body><script>1</script></body></html>"))
    assert not drew_nothing(_page(b'<html><body><div id="app"><img src="a.png"></div></body></html>'))


def test_compressed_streams():
    data = b"<html>" + bytes(random.Random(3).randbytes(50_000)).hex().encode() + b"</html>"
    whole = gzip.compress(data)
    assert compressed_stream_problem(whole, "gzip") is None
    assert "ends early" in compressed_stream_problem(whole[: len(whole) // 2], "gzip")
    assert "corrupt" in compressed_stream_problem(b"not gzip at all", "gzip")
    assert compressed_stream_problem(zlib.compress(data), "deflate") is None
    assert compressed_stream_problem(zlib.compress(data)[2:-4], "deflate") is None  # raw deflate
    assert compressed_stream_problem(b"anything", "identity") is None
    brotli = pytest.importorskip("brotli")
    packed = brotli.compress(data)
    assert compressed_stream_problem(packed, "br") is None
    assert "ends early" in compressed_stream_problem(packed[: len(packed) // 2], "br")


@pytest.mark.parametrize("code, status", [
    (200, "ok"), (204, "empty"), (205, "empty"), (301, "refused_redirect"), (302, "refused_redirect"),
    (300, "refused_redirect"), (304, "not_modified"), (401, "blocked"), (403, "blocked"), (404, "http_error"),
    (412, "challenge"), (429, "blocked"), (500, "server_error"), (521, "server_error"),
])
def test_http_status_kind(code: int, status: str):
    assert http_status_kind(code) == status


def test_new_statuses_do_not_say_the_site_is_down():
    for status in ("empty", "not_modified", "refused_redirect", "unreadable", "truncated", "challenge"):
        assert status not in DOWN_STATUSES
        assert status in BLOCKED_STATUSES | NOTHING_SHOWN_STATUSES
