#!/usr/bin/env python
"""Crawl benchmark: bare Scrapy against GovEvidence on a realistic loopback portal.

Serves a fictional province portal built like real Chinese government portals
(``benchmarks/realistic_web.py``: ``--pages`` pages of about ``--page-kb`` KB, half GBK and half
UTF-8, 80+ links each with CSS-hidden sub-menus, news lists and the footer identifiers, gzip,
ETag / Last-Modified), then crawls it in separate ``scrapy`` subprocesses, interleaved run by run
(bare, govevidence, bare, govevidence, …), with the same concurrency and no delays for both:

  bare         a minimal spider that only follows same-site links (``bare_spider.py``)
  govevidence  ``scrapy crawl province_portals``, WARC and database on, screenshots off
  nowarc       the same with WARC off
  shots        the same with screenshots on (chromium draws the home page and its evidence)

and prints, as medians of ``--repeat`` runs: pages/s of each crawl (Scrapy's
``response_received_count`` / ``elapsed_time_seconds``), the seconds from the GovEvidence
process's start until its run was sealed (the run's ``finished_at``, the manifest file and the
log line naming it, whichever is last) and their ratio to bare Scrapy's crawl time, the
detectors' CPU milliseconds per page on a sample of the generated pages (in this process, with
and without parsing), and the peak memory of the crawler (RSS of the crawler process, summed PSS
of its process tree, sampled every 0.25 s until it exits, so the end of the run is included).
It prints figures only and asserts nothing about them. See ``benchmarks/README.md``.

Usage: ``python benchmarks/crawl_bench.py [--pages 2000] [--repeat 3] [--page-kb 60]
[--configs bare,govevidence]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_report import CONFIGS, figures, run_line, table  # noqa: E402
from bench_runs import ROOT, Result, run_bare, run_govevidence, write_registry  # noqa: E402
from realistic_web import SITE_NAME, RealisticWeb, WebServer  # noqa: E402


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def time_detectors(server: WebServer, sample: int) -> dict[str, dict[str, float]]:
    """CPU and wall ms per page of ``evidence.detect`` on an even sample of the served pages,
    without parsing (``detect``) and with it (``parse+detect``), in this process."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from evidence import Page, detect

    web = server.web
    step = max(1, web.pages // max(1, sample))
    chosen = list(range(0, web.pages, step))[:sample]
    times: dict[str, list[tuple[float, float]]] = {"detect": [], "parse+detect": []}
    warm = Page.from_bytes(server.url, server.body("/"), content_type="text/html; charset=utf-8")
    detect(warm)  # catalogue loading and pattern compilation are not per-page costs
    for i in chosen:
        path = web.paths[i]
        body = server.body(path)
        url = server.url.rstrip("/") + path
        c0, w0 = time.thread_time(), time.perf_counter()
        page = Page.from_bytes(url, body, content_type=f"text/html; charset={web.charset(i)}", kind="portal")
        c1, w1 = time.thread_time(), time.perf_counter()
        detect(page)
        c2, w2 = time.thread_time(), time.perf_counter()
        times["detect"].append(((c2 - c1) * 1000, (w2 - w1) * 1000))
        times["parse+detect"].append(((c2 - c0) * 1000, (w2 - w0) * 1000))
    out = {}
    for stage, pairs in times.items():
        cpu, wall = [p[0] for p in pairs], [p[1] for p in pairs]
        out[stage] = {"pages": len(pairs), "median_cpu": statistics.median(cpu), "median_wall": statistics.median(wall),
                      "mean_cpu": statistics.fmean(cpu), "p95_cpu": _percentile(cpu, 0.95)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=2000, help="pages of the portal (default 2000)")
    parser.add_argument("--page-kb", type=float, default=60, help="approximate size of each page in KB (default 60)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration; medians are printed (default 3)")
    parser.add_argument("--configs", default="bare,govevidence",
                        help=f"comma-separated subset of {','.join(CONFIGS)} (default bare,govevidence)")
    parser.add_argument("--detect-sample", type=int, default=100,
                        help="pages the detectors are timed on in-process (default 100; 0: skip)")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds before a crawl is killed (default 7200)")
    parser.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra Scrapy setting for the GovEvidence crawls (repeatable)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the uncounted warm-up crawl")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, WARC, databases)")
    args = parser.parse_args(argv)
    if args.pages < 10 or args.repeat < 1 or args.page_kb <= 0:
        parser.error("--pages must be at least 10, --repeat at least 1, --page-kb positive")
    if any("=" not in item for item in args.set):
        parser.error("-s/--set takes NAME=VALUE")
    extra = dict(item.split("=", 1) for item in args.set)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(configs) - set(CONFIGS)
    if unknown or not configs:
        parser.error(f"unknown configuration(s): {', '.join(sorted(unknown)) or '(none)'}")

    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="govevidence-crawl-bench-"))
    results: dict[str, list[Result]] = {c: [] for c in configs}
    detector = None
    try:
        started = time.monotonic()
        web = RealisticWeb(args.pages, args.page_kb)
        with WebServer(web, tmp) as server:
            gbk = sum(1 for i in range(web.pages) if web.charset(i) == "gbk")
            print(f"Realistic portal {server.url}: {web.pages} pages ({gbk} GBK, {web.pages - gbk} UTF-8), "
                  f"{server.raw_bytes / web.pages / 1024:.1f} KB/page on average, every page within {web.max_depth} "
                  f"hop(s) of the home page; generated in {time.monotonic() - started:.1f} s; {args.repeat} run(s) per "
                  f"configuration on {os.cpu_count()} CPU(s)", flush=True)
            registry = tmp / "registry.yaml"
            write_registry(registry, server.url, SITE_NAME)
            budget, depth = web.pages + 10, web.max_depth + 5

            def run(config: str, label: str, pages: int | None = None) -> Result:
                work = tmp / label
                work.mkdir()
                if config == "bare":
                    return run_bare(server.url, work, args.timeout)
                return run_govevidence(registry, work, args.timeout, budget=pages or budget, depth=depth,
                                       warc=config != "nowarc", screenshots=config == "shots", extra=extra)

            if not args.no_warmup:
                # Not counted: the first crawl of a fresh machine pays for cold imports and bytecode.
                print("  warming up (not counted)", flush=True)
                run("govevidence", "warmup", pages=20)
            for repeat in range(1, args.repeat + 1):
                for config in configs:
                    result = run(config, f"{config}-{repeat}")
                    results[config].append(result)
                    if result.pages < web.pages:
                        print(f"  note: {config} received {result.pages} of the {web.pages} pages", flush=True)
                    print(run_line(repeat, config, result), flush=True)
            if args.detect_sample > 0:
                detector = time_detectors(server, args.detect_sample)
    finally:
        if args.keep:
            print(f"Kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    for line in table(results):
        print(line)
    print()
    for line in figures(results, detector):
        print(line)
    load_after = os.getloadavg()
    print(f"Medians of {args.repeat} run(s); load average (1, 5, 15 min) {' '.join(f'{v:.1f}' for v in load_before)} "
          f"before, {' '.join(f'{v:.1f}' for v in load_after)} after, on {os.cpu_count()} CPU(s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
