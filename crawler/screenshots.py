"""Screenshots of rendered pages: the whole page, and each evidence element highlighted.

The browser draws the page once, as a full-page PNG, untouched. For each evidence
element, the element found by the finding's CSS locator is cut from that picture with
a margin and outlined in red, so a reader sees the element in context; drawing the
page again per element would cost a second or more each on long portal pages.
Each PNG is saved under the data folder and archived as a ``resource`` record
``urn:screenshot:<url>`` (``urn:screenshot:<url>#locator=<percent-encoded CSS>`` for
element pictures).
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)

MARGIN = 24
OUTLINE = (230, 0, 18)  # the red of the outline drawn round an evidence element
OUTLINE_WIDTH = 4


@dataclass
class ScreenshotStore:
    """Where screenshots go: files under ``<root>/screenshots/run-NNNNN`` and the run's WARC."""

    root: Path
    run_id: int | None
    archive: Any | None  # crawler.archive.WarcArchive, or None when archiving is off

    def save(self, uri: str, png: bytes, concurrent_to: str | None = None) -> str:
        digest = hashlib.sha256(png).hexdigest()
        folder = self.root / "screenshots" / f"run-{self.run_id or 0:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{digest[:32]}.png"
        if not path.exists():
            path.write_bytes(png)
        if self.archive is not None:
            self.archive.write_resource(uri, "image/png", png, concurrent_to)
        return str(path.relative_to(self.root))


async def full_page(page: Any, url: str) -> bytes | None:
    try:
        return await page.screenshot(full_page=True, type="png")
    except Exception as exc:  # a page that cannot be drawn must not lose its findings
        logger.warning("Full-page screenshot of %s failed: %s", url, exc)
        return None


async def element_box(page: Any, locator: str) -> tuple[float, float, float, float] | None:
    """Page coordinates (x, y, width, height) of the one element a locator names, if visible."""
    try:
        element = page.locator(f"css={locator}")
        if await element.count() != 1:
            return None
        box = await element.first.bounding_box()
        if not box or box["width"] < 1 or box["height"] < 1:
            return None
        scroll_x, scroll_y = await page.evaluate("() => [window.scrollX, window.scrollY]")
    except Exception as exc:
        logger.info("Locating %s failed: %s", locator, exc)
        return None
    return box["x"] + scroll_x, box["y"] + scroll_y, box["width"], box["height"]


def crop_with_outline(shot: Image.Image, box: tuple[float, float, float, float]) -> bytes | None:
    """The element's neighbourhood cut from the full-page picture, the element outlined in red."""
    x, y, width, height = box
    left, top = max(0, int(x - MARGIN)), max(0, int(y - MARGIN))
    right, bottom = min(shot.width, int(x + width + MARGIN)), min(shot.height, int(y + height + MARGIN))
    if right - left < 2 or bottom - top < 2:
        return None
    crop = shot.crop((left, top, right, bottom)).convert("RGB")
    ImageDraw.Draw(crop).rectangle(
        (x - left - 2, y - top - 2, x - left + width + 1, y - top + height + 1),
        outline=OUTLINE, width=OUTLINE_WIDTH,
    )
    out = io.BytesIO()
    crop.save(out, format="PNG", optimize=False)
    return out.getvalue()


class Screenshotter:
    """Decides which rendered pages get pictures and attaches them to a capture's findings."""

    def __init__(self, crawler: Any) -> None:
        from db.session import data_dir

        settings = crawler.settings
        self.crawler = crawler
        self.enabled = settings.getbool("GOVEVIDENCE_SCREENSHOTS", True)
        self.root = Path(settings.get("GOVEVIDENCE_ARCHIVE_DIR") or data_dir())

    def wanted(self, depth: int, findings: list[dict[str, Any]]) -> bool:
        return self.enabled and (depth == 0 or any(f["verdict"] == "present" for f in findings))

    async def take(self, page: Any, record: Any, concurrent_to: str | None) -> None:
        """One full-page picture; each evidence element is cut from it, not drawn again."""
        store = ScreenshotStore(self.root, getattr(self.crawler.spider, "run_id", None),
                                getattr(self.crawler, "archive", None))
        url = record.final_url or record.requested_url
        png = await full_page(page, url)
        if png is None:
            return
        record.screenshot = store.save(f"urn:screenshot:{url}", png, concurrent_to)
        shot: Image.Image | None = None
        pictures: dict[str, str | None] = {}
        for finding in record.findings:
            if finding["verdict"] != "present":
                continue
            finding["screenshot"] = record.screenshot
            locator = finding.get("locator")
            if not locator:
                continue
            if locator not in pictures:
                pictures[locator] = None
                box = await element_box(page, locator)
                if box is not None:
                    shot = shot or Image.open(io.BytesIO(png))
                    crop = crop_with_outline(shot, box)
                    if crop is not None:
                        uri = f"urn:screenshot:{url}#locator={quote(locator, safe='')}"
                        pictures[locator] = store.save(uri, crop)
            finding["evidence_image"] = pictures[locator]
