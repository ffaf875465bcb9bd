"""Full-page and evidence-element pictures, drawn by real chromium from pages served on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import shutil
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from crawler.archive import WarcArchive
from scrapy import Spider
from scrapy.utils.test import get_crawler
from warcio.archiveiterator import ArchiveIterator

from crawler.items import PageRecord
from crawler.screenshots import MARGIN, Screenshotter, full_page
from crawler.settings import PLAYWRIGHT_LAUNCH_OPTIONS

pytestmark = pytest.mark.browser

HEADER = (0, 0, 255)
FOOTER = (0, 160, 0)
EMBLEM = (255, 200, 0)
TALL = 30_000

TALL_PAGE = f"""<!doctype html><html><head><meta charset="utf-8"><title>tall</title>
<style>body {{ margin: 0 }} p {{ margin: 0 }} #header {{ height: 300px; background: rgb{HEADER} }}
#middle {{ height: {TALL - 600}px; background: linear-gradient(#fff, #ddd) }}
#footer {{ height: 300px; background: rgb{FOOTER}; padding: 40px; box-sizing: border-box }}
.hidden {{ display: none }}</style></head><body>
<div id="header"><p class="note">政府网站</p><p class="note">导航</p></div>
<div id="middle"></div>
<div id="footer"><a href="http://bszs.conac.cn/"><img id="emblem" src="emblem.png" alt="党政机关" width="80" height="80"></a>
<span id="icp">京ICP备12345678号</span><span class="hidden" id="secret">隐藏</span></div>
</body></html>"""

NORMAL_PAGE = f"""<!doctype html><html><head><meta charset="utf-8"><title>normal</title>
<style>body {{ margin: 0; font-family: sans-serif }} #header {{ height: 200px; background: rgb{HEADER} }}
#content {{ height: 1200px; padding: 20px; box-sizing: border-box }} #footer {{ height: 200px; background: rgb{FOOTER} }}</style></head><body>
<div id="header"></div>
<div id="content"><p id="contact">联系我们：010-12345678</p><a id="mail" href="/mail">我要写信</a></div>
<div id="footer"><span id="icp">京ICP备12345678号</span></div>
</body></html>"""

# The footer changes colour once scrolled to: a full-page picture taken before differs.
CHANGING_PAGE = f"""<!doctype html><html><head><meta charset="utf-8"><title>changing</title>
<style>body {{ margin: 0 }} #top {{ height: 3000px; background: #fff }}
#box {{ height: 200px; width: 400px; background: rgb{FOOTER} }}</style></head><body>
<div id="top"></div><div id="box">办事指南</div>
<script>new IntersectionObserver((entries) => {{ if (entries[0].isIntersecting)
  document.getElementById("box").style.background = "rgb(200, 0, 200)"; }}).observe(document.getElementById("box"));
</script></body></html>"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("site")
    (root / "tall.html").write_text(TALL_PAGE, encoding="utf-8")
    (root / "normal.html").write_text(NORMAL_PAGE, encoding="utf-8")
    (root / "changing.html").write_text(CHANGING_PAGE, encoding="utf-8")
    Image.new("RGB", (80, 80), EMBLEM).save(root / "emblem.png")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(PLAYWRIGHT_LAUNCH_OPTIONS["executable_path"]):
        pytest.skip("no chromium")
    from playwright.async_api import async_playwright

    loop = asyncio.new_event_loop()
    manager = async_playwright()
    playwright = loop.run_until_complete(manager.__aenter__())
    launched = loop.run_until_complete(playwright.chromium.launch(**PLAYWRIGHT_LAUNCH_OPTIONS))
    yield loop, launched
    loop.run_until_complete(launched.close())
    loop.run_until_complete(manager.__aexit__(None, None, None))
    loop.close()


@pytest.fixture
def screenshotter(tmp_path):
    """A Screenshotter of a real Scrapy crawler, writing into a real WARC archive."""
    from crawler.archive import WarcArchive

    crawler = get_crawler(Spider, {"GOVEVIDENCE_ARCHIVE_DIR": str(tmp_path),
                                   "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
                                   "EXTENSIONS": {"crawler.archive.WarcArchive": 500}})
    crawler.spider = Spider(name="shots")
    archive = crawler.get_extension(WarcArchive)
    archive.spider_opened(crawler.spider)
    yield Screenshotter(crawler)
    archive.finish()


def _record(url: str, findings: list[dict]) -> PageRecord:
    record = PageRecord(target_code="110000", source_kind="portal", source_url=url, requested_url=url,
                        fetched_at=dt.datetime.now(dt.timezone.utc), final_url=url)
    record.findings = findings
    return record


def _finding(indicator: str, locator: str | None, snippet: str | None) -> dict:
    return {"indicator": indicator, "verdict": "present", "locator": locator, "snippet": snippet, "details": {}}


def _take(browser, url: str, shots: Screenshotter, findings: list[dict]) -> tuple[PageRecord, float]:
    loop, launched = browser

    async def run() -> tuple[PageRecord, float]:
        page = await launched.new_page()
        try:
            await page.goto(url, wait_until="load")
            record = _record(url, findings)
            started = time.perf_counter()
            record.pictures = await shots.take(page, record, record.findings, None)
            return record, time.perf_counter() - started
        finally:
            await page.close()

    return loop.run_until_complete(run())


def _share(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 8) -> float:
    raw = image.convert("RGB").tobytes()
    hits = sum(1 for i in range(0, len(raw), 3)
               if all(abs(raw[i + k] - colour[k]) <= tolerance for k in range(3)))
    return hits / (len(raw) // 3)


def _red_outline(image: Image.Image) -> int:
    raw = image.convert("RGB").tobytes()
    return sum(1 for i in range(0, len(raw), 3) if raw[i] > 200 and raw[i + 1] < 40 and raw[i + 2] < 60)


def test_tall_page_full_picture_has_true_height_and_emblem_picture_shows_the_emblem(browser, site, screenshotter,
                                                                                    tmp_path):
    findings = [_finding("site.conac_emblem", "#emblem", "党政机关"),
                _finding("site.icp_record", "#icp", "京ICP备12345678号"),
                _finding("site.reachable", None, "tall")]
    record, seconds = _take(browser, f"{site}/tall.html", screenshotter, findings)
    print(f"\ntall page ({TALL} px): {seconds:.2f} s")

    shot = Image.open(tmp_path / record.screenshot).convert("RGB")
    assert shot.size == (1280, TALL)
    assert shot.getpixel((5, 5)) == HEADER
    assert shot.getpixel((5, TALL - 5)) == FOOTER  # the footer, not the header again
    emblem_y = TALL - 300 + 40
    assert shot.getpixel((40 + 40, emblem_y + 40)) == EMBLEM
    facts = record.screenshot_check
    assert facts["method"] == "segments" and facts["segments"] > 1
    assert facts["check"] == "ok" and facts["truncated"] is False
    assert facts["size"] == facts["expected_size"] == [1280, TALL]

    emblem, icp, reachable = record.findings
    picture = emblem["details"]["picture"]
    assert picture["reason"] is None, picture
    assert picture["text_match"] is True and picture["pixel_match"] is True
    assert picture["full_page_check"] == "ok"
    assert picture["box"][1] == pytest.approx(emblem_y, abs=1)
    image = Image.open(tmp_path / emblem["evidence_image"]).convert("RGB")
    assert image.size == (80 + 2 * MARGIN, 80 + 2 * MARGIN)
    assert image.getpixel((MARGIN + 40, MARGIN + 40)) == EMBLEM  # inside the outline
    assert _share(image, EMBLEM) > 0.25 and _share(image, HEADER) == 0
    assert _red_outline(image) > 4 * 80
    assert icp["evidence_image"] and icp["details"]["picture"]["text_match"] is True
    assert reachable["details"]["picture"]["reason"] == "finding has no locator"
    assert reachable["details"]["picture"]["full_page_check"] == "ok"

    # Every picture is archived as a resource record, which the capture and findings name.
    resources = {}
    screenshotter.crawler.get_extension(WarcArchive).finish()
    for warc in (tmp_path / "warc").rglob("*.warc.gz"):
        with warc.open("rb") as stream:
            resources.update({r.rec_headers.get_header("WARC-Record-ID"): (
                r.rec_headers.get_header("WARC-Target-URI"), hashlib.sha256(r.content_stream().read()).hexdigest())
                for r in ArchiveIterator(stream) if r.rec_type == "resource"})

    def held(path: str) -> str:
        return hashlib.sha256((tmp_path / path).read_bytes()).hexdigest()

    assert resources[record.screenshot_record_id] == (f"urn:screenshot:{site}/tall.html", held(record.screenshot))
    assert resources[emblem["evidence_image_record_id"]] == (f"urn:screenshot:{site}/tall.html#locator=%23emblem",
                                                             held(emblem["evidence_image"]))
    assert resources[icp["evidence_image_record_id"]][1] == held(icp["evidence_image"])
    assert reachable.get("evidence_image_record_id") is None
    for picture, finding in zip(record.pictures, record.findings):  # what the capture keeps for its judging
        assert picture["screenshot_record_id"] == record.screenshot_record_id
        assert picture["evidence_image_record_id"] == finding.get("evidence_image_record_id")


def test_height_cap_cuts_and_flags(browser, site, screenshotter, tmp_path):
    loop, launched = browser

    async def run():
        page = await launched.new_page()
        try:
            await page.goto(f"{site}/tall.html")
            return await full_page(page, "tall", max_height=10_000)
        finally:
            await page.close()

    shot = loop.run_until_complete(run())
    assert shot.image.size == (1280, 10_000)
    assert shot.facts["truncated"] is True and shot.facts["check"] == "ok"
    assert shot.facts["page_size"] == [1280, TALL]


def test_ambiguous_hidden_missing_and_wrong_text_get_no_picture(browser, site, screenshotter):
    findings = [_finding("a", ".note", "政府网站"), _finding("b", "#secret", "隐藏"),
                _finding("c", "#nowhere", "x"), _finding("d", "#icp", "浙ICP备99999999号"),
                _finding("e", "#icp", "京ICP备12345678号")]
    record, _ = _take(browser, f"{site}/tall.html", screenshotter, findings)
    ambiguous, hidden, missing, wrong, right = record.findings
    assert all(f["evidence_image_record_id"] is None for f in (ambiguous, hidden, missing, wrong))
    assert right["evidence_image_record_id"]
    assert ambiguous["evidence_image"] is None
    assert ambiguous["details"]["picture"]["reason"] == "locator matches 2 elements"
    assert hidden["evidence_image"] is None
    assert hidden["details"]["picture"]["reason"] == "element is not visible"
    assert missing["evidence_image"] is None
    assert missing["details"]["picture"]["reason"] == "locator matches no element"
    assert wrong["evidence_image"] is None
    assert wrong["details"]["picture"]["text_match"] is False
    assert "does not match" in wrong["details"]["picture"]["reason"]
    # The same element, named by a finding that says what it shows, gets its picture.
    assert right["evidence_image"] and right["details"]["picture"]["text_match"] is True


def test_normal_page_full_picture_and_crops(browser, site, screenshotter, tmp_path):
    findings = [_finding("interaction.mail", "#mail", "我要写信"),
                _finding("site.contact", "#contact", "联系我们： 010-12345678"),
                _finding("site.icp_record", "#icp", "京ICP备12345678号")]
    record, seconds = _take(browser, f"{site}/normal.html", screenshotter, findings)
    print(f"\nnormal page (1600 px): {seconds:.2f} s")
    shot = Image.open(tmp_path / record.screenshot).convert("RGB")
    assert shot.size == (1280, 1600)
    assert shot.getpixel((5, 5)) == HEADER and shot.getpixel((5, 1595)) == FOOTER
    assert record.screenshot_check["method"] == "single" and record.screenshot_check["check"] == "ok"
    for finding in record.findings:
        picture = finding["details"]["picture"]
        assert finding["evidence_image"], picture
        assert picture["text_match"] is True and picture["pixel_match"] is True, picture
        assert picture["full_page_check"] == "ok"
        image = Image.open(tmp_path / finding["evidence_image"]).convert("RGB")
        x, y, width, height = picture["box"]
        # The box plus the margin, cut at the page's edges.
        expected = (min(x + width + MARGIN, 1280) - max(0, x - MARGIN), min(y + height + MARGIN, 1600) - max(0, y - MARGIN))
        assert abs(image.width - expected[0]) <= 2 and abs(image.height - expected[1]) <= 2
        assert _red_outline(image) > 2 * (width + height)
    icp = Image.open(tmp_path / record.findings[2]["evidence_image"])
    assert _share(icp, FOOTER) > 0.3  # the footer's element, drawn on the footer


def test_element_that_changes_flags_the_full_page_picture(browser, site, screenshotter):
    findings = [_finding("service.guide", "#box", "办事指南")]
    record, _ = _take(browser, f"{site}/changing.html", screenshotter, findings)
    picture = record.findings[0]["details"]["picture"]
    assert picture["pixel_match"] is False and picture["pixel_diff"] > 0.5
    assert picture["full_page_check"] == "mismatch"
    assert record.screenshot_check["check"] == "mismatch"
    # The element picture is what the browser shows now: kept.
    assert record.findings[0]["evidence_image"]


def test_device_scale_factor_two(browser, site, screenshotter, tmp_path):
    """Pictures are in device pixels: twice the CSS size, the element still outlined where it is."""
    loop, launched = browser

    async def run() -> PageRecord:
        context = await launched.new_context(device_scale_factor=2)
        page = await context.new_page()
        try:
            await page.goto(f"{site}/normal.html")
            record = _record(f"{site}/normal.html", [_finding("site.icp_record", "#icp", "京ICP备12345678号")])
            await screenshotter.take(page, record, record.findings, None)
            return record
        finally:
            await context.close()

    record = loop.run_until_complete(run())
    assert Image.open(tmp_path / record.screenshot).size == (2560, 3200)
    assert record.screenshot_check["check"] == "ok" and record.screenshot_check["dpr"] == 2
    finding = record.findings[0]
    picture = finding["details"]["picture"]
    assert picture["pixel_match"] is True and picture["text_match"] is True, picture
    image = Image.open(tmp_path / finding["evidence_image"])
    x, y, width, height = picture["box"]
    expected = (min(x + width + MARGIN, 1280) - max(0, x - MARGIN), min(y + height + MARGIN, 1600) - max(0, y - MARGIN))
    assert abs(image.width - 2 * expected[0]) <= 4 and abs(image.height - 2 * expected[1]) <= 4
    assert _share(image, FOOTER) > 0.3 and _red_outline(image) > 4 * (width + height)
