"""Screenshots of rendered pages: the whole page, and each evidence element highlighted.

The full-page PNG is taken first, untouched. Then, for each evidence element, the
element found by the finding's CSS locator gets a red outline and the picture is a
crop of the page around it with a margin, so a reader sees the element in context.
Each PNG is saved under the data folder and archived as a ``resource`` record
``urn:screenshot:<url>`` (``urn:screenshot:<url>#locator=<percent-encoded CSS>`` for
element pictures).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

logger = logging.getLogger(__name__)

MARGIN = 24
HIGHLIGHT = """(el) => {
  el.dataset.govevidenceOutline = el.style.outline || '';
  el.style.outline = '4px solid #e60012';
  el.style.outlineOffset = '2px';
}"""
UNHIGHLIGHT = """(el) => {
  el.style.outline = el.dataset.govevidenceOutline || '';
  el.style.outlineOffset = '';
  delete el.dataset.govevidenceOutline;
}"""


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


async def full_page(page: Any, url: str, store: ScreenshotStore, concurrent_to: str | None = None) -> str | None:
    try:
        png = await page.screenshot(full_page=True, type="png")
    except Exception as exc:  # a page that cannot be drawn must not lose its findings
        logger.warning("Full-page screenshot of %s failed: %s", url, exc)
        return None
    return store.save(f"urn:screenshot:{url}", png, concurrent_to)


async def evidence_element(page: Any, url: str, locator: str, store: ScreenshotStore) -> str | None:
    """Crop around the element the locator names, outlined; None if it has no visible box."""
    try:
        element = page.locator(f"css={locator}")
        if await element.count() != 1:
            return None
        element = element.first
        await element.scroll_into_view_if_needed(timeout=2000)
        box = await element.bounding_box()
        if not box or box["width"] < 1 or box["height"] < 1:
            return None
        await element.evaluate(HIGHLIGHT)
        try:
            scroll = await page.evaluate("() => [window.scrollX, window.scrollY]")
            clip = {
                "x": max(0.0, box["x"] + scroll[0] - MARGIN),
                "y": max(0.0, box["y"] + scroll[1] - MARGIN),
                "width": box["width"] + 2 * MARGIN,
                "height": box["height"] + 2 * MARGIN,
            }
            png = await page.screenshot(clip=clip, full_page=True, type="png")
        finally:
            await element.evaluate(UNHIGHLIGHT)
    except Exception as exc:
        logger.info("Evidence picture of %s on %s failed: %s", locator, url, exc)
        return None
    return store.save(f"urn:screenshot:{url}#locator={quote(locator, safe='')}", png)


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
        store = ScreenshotStore(self.root, getattr(self.crawler.spider, "run_id", None),
                                getattr(self.crawler, "archive", None))
        url = record.final_url or record.requested_url
        record.screenshot = await full_page(page, url, store, concurrent_to)
        pictures: dict[str, str | None] = {}
        for finding in record.findings:
            if finding["verdict"] != "present":
                continue
            finding["screenshot"] = record.screenshot
            locator = finding.get("locator")
            if locator:
                if locator not in pictures:
                    pictures[locator] = await evidence_element(page, url, locator, store)
                finding["evidence_image"] = pictures[locator]
