"""Is an answer a document a visitor could read? Checks on the bytes and on the parsed page.

A page that is not readable must never be scored: the detectors would find nothing on it
and every indicator would come out ``absent``. The checks here say why a body is not a page:

- ``empty``: no bytes, or only whitespace;
- ``unreadable``, any of
  - the body starts with the magic number of a binary format (image, archive, compressed
    stream that was not decoded, PDF, executable, font, media);
  - after decoding, more than ``GARBAGE_SHARE`` of the non-whitespace characters are control
    characters or U+FFFD replacement characters (no real page measured has a single one;
    random bytes decode to about a half, or a quarter as Latin-1);
  - the text has no markup at all (not one tag);
  - the HTML parser kept less than half of the elements the text opens (libxml2 stops at a
    nesting depth of 256, dropping everything below, footers included): what the detectors
    would see is not the page;
- ``challenge``: an anti-bot interstitial — a small page with next to no visible text whose
  scripts set a cookie and load the page again (jiasule ``__jsl_clearance``, Ruishu ``$_ts``,
  Aliyun ``acw_sc__v2`` and the like) — instead of the page.

The functions are pure (bytes or a parsed ``Page`` in, a reason out) so they can be tested on
real pages, and so the crawl and ``govevidence judge`` (over archived bytes) ask the same ones.
"""

from __future__ import annotations

import re
import zlib

from lxml import etree

from .page import Page

# Share of control / replacement characters above which decoded text is garbage.
GARBAGE_SHARE = 0.10
# The parser must keep at least this share of the elements the source text opens ...
PARSE_KEPT_SHARE = 0.5
# ... unless it lost fewer than this many (a few stray tags in odd places are normal).
PARSE_LOSS_MIN = 200
# A challenge page is small and shows (almost) nothing.
CHALLENGE_MAX_BYTES = 64 * 1024
CHALLENGE_MAX_VISIBLE_CHARS = 40

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
    (b"\x00\x00\x01\x00", "ICO image"),
    (b"%PDF-", "PDF document"),
    (b"PK\x03\x04", "ZIP archive (or an Office document)"),
    (b"PK\x05\x06", "ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE document (old Office format)"),
    (b"\x1f\x8b", "gzip stream that was not decoded"),
    (b"\x28\xb5\x2f\xfd", "zstd stream that was not decoded"),
    (b"BZh", "bzip2 stream"),
    (b"\xfd7zXZ\x00", "xz stream"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"\x7fELF", "ELF executable"),
    (b"MZ\x90\x00", "Windows executable"),
    (b"\x00asm", "WebAssembly module"),
    (b"wOFF", "WOFF font"),
    (b"wOF2", "WOFF2 font"),
    (b"OggS", "Ogg media"),
    (b"ID3", "MP3 audio"),
    (b"fLaC", "FLAC audio"),
    (b"\x1aE\xdf\xa3", "Matroska/WebM media"),
)

_MARKUP = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9-]*[\s/>]|!--|!doctype|\?xml)", re.I)
_START_TAG = re.compile(r"<[a-zA-Z][a-zA-Z0-9]*")
_RAW_TEXT = re.compile(r"(?is)<(script|style|textarea|xmp|template)\b.*?</\1\s*>|<!--.*?-->")
_COOKIE_SET = re.compile(r"document\s*\.\s*cookie\s*=|\$_ts\s*=|__jsl_clearance|acw_sc__v2|\bsetCookie\s*\(", re.I)
_RELOAD = re.compile(
    r"location\s*\.\s*(?:reload|replace|assign)\s*\(|location(?:\s*\.\s*href)?\s*=[^=]|"
    r"\.submit\s*\(|http-equiv\s*=\s*['\"]?refresh|\$_ts\s*=", re.I)


def binary_kind(body: bytes) -> str | None:
    """The binary format a body starts with, or None."""
    head = body[:16]
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head.startswith(b"RIFF") and body[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return f"RIFF {body[8:12].decode('latin-1').strip()} media"
    if body[4:8] == b"ftyp":
        return "MP4/ISO media"
    return None


def is_blank(body: bytes) -> bool:
    return not body.strip()


_GARBAGE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")
_C1 = re.compile("[\x80-\x9f]")
_SPACE = re.compile(r"\s+")
# Bytes that are C0 controls (not whitespace) or DEL: they stand for themselves in every
# ASCII-compatible charset (never inside a UTF-8 or GB multi-byte sequence).
_C0_BYTES = bytes([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F])
_NOT_C0 = bytes(b for b in range(256) if b not in _C0_BYTES)


def _garbage_share(body: bytes, text: str, encoding: str) -> float:
    """Share of control characters (C0 but whitespace, DEL, C1) and U+FFFD among the
    non-whitespace characters of the decoded text. Counted on the bytes where that is the
    same and faster (real pages have none, so the common case is a few C-speed passes)."""
    name = encoding.lower().replace("_", "-")
    if name.startswith(("utf-16", "utf-32")):
        garbage = len(_GARBAGE.findall(text))
    else:
        garbage = len(body.translate(None, _NOT_C0)) + text.count("\ufffd")
        # C1 controls come from single-byte charsets (Latin-1 maps every byte to a character).
        if not name.startswith(("utf", "gb", "big5", "hz", "euc", "shift", "cp936", "cp950")) and _C1.search(text):
            garbage += len(_C1.findall(text))
    if not garbage:
        return 0.0
    visible = len(_SPACE.sub("", text))
    return min(1.0, garbage / visible) if visible else 1.0


def unreadable_reason(body: bytes, page: Page) -> str | None:
    """Why the body is not a readable document, or None when it is one."""
    kind = binary_kind(body)
    if kind:
        return f"binary content: {kind}"
    share = _garbage_share(body, page.text, page.encoding)
    if share > GARBAGE_SHARE:
        return f"{share:.0%} of the characters are control or undecodable characters (decoded as {page.encoding})"
    if not _MARKUP.search(page.text):
        return "no markup: not one HTML tag"
    kept = sum(1 for _ in page.tree.iter(etree.Element))
    # Cheap upper bounds of the tags the text opens first; script text is only cut out
    # (slow on big inline scripts) when they cannot settle it.
    for bound in (lambda: page.text.count("<"), lambda: len(_START_TAG.findall(page.text))):
        upper = bound()
        if upper - kept < PARSE_LOSS_MIN or kept >= PARSE_KEPT_SHARE * upper:
            return None
    opened = len(_START_TAG.findall(_RAW_TEXT.sub("", page.text)))
    if opened - kept >= PARSE_LOSS_MIN and kept < PARSE_KEPT_SHARE * opened:
        return f"the HTML parser kept {kept} of {opened} elements (nesting too deep or markup too broken)"
    return None


def visible_text(page: Page) -> str:
    parts = page.tree.xpath(
        "//body//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::noscript)"
        " and not(ancestor::template)]")
    return " ".join(" ".join(parts).split())


_NO_TEXT_TAGS = frozenset({"script", "style", "noscript", "template"})


def _shows_more_than(page: Page, limit: int) -> bool:
    """Whether the body's text outside scripts and styles is longer than ``limit`` characters."""
    body = page.tree.find("body")
    if body is None:
        return False
    seen = 0
    for el in body.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag not in _NO_TEXT_TAGS and not any(a.tag in _NO_TEXT_TAGS for a in el.iterancestors()):
            seen += len("".join((el.text or "").split()))
        if el is not body and not any(a.tag in _NO_TEXT_TAGS for a in el.iterancestors()):
            seen += len("".join((el.tail or "").split()))
        if seen > limit:
            return True
    return False


def challenge_reason(body: bytes, page: Page) -> str | None:
    """Why the page is an anti-bot challenge rather than the site's page, or None."""
    if len(body) > CHALLENGE_MAX_BYTES:
        return None
    lowered = body.lower()
    if b"cookie" not in lowered and b"$_ts" not in lowered and b"acw_sc__v2" not in lowered:
        return None
    if _shows_more_than(page, CHALLENGE_MAX_VISIBLE_CHARS):
        return None
    scripts = "\n".join(page.tree.xpath("//script/text()"))
    if not _COOKIE_SET.search(scripts) or not (_RELOAD.search(scripts) or _RELOAD.search(page.text)):
        return None
    return "script-only page that sets a cookie and loads the page again"


def drew_nothing(page: Page) -> bool:
    """A browser-drawn document with no text and no element in its body."""
    body = page.tree.find("body")
    if body is None:
        return True
    if visible_text(page):
        return False
    return not any(isinstance(el.tag, str) and el.tag not in ("script", "style", "noscript", "link", "meta", "br")
                   for el in body.iterdescendants())


def compressed_stream_problem(body: bytes, coding: str, limit: int = 0) -> str | None:
    """Why a gzip/deflate/br body as received is not a complete stream, or None.

    Scrapy decodes a truncated gzip stream without complaint, keeping what arrived; the
    detectors would then score half a page (footers are at the end). Decompression output is
    discarded; past ``limit`` bytes of output the check stops (size limits are Scrapy's job).
    """
    coding = coding.strip().lower()
    if coding in ("gzip", "x-gzip"):
        attempts = [zlib.MAX_WBITS | 16]
    elif coding == "deflate":
        attempts = [zlib.MAX_WBITS, -zlib.MAX_WBITS]  # zlib format, then raw deflate (both seen in the wild)
    elif coding == "br":
        return _brotli_problem(body, limit)
    else:
        return None
    error = None
    for wbits in attempts:
        decompressor = zlib.decompressobj(wbits=wbits)
        produced = 0
        try:
            data = body
            while data:
                produced += len(decompressor.decompress(data, 1 << 20))
                data = decompressor.unconsumed_tail
                if limit and produced > limit:
                    return None
            produced += len(decompressor.flush())
        except zlib.error as exc:
            error = f"{coding} stream is corrupt: {exc}"
            continue
        if not decompressor.eof:
            return f"{coding} stream ends early: {len(body)} byte(s) received, {produced} decoded"
        return None
    return error


def _brotli_problem(body: bytes, limit: int) -> str | None:
    try:
        import brotli
    except ImportError:
        return None
    decompressor = brotli.Decompressor()
    try:
        produced = len(decompressor.process(body, output_buffer_limit=1 << 20))
        while not decompressor.is_finished():
            chunk = decompressor.process(b"", output_buffer_limit=1 << 20)
            if not chunk or (limit and produced > limit):
                break
            produced += len(chunk)
    except brotli.error as exc:
        return f"br stream is corrupt: {exc}"
    if decompressor.is_finished() or (limit and produced > limit):
        return None
    return f"br stream ends early: {len(body)} byte(s) received"


def decoded_size(body: bytes, coding: str, limit: int) -> int | None:
    """How many bytes a gzip/deflate/br body decodes to, or None once that passes ``limit``.

    Output is counted and discarded in blocks of at most 1 MiB, so a decompression bomb costs
    no memory. A stream that is corrupt or cut short counts what decodes before the damage;
    a coding this does not know counts the body as it is.
    """
    coding = coding.strip().lower()
    if coding == "br":
        return _brotli_size(body, limit)
    if coding in ("gzip", "x-gzip"):
        attempts = [zlib.MAX_WBITS | 16]
    elif coding == "deflate":
        attempts = [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    else:
        return len(body) if len(body) <= limit else None
    produced = 0
    for wbits in attempts:
        decompressor = zlib.decompressobj(wbits=wbits)
        produced = 0
        data = body
        try:
            while data:
                produced += len(decompressor.decompress(data, 1 << 20))
                if produced > limit:
                    return None
                data = decompressor.unconsumed_tail
                if decompressor.eof and decompressor.unused_data and wbits & 16:
                    data = decompressor.unused_data  # a further gzip member
                    decompressor = zlib.decompressobj(wbits=wbits)
            produced += len(decompressor.flush())
        except zlib.error:
            if produced == 0:
                continue  # not this format: try the next one
        break
    return produced if produced <= limit else None


def _brotli_size(body: bytes, limit: int) -> int | None:
    try:
        import brotli
    except ImportError:
        return len(body) if len(body) <= limit else None
    decompressor = brotli.Decompressor()
    produced = 0
    try:
        produced = len(decompressor.process(body, output_buffer_limit=1 << 20))
        while produced <= limit and not decompressor.is_finished():
            chunk = decompressor.process(b"", output_buffer_limit=1 << 20)
            if not chunk:
                break
            produced += len(chunk)
    except brotli.error:
        pass
    return produced if produced <= limit else None
