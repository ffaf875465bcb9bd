#!/usr/bin/env python
"""Time the evidence detectors per page: parsing, detection and source discovery.

Runs over the project corpus (``tests/evidence/corpus``) and, when present, the shared real
pages (``../shared/realpages``; read in place, skipped when absent). For every page and stage it
keeps the median of ``--repeat`` runs, then prints the median, p95 and mean over the pages in
milliseconds, as wall-clock time and as CPU time of the thread (less disturbed by other work on
the machine), for all pages and for the pages of at least ``--large-kib`` KiB.

Stages:

* ``parse``       ``Page.from_bytes`` and the visibility model: decoding, ``lxml`` parsing, and
                  which elements a visitor sees (worked out on first use, asked for here);
* ``visibility``  the visibility model alone (part of ``parse``), on a second parse;
* ``detect``      ``detect(page)`` with every indicator of the page's kind;
* ``discover``    ``discover_sources(page)`` after ``detect`` (as the crawler calls it);
* ``total``       parse + detect + discover.

Usage: ``python benchmarks/detect_bench.py [--repeat N] [--corpus DIR ...] [--evidence DIR]``
(``--evidence`` times another copy of the ``evidence`` package, e.g. an earlier commit's, from
the folder that contains it.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPORA = [ROOT / "tests" / "evidence" / "corpus", ROOT.parent / "shared" / "realpages"]
PAGE_KINDS = {"A": "portal", "B": "service", "C": "opendata", "D": "interaction", "E": "department"}
STAGES = ("parse", "visibility", "detect", "discover", "total")
NOW = dt.date(2026, 11, 26)


def _pages(corpus: Path) -> list[tuple[str, str, bytes, str]]:
    entries = json.loads((corpus / "labels.json").read_text(encoding="utf-8"))
    return [
        (entry["file"], entry.get("source_url") or "http://localhost/", (corpus / entry["file"]).read_bytes(), PAGE_KINDS[entry["page_kind"]])
        for entry in entries
    ]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def time_page(evidence, url: str, body: bytes, kind: str) -> dict[str, tuple[float, float]]:
    """(wall ms, CPU ms) per stage for one page."""
    clocks = (time.perf_counter, time.thread_time)
    marks = []

    def mark():
        marks.append(tuple(c() for c in clocks))

    mark()
    page = evidence.Page.from_bytes(url, body, kind=kind)
    page._hidden  # the visibility model (computed on first use)
    mark()
    evidence.detect(page, now=NOW)
    mark()
    evidence.discover_sources(page)
    mark()
    second = evidence.Page.from_bytes(url, body, kind=kind)
    mark()
    second._compute_visibility()
    mark()

    def span(a: int, b: int) -> tuple[float, float]:
        return tuple(1000 * (marks[b][i] - marks[a][i]) for i in range(2))

    return {
        "parse": span(0, 1), "detect": span(1, 2), "discover": span(2, 3), "visibility": span(4, 5), "total": span(0, 3),
    }


def bench(evidence, pages: list[tuple[str, str, bytes, str]], repeat: int) -> dict[str, dict[str, tuple[float, float]]]:
    """Per page and stage, the median over ``repeat`` runs of (wall ms, CPU ms)."""
    runs: dict[str, list[dict]] = {name: [] for name, *_ in pages}
    for _ in range(repeat):
        for name, url, body, kind in pages:
            runs[name].append(time_page(evidence, url, body, kind))
    return {
        name: {stage: tuple(statistics.median(r[stage][i] for r in results) for i in range(2)) for stage in STAGES}
        for name, results in runs.items()
    }


def summary_lines(per_page: dict, names: list[str]) -> list[str]:
    lines = [f"    {'stage':<11} {'wall median':>11} {'p95':>7} {'mean':>7}   {'CPU median':>10} {'p95':>7} {'mean':>7}"]
    for stage in STAGES:
        cells = []
        for i in range(2):
            values = [per_page[name][stage][i] for name in names]
            cells.append(f"{statistics.median(values):7.2f} ms {_percentile(values, 0.95):7.2f} {statistics.mean(values):7.2f}")
        lines.append(f"    {stage:<11} {cells[0]:>27}   {cells[1]:>26}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per page (default 5); the median is kept")
    parser.add_argument("--corpus", type=Path, action="append", help="corpus folder(s) with labels.json")
    parser.add_argument("--large-kib", type=float, default=50, help="size from which a page counts as real-size (default 50)")
    parser.add_argument("--evidence", type=Path, help="folder containing the evidence package to time (default: this checkout)")
    parser.add_argument("--per-page", action="store_true", help="also print every page's CPU ms per stage")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.evidence.resolve() if args.evidence else ROOT))
    import evidence

    evidence.load_catalogue()  # outside the timings; so is a first warm-up detection below
    print(f"evidence package: {Path(evidence.__file__).parent}; load average {os.getloadavg()[0]:.1f}")
    for corpus in args.corpus or DEFAULT_CORPORA:
        if not (corpus / "labels.json").is_file():
            print(f"skipped: no labelled corpus at {corpus}")
            continue
        pages = _pages(corpus)
        time_page(evidence, *pages[0][1:])
        per_page = bench(evidence, pages, args.repeat)
        sizes = {name: len(body) / 1024 for name, _, body, _ in pages}
        large = [name for name in per_page if sizes[name] >= args.large_kib]
        print(f"{corpus}: {len(pages)} pages, mean {statistics.mean(sizes.values()):.0f} KiB, median of {args.repeat} runs per page")
        print(f"  all pages ({len(pages)}):")
        print("\n".join(summary_lines(per_page, list(per_page))))
        if large:
            print(f"  pages of {args.large_kib:.0f} KiB or more ({len(large)}, mean {statistics.mean(sizes[n] for n in large):.0f} KiB):")
            print("\n".join(summary_lines(per_page, large)))
        if args.per_page:
            for name in per_page:
                cells = " ".join(f"{stage} {per_page[name][stage][1]:6.2f}" for stage in STAGES)
                print(f"    {name:<40} {sizes[name]:6.0f} KiB  CPU ms: {cells}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
