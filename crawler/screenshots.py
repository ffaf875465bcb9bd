"""Screenshots of rendered pages: the whole page, and each evidence element highlighted.

Full page. Chromium cannot draw a page taller than its maximum texture size in one
piece (about 16 384 device pixels): past it, a one-shot full-page capture repeats or
blanks parts of the page while keeping the right size. The page is therefore drawn in
segments of at most ``GOVEVIDENCE_SCREENSHOT_SEGMENT_HEIGHT`` device pixels (clips of the
full page) and stitched with Pillow into one PNG of the document's true size. The
height is capped at ``GOVEVIDENCE_SCREENSHOT_MAX_HEIGHT`` CSS pixels (the picture is then
cut and flagged ``truncated``), and the result is checked: its size must equal the
page's scroll size at the device scale factor.

Evidence elements. Each picture is taken from the live browser: the element the
finding's CSS locator names is scrolled into view and a clip of its box plus a margin
is drawn, then outlined in red. It is attached only when it is checked to show that
element: exactly one element matches the locator, it is visible, its box is non-empty
and inside the page, and its text (``innerText``; for image-only evidence its alt,
title or src) matches the finding's snippet. The same region of the full-page picture
is compared with it; a difference flags the full-page picture (``full_page_check:
mismatch``). The check is recorded per finding in ``finding["details"]["picture"]``.

Each PNG is saved under the data folder and archived as a ``resource`` record
``urn:screenshot:<url>`` (``urn:screenshot:<url>#locator=<percent-encoded CSS>`` for
element pictures). The record's WARC-Record-ID goes with the file's path: the capture's
``screenshot_record_id``, each finding's ``evidence_image_record_id``, and both in each
entry of the capture's ``observations["pictures"]``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from PIL import Image, ImageChops, ImageDraw

logger = logging.getLogger(__name__)

MARGIN = 24
OUTLINE = (230, 0, 18)  # the red of the outline drawn round an evidence element
OUTLINE_WIDTH = 4

# Chromium's maximum texture size is 16 384 device pixels; segments stay well inside it.
SEGMENT_HEIGHT = 4096
MAX_WIDTH_DEVICE = 16384
MAX_HEIGHT = 60_000
# An element picture taller than this (CSS pixels) shows the element's top part only.
MAX_ELEMENT_HEIGHT = 4000
SCREENSHOT_TIMEOUT_MS = 30_000
# Pixel comparison of an element picture with the same region of the full-page picture:
# a pixel differs when a channel differs by more than PIXEL_TOLERANCE; the pictures match
# when at most MAX_DIFFERING_RATIO of the pixels differ.
PIXEL_TOLERANCE = 48
MAX_DIFFERING_RATIO = 0.05

_WS = re.compile(r"\s+")

# Page size as Playwright's full-page screenshot measures it, and the device scale factor.
_PAGE_METRICS_JS = """() => {
  const b = document.body, d = document.documentElement;
  if (!b || !d) return null;
  return {
    width: Math.max(b.scrollWidth, d.scrollWidth, b.offsetWidth, d.offsetWidth, b.clientWidth, d.clientWidth),
    height: Math.max(b.scrollHeight, d.scrollHeight, b.offsetHeight, d.offsetHeight, b.clientHeight, d.clientHeight),
    dpr: window.devicePixelRatio || 1,
  };
}"""

# Scroll the element to the middle of the viewport, let lazy images load, then report
# its box in document coordinates, the viewport, the page size and what it says.
_ELEMENT_FACTS_JS = """async (el) => {
  el.scrollIntoView({block: "center", inline: "center", behavior: "instant"});
  // A frame drawn, or 100 ms when the page draws none (a page not shown draws no frames).
  const frame = () => new Promise((resolve) => {
    requestAnimationFrame(() => resolve());
    setTimeout(resolve, 100);
  });
  await frame();
  const images = [el, ...el.querySelectorAll("img")].filter((n) => n.tagName === "IMG" && !n.complete);
  if (images.length) {
    await Promise.race([
      Promise.all(images.map((img) => new Promise((resolve) => {
        img.addEventListener("load", resolve, {once: true});
        img.addEventListener("error", resolve, {once: true});
      }))),
      new Promise((resolve) => setTimeout(resolve, 2000)),
    ]);
  }
  await frame();
  await frame();
  const r = el.getBoundingClientRect();
  const b = document.body, d = document.documentElement;
  const labels = [], srcs = [];
  for (const n of [el, ...el.querySelectorAll("img, input, [title], [aria-label]")]) {
    for (const name of ["alt", "title", "aria-label", "placeholder", "value"]) {
      const v = n.getAttribute(name);
      if (v) labels.push(v);
    }
    if (n.tagName === "IMG" || n.tagName === "INPUT") {
      if (n.getAttribute("src")) srcs.push(n.getAttribute("src"));
      if (n.currentSrc || n.src) srcs.push(n.currentSrc || n.src);
    }
  }
  return {
    x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height,
    scrollX: window.scrollX, scrollY: window.scrollY,
    viewportWidth: Math.min(window.innerWidth, d.clientWidth || window.innerWidth),
    viewportHeight: Math.min(window.innerHeight, d.clientHeight || window.innerHeight),
    pageWidth: Math.max(b.scrollWidth, d.scrollWidth, b.offsetWidth, d.offsetWidth, b.clientWidth, d.clientWidth),
    pageHeight: Math.max(b.scrollHeight, d.scrollHeight, b.offsetHeight, d.offsetHeight, b.clientHeight, d.clientHeight),
    dpr: window.devicePixelRatio || 1,
    text: el.innerText || "",
    labels, srcs,
  };
}"""


@dataclass
class ScreenshotStore:
    """Where screenshots go: files under ``<root>/screenshots/run-NNNNN`` and the run's WARC."""

    root: Path
    run_id: int | None
    archive: Any | None  # crawler.archive.WarcArchive, or None when archiving is off

    def save(self, uri: str, png: bytes, concurrent_to: str | None = None) -> tuple[str, str | None]:
        """(path under the root, WARC-Record-ID of its ``resource`` record or None) of a picture."""
        digest = hashlib.sha256(png).hexdigest()
        folder = self.root / "screenshots" / f"run-{self.run_id or 0:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{digest[:32]}.png"
        if not path.exists():
            path.write_bytes(png)
        record_id = None
        if self.archive is not None:
            record_id = self.archive.write_resource(uri, "image/png", png, concurrent_to)
        return str(path.relative_to(self.root)), record_id


# --- full page -----------------------------------------------------------------------------
@dataclass
class FullPage:
    """A full-page picture and what its check found."""

    png: bytes | None
    image: Image.Image | None
    facts: dict[str, Any] = field(default_factory=dict)


def _png(image: Image.Image, compress_level: int = 6) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


def _size_ok(actual: int, expected: int, dpr: float) -> bool:
    # A fractional scale factor may round the last device pixel either way.
    return abs(actual - expected) <= (0 if float(dpr).is_integer() else 1)


async def full_page(page: Any, url: str, *, segment_height: int = SEGMENT_HEIGHT,
                    max_height: int = MAX_HEIGHT) -> FullPage:
    """The whole page, drawn in segments of at most ``segment_height`` device pixels and stitched.

    ``facts`` says how (``method``, ``segments``), the page and picture sizes, whether the
    picture was cut at ``max_height`` CSS pixels (``truncated``) and ``check``: ``ok``,
    ``size_mismatch`` (the picture is not the page's size) or ``failed`` (no picture).
    """
    facts: dict[str, Any] = {"method": None, "segments": 0, "truncated": False, "check": "failed"}
    try:
        metrics = await page.evaluate(_PAGE_METRICS_JS)
        if not metrics or metrics["width"] < 1 or metrics["height"] < 1:
            facts["reason"] = "the page has no size"
            return FullPage(None, None, facts)
        dpr = float(metrics["dpr"])
        width, height = int(metrics["width"]), int(metrics["height"])
        shot_width = min(width, int(MAX_WIDTH_DEVICE // dpr))
        shot_height = min(height, max_height)
        facts.update(page_size=[width, height], dpr=dpr,
                     truncated=shot_width < width or shot_height < height)
        step = max(1, int(segment_height // dpr))
        parts: list[Image.Image] = []
        top = 0
        while top < shot_height:
            part_height = min(step, shot_height - top)
            png = await page.screenshot(type="png", full_page=True, timeout=SCREENSHOT_TIMEOUT_MS,
                                        clip={"x": 0, "y": top, "width": shot_width, "height": part_height})
            part = Image.open(io.BytesIO(png))
            part.load()
            if not (_size_ok(part.width, round(shot_width * dpr), dpr)
                    and _size_ok(part.height, round(part_height * dpr), dpr)):
                facts.update(check="size_mismatch", reason=(
                    f"segment at y={top} is {part.width}x{part.height} px, "
                    f"expected {round(shot_width * dpr)}x{round(part_height * dpr)}"))
            parts.append(part)
            top += part_height
        after = await page.evaluate(_PAGE_METRICS_JS)
    except Exception as exc:  # a page that cannot be drawn must not lose its findings
        logger.warning("Full-page screenshot of %s failed: %s", url, exc)
        facts["reason"] = f"screenshot failed: {exc}"[:500]
        return FullPage(None, None, facts)

    facts["segments"] = len(parts)
    facts["method"] = "single" if len(parts) == 1 else "segments"
    if len(parts) == 1:
        image = parts[0]
        out = png
    else:
        image = Image.new(parts[0].mode, (parts[0].width, sum(p.height for p in parts)))
        offset = 0
        for part in parts:
            image.paste(part, (0, offset))
            offset += part.height
        out = _png(image, compress_level=1)  # a tall page: speed over a few per cent of size
    expected = [round(shot_width * dpr), round(shot_height * dpr)]
    facts.update(size=[image.width, image.height], expected_size=expected)
    if facts["check"] == "failed":
        facts["check"] = "ok"
    if not (_size_ok(image.width, expected[0], dpr) and _size_ok(image.height, expected[1], dpr)):
        facts.update(check="size_mismatch",
                     reason=f"picture is {image.width}x{image.height} px, page is {expected[0]}x{expected[1]}")
    elif after and (int(after["width"]), int(after["height"])) != (width, height):
        facts.update(check="size_mismatch",
                     reason=f"the page changed size while drawn: {width}x{height} to "
                            f"{after['width']}x{after['height']} CSS px")
    if facts["truncated"]:
        facts.setdefault("reason", f"page is {width}x{height} CSS px; picture cut at {shot_width}x{shot_height}")
    return FullPage(out, image, facts)


# --- evidence elements --------------------------------------------------------------------
def _squash(text: str | None) -> str:
    """Text compared without its whitespace (markup and layout space words differently) or case."""
    return _WS.sub("", text or "").casefold()


def text_matches(snippet: str | None, facts: dict[str, Any]) -> bool | None:
    """Whether the element says what the finding's snippet says; None when there is no snippet.

    The snippet is the start of the element's visible text (or, for an image, its alt or
    title); it matches when it is contained in the element's ``innerText``, or equals one of
    its labels, or names one of its image sources.
    """
    wanted = _squash(snippet)
    if not wanted:
        return None
    if wanted in _squash(facts.get("text")):
        return True
    if any(wanted == _squash(label) or wanted in _squash(label) for label in facts.get("labels") or []):
        return True
    for src in facts.get("srcs") or []:
        squashed = _squash(unquote(src))
        if squashed and (wanted == squashed or squashed.endswith(wanted)):
            return True
    return False


def _clip_rect(box: dict[str, float], page_width: float, page_height: float) -> tuple[int, int, int, int] | None:
    """The element's box plus the margin, in whole CSS pixels of the document, inside the page."""
    left = max(0, math.floor(box["x"] - MARGIN))
    top = max(0, math.floor(box["y"] - MARGIN))
    right = min(math.ceil(page_width), math.ceil(box["x"] + box["width"] + MARGIN))
    bottom = min(math.ceil(page_height), math.ceil(box["y"] + box["height"] + MARGIN), top + MAX_ELEMENT_HEIGHT)
    if right - left < 2 or bottom - top < 2:
        return None
    return left, top, right, bottom


def compare_region(full: Image.Image, element: Image.Image, clip: tuple[int, int, int, int],
                   box: dict[str, float], dpr: float) -> tuple[bool | None, float | None]:
    """Compare the element's box in its picture with the same region of the full-page picture.

    Returns (match, ratio of differing pixels); (None, None) when the full-page picture does
    not cover the element (cut at its maximum height).
    """
    origin_x, origin_y = round(clip[0] * dpr), round(clip[1] * dpr)  # the element picture's place
    ex0 = max(0, math.floor((box["x"] - clip[0]) * dpr))
    ey0 = max(0, math.floor((box["y"] - clip[1]) * dpr))
    ex1 = min(element.width, math.ceil((box["x"] + box["width"] - clip[0]) * dpr), full.width - origin_x)
    ey1 = min(element.height, math.ceil((box["y"] + box["height"] - clip[1]) * dpr), full.height - origin_y)
    if ex1 - ex0 < 1 or ey1 - ey0 < 1:
        return None, None
    a = full.crop((origin_x + ex0, origin_y + ey0, origin_x + ex1, origin_y + ey1)).convert("RGB")
    b = element.crop((ex0, ey0, ex1, ey1)).convert("RGB")
    diff = ImageChops.difference(a, b)
    # The largest channel difference per pixel, then the share of pixels past the tolerance.
    channels = diff.split()
    worst = ImageChops.lighter(ImageChops.lighter(channels[0], channels[1]), channels[2])
    histogram = worst.histogram()
    differing = sum(histogram[PIXEL_TOLERANCE + 1:])
    ratio = differing / max(1, a.width * a.height)
    return ratio <= MAX_DIFFERING_RATIO, round(ratio, 4)


def outline(image: Image.Image, clip: tuple[int, int, int, int], box: dict[str, float], dpr: float) -> bytes:
    """The element picture with the element outlined in red."""
    out = image.convert("RGB")
    x, y = (box["x"] - clip[0]) * dpr, (box["y"] - clip[1]) * dpr
    width, height = box["width"] * dpr, box["height"] * dpr
    ImageDraw.Draw(out).rectangle((x - 2, y - 2, x + width + 1, y + height + 1), outline=OUTLINE,
                                  width=max(1, round(OUTLINE_WIDTH * dpr)))
    return _png(out)


@dataclass
class ElementPicture:
    """What checking one locator found: the picture (when it passed) and the facts."""

    png: bytes | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # the element's text, labels, sources
    record: dict[str, Any] = field(default_factory=dict)  # for finding["details"]["picture"]


async def element_picture(page: Any, locator: str, full: FullPage) -> ElementPicture:
    """Draw the element a locator names from the live page and check it (text is checked per finding)."""
    result = ElementPicture(record={"method": None, "box": None, "pixel_match": None, "reason": None})
    record = result.record
    try:
        element = page.locator(f"css={locator}")
        count = await element.count()
        if count != 1:
            record["reason"] = "locator matches no element" if count == 0 else f"locator matches {count} elements"
            return result
        element = element.first
        if not await element.is_visible():
            record["reason"] = "element is not visible"
            return result
        facts = await element.evaluate(_ELEMENT_FACTS_JS)
    except Exception as exc:
        logger.info("Locating %s failed: %s", locator, exc)
        record["reason"] = f"locating the element failed: {exc}"[:500]
        return result
    result.facts = facts
    box = {k: float(facts[k]) for k in ("x", "y", "width", "height")}
    record["box"] = [round(box[k], 1) for k in ("x", "y", "width", "height")]
    if box["width"] < 1 or box["height"] < 1:
        record["reason"] = "element box is empty"
        return result
    page_width, page_height = float(facts["pageWidth"]), float(facts["pageHeight"])
    if (box["x"] + box["width"] <= 0 or box["y"] + box["height"] <= 0 or box["x"] >= page_width
            or box["y"] >= page_height or box["x"] < -1 or box["y"] < -1):
        record["reason"] = "element box is outside the page"
        return result
    clip = _clip_rect(box, page_width, page_height)
    if clip is None:
        record["reason"] = "element box is outside the page"
        return result
    dpr = float(facts["dpr"])
    view_left, view_top = float(facts["scrollX"]), float(facts["scrollY"])
    in_view = (clip[0] >= view_left and clip[1] >= view_top
               and clip[2] <= view_left + float(facts["viewportWidth"])
               and clip[3] <= view_top + float(facts["viewportHeight"]))
    try:
        if in_view:
            record["method"] = "viewport_clip"
            png = await page.screenshot(type="png", timeout=SCREENSHOT_TIMEOUT_MS, clip={
                "x": clip[0] - view_left, "y": clip[1] - view_top,
                "width": clip[2] - clip[0], "height": clip[3] - clip[1]})
        else:  # taller or wider than the viewport
            record["method"] = "page_clip"
            png = await page.screenshot(type="png", full_page=True, timeout=SCREENSHOT_TIMEOUT_MS, clip={
                "x": clip[0], "y": clip[1], "width": clip[2] - clip[0], "height": clip[3] - clip[1]})
        image = Image.open(io.BytesIO(png))
        image.load()
    except Exception as exc:
        logger.info("Screenshot of %s failed: %s", locator, exc)
        record["reason"] = f"screenshot failed: {exc}"[:500]
        return result
    record["clip"] = list(clip)
    if not (_size_ok(image.width, round((clip[2] - clip[0]) * dpr), dpr)
            and _size_ok(image.height, round((clip[3] - clip[1]) * dpr), dpr)):
        record["reason"] = (f"picture is {image.width}x{image.height} px, expected "
                            f"{round((clip[2] - clip[0]) * dpr)}x{round((clip[3] - clip[1]) * dpr)}")
        return result
    if full.image is not None:
        # The full-page picture is in device pixels of the document, from its top left.
        match, ratio = compare_region(full.image, image, clip, box, dpr)
        record["pixel_match"], record["pixel_diff"] = match, ratio
    result.png = outline(image, clip, box, dpr)
    return result


class Screenshotter:
    """Decides which rendered pages get pictures, takes them and says what each shows."""

    def __init__(self, crawler: Any) -> None:
        from db.session import data_dir

        settings = crawler.settings
        self.crawler = crawler
        self.enabled = settings.getbool("GOVEVIDENCE_SCREENSHOTS", True)
        self.root = Path(settings.get("GOVEVIDENCE_ARCHIVE_DIR") or data_dir())
        self.max_height = settings.getint("GOVEVIDENCE_SCREENSHOT_MAX_HEIGHT", MAX_HEIGHT)
        self.segment_height = settings.getint("GOVEVIDENCE_SCREENSHOT_SEGMENT_HEIGHT", SEGMENT_HEIGHT)

    def wanted(self, depth: int, findings: list[dict[str, Any]]) -> bool:
        return self.enabled and (depth == 0 or any(f["verdict"] == "present" for f in findings))

    def _count(self, key: str) -> None:
        stats = getattr(self.crawler, "stats", None)
        if stats is not None:
            stats.inc_value(f"govevidence/screenshots_{key}")

    async def take(self, page: Any, record: Any, findings: list[dict[str, Any]],
                   concurrent_to: str | None) -> list[dict[str, Any]]:
        """One full-page picture (``record.screenshot``, its record ``record.screenshot_record_id``),
        and a checked picture of each present finding's element (``evidence_image``,
        ``evidence_image_record_id``); returns, per present finding, what was pictured of it
        (indicator, locator, snippet, the pictures' files and records, the check), which the
        capture keeps for the findings its judging makes."""
        from crawler.archive import WarcArchive
        from crawler.run import RunContext

        context = self.crawler.get_extension(RunContext)
        store = ScreenshotStore(self.root, context.run_id if context is not None else None,
                                self.crawler.get_extension(WarcArchive))
        url = record.final_url or record.requested_url
        full = await full_page(page, url, segment_height=self.segment_height, max_height=self.max_height)
        if full.png is not None:
            record.screenshot, record.screenshot_record_id = store.save(f"urn:screenshot:{url}", full.png,
                                                                        concurrent_to)
        pictures: dict[str, ElementPicture] = {}
        saved: dict[str, tuple[str, str | None]] = {}
        checked: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for finding in findings:
            if finding["verdict"] != "present":
                continue
            finding["screenshot"] = record.screenshot
            picture: dict[str, Any] = {"method": None, "box": None, "text_match": None, "pixel_match": None,
                                       "reason": None}
            locator = finding.get("locator")
            if locator:
                if locator not in pictures:
                    pictures[locator] = await element_picture(page, locator, full)
                element = pictures[locator]
                picture.update(element.record)
                if element.facts:
                    picture["text_match"] = text_matches(finding.get("snippet"), element.facts)
                    if picture["text_match"] is False and not picture["reason"]:
                        picture["reason"] = "element text does not match the finding's snippet"
                        logger.warning("Evidence element %s on %s does not say %r", locator, url,
                                       (finding.get("snippet") or "")[:60])
                if element.png is not None and not picture["reason"]:
                    if locator not in saved:
                        uri = f"urn:screenshot:{url}#locator={quote(locator, safe='')}"
                        saved[locator] = store.save(uri, element.png)
                    finding["evidence_image"], finding["evidence_image_record_id"] = saved[locator]
                else:
                    finding["evidence_image"] = finding["evidence_image_record_id"] = None
                    self._count("element_rejected")
            else:
                picture["reason"] = "finding has no locator"
            details = dict(finding.get("details") or {})
            details["picture"] = picture
            finding["details"] = details
            checked.append((finding, picture))

        facts = dict(full.facts)
        if facts.get("check") == "ok" and any(p.record.get("pixel_match") is False for p in pictures.values()):
            facts["check"] = "mismatch"
            facts["reason"] = "an evidence element looks different in the full-page picture"
        if facts.get("check") != "ok" or facts.get("truncated"):
            logger.warning("Full-page screenshot of %s flagged: %s (%s)", url, facts.get("check"), facts.get("reason"))
            self._count("full_page_flagged")
        for _, picture in checked:
            picture["full_page_check"] = facts.get("check")
        record.screenshot_check = facts
        return [{"indicator": finding["indicator"], "locator": finding.get("locator"), "snippet": finding.get("snippet"),
                 "screenshot": finding.get("screenshot"), "screenshot_record_id": record.screenshot_record_id,
                 "evidence_image": finding.get("evidence_image"),
                 "evidence_image_record_id": finding.get("evidence_image_record_id"),
                 "picture": picture} for finding, picture in checked]
