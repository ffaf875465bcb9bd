#!/usr/bin/env python
"""Time the evidence detectors per page: parse + detect, and detect alone.

Runs over the project corpus (``tests/evidence/corpus``) and, when present, the shared real
pages (``../shared/realpages``). Prints median and p95 milliseconds per page and pages/s.

Usage: ``python benchmarks/detect_bench.py [--repeat N] [--corpus DIR ...]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from evidence import Page, detect, discover_sources, load_catalogue  # noqa: E402

DEFAULT_CORPORA = [ROOT / "tests" / "evidence" / "corpus", ROOT.parent / "shared" / "realpages"]
PAGE_KINDS = {"A": "portal", "B": "service", "C": "opendata", "D": "interaction", "E": "department"}


def _pages(corpus: Path) -> list[tuple[str, bytes, str]]:
    entries = json.loads((corpus / "labels.json").read_text(encoding="utf-8"))
    return [
        (entry.get("source_url") or "http://localhost/", (corpus / entry["file"]).read_bytes(), PAGE_KINDS[entry["page_kind"]])
        for entry in entries
    ]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def bench(pages: list[tuple[str, bytes, str]], repeat: int) -> dict[str, float]:
    total, detect_only, sources_only = [], [], []
    for _ in range(repeat):
        for url, body, kind in pages:
            start = time.perf_counter()
            page = Page.from_bytes(url, body, kind=kind)
            parsed = time.perf_counter()
            detect(page)
            detected = time.perf_counter()
            discover_sources(page)
            done = time.perf_counter()
            total.append((detected - start) * 1000)
            detect_only.append((detected - parsed) * 1000)
            sources_only.append((done - detected) * 1000)
    return {
        "pages": len(pages),
        "kib_mean": sum(len(b) for _, b, _ in pages) / len(pages) / 1024,
        "total_median": statistics.median(total),
        "total_p95": _percentile(total, 0.95),
        "detect_median": statistics.median(detect_only),
        "detect_p95": _percentile(detect_only, 0.95),
        "sources_median": statistics.median(sources_only),
        "pages_per_s": 1000 * len(total) / sum(total),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="passes over each corpus (default 5)")
    parser.add_argument("--corpus", type=Path, action="append", help="corpus folder(s) with labels.json")
    args = parser.parse_args(argv)
    load_catalogue()  # load once outside the timings
    for corpus in args.corpus or DEFAULT_CORPORA:
        if not (corpus / "labels.json").is_file():
            print(f"skipped: no labelled corpus at {corpus}")
            continue
        r = bench(_pages(corpus), args.repeat)
        print(
            f"{corpus}: {r['pages']} pages, mean {r['kib_mean']:.0f} KiB, {args.repeat} passes\n"
            f"  parse+detect  median {r['total_median']:7.2f} ms   p95 {r['total_p95']:7.2f} ms   "
            f"{r['pages_per_s']:6.1f} pages/s\n"
            f"  detect alone  median {r['detect_median']:7.2f} ms   p95 {r['detect_p95']:7.2f} ms\n"
            f"  discover_sources median {r['sources_median']:5.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
