"""Printing the crawl benchmark's figures: medians over the runs of each configuration."""

from __future__ import annotations

import statistics

from bench_runs import Result

CONFIGS = {
    "bare": "bare Scrapy",
    "govevidence": "GovEvidence (WARC + database)",
    "nowarc": "GovEvidence, WARC off",
    "shots": "GovEvidence + home-page screenshots",
}


def median(values: list[float]) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def rate(result: Result) -> float:
    return result.pages / result.seconds if result.seconds else float("nan")


def run_line(repeat: int, config: str, result: Result) -> str:
    sealed = ""
    if result.sealed is not None:
        sealed = f" {result.sealed:7.2f} s sealed" + (f" (by {result.sealed_by})" if result.sealed_by != "crawl" else "")
    return (f"  run {repeat} {config:<11} {result.pages:>6} pages {result.seconds:8.2f} s crawl {rate(result):7.1f} pages/s"
            f"{sealed} {result.wall:7.2f} s wall, PSS {result.tree_pss_mb:.0f} MB")


def table(results: dict[str, list[Result]]) -> list[str]:
    header = ("configuration", "pages", "crawl s", "pages/s", "sealed s", "wall s", "CPU ms/page", "RSS MB",
              "PSS MB", "end PSS MB", "WARC KB/page")
    rows = []
    for config, runs in results.items():
        pages = median([r.pages for r in runs])
        rows.append((
            CONFIGS[config], f"{pages:.0f}", f"{median([r.seconds for r in runs]):.2f}",
            f"{median([rate(r) for r in runs]):.1f}",
            f"{median([r.sealed for r in runs]):.2f}" if runs[0].sealed is not None else "-",
            f"{median([r.wall for r in runs]):.2f}",
            f"{median([r.cpu / r.pages * 1000 for r in runs if r.pages]):.1f}",
            f"{median([r.peak_rss_mb for r in runs]):.0f}", f"{median([r.tree_pss_mb for r in runs]):.0f}",
            f"{median([r.end_pss_mb for r in runs]):.0f}",
            f"{median([r.warc_bytes / r.pages / 1024 for r in runs if r.pages]):.1f}" if runs[0].warc_bytes else "-",
        ))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def figures(results: dict[str, list[Result]], detector: dict[str, dict[str, float]] | None) -> list[str]:
    """The figure lines, one per measured quantity (medians over the runs)."""
    out = []
    bare = results.get("bare")
    bare_seconds = median([r.seconds for r in bare]) if bare else None
    if bare:
        out.append(f"bare Scrapy crawl: {median([rate(r) for r in bare]):.1f} pages/s "
                   f"({median([r.pages for r in bare]):.0f} pages in {bare_seconds:.2f} s)")
    for config in ("govevidence", "nowarc", "shots"):
        runs = results.get(config)
        if not runs:
            continue
        name = CONFIGS[config]
        fetched = [r for r in runs if r.fetched]
        if fetched:
            # The crawl's own pace: pages over the time to the last one fetched; it then stays
            # open while the judging beside it finds the sources the stored pages link to.
            pace = median([r.pages / r.fetched for r in fetched])
            versus = f", {pace / median([rate(r) for r in bare]):.2f}× bare Scrapy's" if bare else ""
            out.append(f"{name} crawl: {pace:.1f} pages/s ({median([r.pages for r in fetched]):.0f} pages fetched in "
                       f"{median([r.fetched for r in fetched]):.2f} s{versus}; open {median([r.seconds for r in fetched]):.2f} s "
                       f"in all, waiting for its judging)")
        else:
            out.append(f"{name} crawl: {median([rate(r) for r in runs]):.1f} pages/s "
                       f"({median([r.pages for r in runs]):.0f} pages in {median([r.seconds for r in runs]):.2f} s)")
        sealed = median([r.sealed for r in runs])
        ratio = f", {sealed / bare_seconds:.1f}× bare Scrapy's crawl time" if bare_seconds else ""
        out.append(f"{name} sealed: {sealed:.2f} s end-to-end from process start to manifest written{ratio} "
                   f"({median([r.findings for r in runs]):.0f} findings)")
    if detector:
        for stage, label in (("detect", "parse excluded"), ("parse+detect", "parse included")):
            d = detector[stage]
            out.append(f"detector ms/page, {label}: median {d['median_cpu']:.1f} CPU ({d['median_wall']:.1f} wall), "
                       f"mean {d['mean_cpu']:.1f} CPU, p95 {d['p95_cpu']:.1f} CPU over {d['pages']:.0f} pages")
    for config, runs in results.items():
        out.append(f"crawler peak memory, {CONFIGS[config]}: RSS {median([r.peak_rss_mb for r in runs]):.0f} MB "
                   f"(crawler process), {median([r.child_rss_mb for r in runs]):.0f} MB (largest other process of "
                   f"its tree: a judging process), PSS {median([r.tree_pss_mb for r in runs]):.0f} MB (process tree; "
                   f"{median([r.end_pss_mb for r in runs]):.0f} MB after the spider closed)")
    return out
