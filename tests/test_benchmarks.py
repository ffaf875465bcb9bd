"""The crawl benchmark runs end to end on a tiny realistic site and prints every figure."""

from __future__ import annotations

import gzip
import re
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

FIGURE_LINES = [
    r"^bare Scrapy crawl: [\d.]+ pages/s \(\d+ pages in [\d.]+ s\)$",
    r"^GovEvidence \(WARC \+ database\) crawl: [\d.]+ pages/s \(\d+ pages fetched in [\d.]+ s, [\d.]+× bare "
    r"Scrapy's; open [\d.]+ s in all, waiting for its judging\)$",
    r"^GovEvidence \(WARC \+ database\) sealed: [\d.]+ s end-to-end from process start to manifest written, "
    r"[\d.]+× bare Scrapy's crawl time \(\d+ findings\)$",
    r"^detector ms/page, parse excluded: median [\d.]+ CPU",
    r"^detector ms/page, parse included: median [\d.]+ CPU",
    r"^crawler peak memory, bare Scrapy: RSS \d+ MB \(crawler process\), \d+ MB \(largest other process",
    r"^crawler peak memory, GovEvidence \(WARC \+ database\): RSS \d+ MB \(crawler process\), [1-9]\d* MB "
    r"\(largest other process of its tree: a judging process\), PSS \d+ MB",
    r"^Medians of 1 run\(s\); load average",
]


@pytest.mark.slow
def test_crawl_bench_prints_every_figure():
    out = subprocess.run([sys.executable, str(BENCH / "crawl_bench.py"), "--pages", "40", "--repeat", "1",
                          "--no-warmup", "--detect-sample", "10", "--keep"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    kept = re.search(r"^Kept (.+)$", out.stdout, re.M)
    try:
        assert out.returncode == 0, out.stdout + out.stderr
        for pattern in FIGURE_LINES:
            assert re.search(pattern, out.stdout, re.M), f"missing {pattern!r} in:\n{out.stdout}"
        # Interleaved runs, each crawling the whole site (40 pages, no 404s).
        runs = re.findall(r"^  run 1 (\w+) +(\d+) pages", out.stdout, re.M)
        assert [name for name, _ in runs] == ["bare", "govevidence"]
        assert all(int(pages) == 40 for _, pages in runs), runs
        # The GovEvidence run fetched the 40 pages of the loopback site and nothing else.
        site = re.search(r"^Realistic portal (http://127\.0\.0\.1:\d+/)", out.stdout, re.M).group(1)
        database = Path(kept.group(1)) / "govevidence-1" / "data" / "govevidence.sqlite3"
        with sqlite3.connect(database) as db:
            urls = [row[0] for row in db.execute("SELECT requested_url FROM page_captures")]
            statuses = {row[0] for row in db.execute("SELECT error_status FROM page_captures")}
        assert len(set(urls)) == 40 and all(url.startswith(site) for url in urls), urls
        assert statuses <= {None, "ok"}, statuses
    finally:
        if kept:
            shutil.rmtree(kept.group(1), ignore_errors=True)


@pytest.fixture()
def web():
    sys.path.insert(0, str(BENCH))
    try:
        import realistic_web
        yield realistic_web
    finally:
        sys.path.remove(str(BENCH))


def test_realistic_web_serves_what_real_portals_serve(web, tmp_path):
    site = web.RealisticWeb(60, page_kb=30)
    assert site.page(7) == web.RealisticWeb(60, page_kb=30).page(7)  # deterministic
    with web.WebServer(site, tmp_path) as server:
        for i in (0, 1):
            request = urllib.request.Request(server.url.rstrip("/") + site.paths[i], headers={"Accept-Encoding": "gzip"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.headers["Content-Encoding"] == "gzip"
                assert answer.headers["Content-Type"] == f"text/html; charset={site.charset(i)}"
                etag = answer.headers["ETag"]
                assert answer.headers["Last-Modified"]
                text = gzip.decompress(answer.read()).decode(site.charset(i))
            assert 25 * 1024 < len(text.encode(site.charset(i))) < 35 * 1024
            assert len(re.findall(r"<a [^>]*href=", text)) >= 80
            assert 'style="display:none' not in text and 'class="sub"' in text
            for needle in ("网站标识码", "京ICP备", "京公网安备", "bszs.conac.cn", "网站地图", "无障碍", "关于我们",
                           "联系我们", "政务服务", "互动交流", "数据开放"):
                assert needle in text, needle
            conditional = urllib.request.Request(request.full_url, headers={"If-None-Match": etag})
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(conditional, timeout=10)
            assert answer.value.code == 304
        # Without gzip the same page comes uncompressed.
        with urllib.request.urlopen(server.url, timeout=10) as answer:
            assert answer.headers.get("Content-Encoding") is None
            assert answer.read() == site.page(0)
