"""Steps over a run's stored captures: roll the page findings up per source and per
target, and seal the run (roll-ups, run row, manifest, RFC 3161 time-stamp).

The crawl records captures and page findings; the roll-ups are made from what is stored,
by the crawl at its end or again later (``govevidence judge RUN`` rolls up its own
findings), so the same code answers both.

``finish_run`` is the end of a crawl: the pipeline calls it (``GOVEVIDENCE_RUN_FINISHERS``
in ``crawler/settings.py``) once the last captures are stored and the WARC files closed.
``seal_unsealed`` (``govevidence seal RUN``) does the same for a run whose crawl ended
without it — killed, or closed with no finisher: it rolls up (unless done), writes the
manifest and time-stamps, and only ever for a run that has no manifest yet. A killed run
stays ``interrupted`` / ``killed`` once sealed — it did not finish, and its roll-ups are
over what was stored before the kill; its stats say ``sealed`` (when, by what) and its
manifest marks the torn WARC files, which ``govevidence verify`` keeps naming.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db import audit
from db.base import utcnow
from db.findings import finding_row, insert_findings, json_safe, of_judgement
from db.models import AuditEntry, CrawlRun, Finding, PageCapture, Source
from db.runs import close_run
from govevidence import anchor
from govevidence.aggregate import SourceCrawl, SourceTally, aggregate_target
from govevidence.manifest import run_warc_files, verify_warc_file, write_manifest

__all__ = ["SealError", "SealResult", "anchor_run", "finish_run", "rollup", "seal_unsealed"]

logger = logging.getLogger(__name__)


def rollup(session: Session, run_id: int, *, judgement_id: int | None = None, actor: str = "crawler",
           statuses: dict[int, str] | None = None, catalogue: Any = None) -> dict[str, int]:
    """Source and target findings of a run from its page findings (those of one judgement, or
    the crawl's own when ``judgement_id`` is None); inserted, chained, counted. A judgement
    passes the status it gave each capture (``statuses``, by capture id) and its catalogue."""
    from evidence import indicators_for  # evidence has no Scrapy/SQLAlchemy imports; loaded lazily

    captures = session.execute(
        select(PageCapture.id, PageCapture.source_id, PageCapture.requested_url, PageCapture.error_status,
               PageCapture.http_status, PageCapture.depth, PageCapture.referer)
        .where(PageCapture.run_id == run_id).order_by(PageCapture.depth, PageCapture.id)
    ).mappings().all()
    if statuses:
        captures = [{**c, "error_status": statuses.get(c["id"], c["error_status"])} for c in captures]
    sources = {s.id: s for s in session.execute(
        select(Source).where(Source.id.in_({c["source_id"] for c in captures}))).scalars()}
    crawls: dict[int, SourceCrawl] = {}
    for capture in captures:
        source = sources[capture["source_id"]]
        crawl = crawls.setdefault(source.id, SourceCrawl(source.id, source.target_id, source.kind, None))
        crawl.captures.append(capture)
        if capture["depth"] == 0 and crawl.home_status != "ok":
            crawl.home_status = capture["error_status"]
    tallies = {source_id: SourceTally(crawl) for source_id, crawl in crawls.items()}
    # The page findings stream by in page order (shallowest first), a few thousand rows at a
    # time: a run of any size is rolled up in the same memory.
    findings = session.execute(
        select(Finding.id, Finding.indicator, Finding.verdict, Finding.value, Finding.url, Finding.href,
               Finding.locator, Finding.snippet, Finding.checked, Finding.capture_id, Finding.source_id,
               Finding.detector_version, Finding.screenshot, Finding.evidence_image,
               Finding.evidence_image_record_id)
        .where(Finding.run_id == run_id, Finding.scope == "page", of_judgement(judgement_id))
        .join(PageCapture, PageCapture.id == Finding.capture_id)
        .order_by(PageCapture.depth, Finding.id)
        .execution_options(yield_per=5000)
    ).mappings()
    for row in findings:
        tallies[row["source_id"]].add(row)
    source_rows: list[dict[str, Any]] = []
    # Portal first: a target's identifiers and dates are read from its portal where it shows them.
    for crawl in sorted(crawls.values(), key=lambda c: (c.kind != "portal", c.source_id)):
        names = [i.id for i in (catalogue.for_kind(crawl.kind) if catalogue is not None else indicators_for(crawl.kind))]
        source_rows.extend(tallies[crawl.source_id].rows(names))
    target_rows: list[dict[str, Any]] = []
    for target_id in {c.target_id for c in crawls.values()}:
        target_rows.extend(aggregate_target(target_id, [r for r in source_rows if r["target_id"] == target_id]))
    rows = [finding_row(r, run_id=run_id, target_id=r["target_id"], source_id=r["source_id"], scope=r["scope"],
                        judgement_id=judgement_id)
            for r in source_rows + target_rows]
    digests = insert_findings(session, rows)
    data: dict[str, Any] = {"run": run_id, "findings": {str(i): d for i, d in digests}}
    if judgement_id is not None:
        data["judgement"] = judgement_id
    audit.append(session, actor, "findings.rollup", "crawl_runs", run_id, data)
    return {"govevidence/source_findings": len(source_rows), "govevidence/target_findings": len(target_rows)}


# --- sealing --------------------------------------------------------------------------
def anchor_run(session_factory: sessionmaker, run_id: int, archive_root: Path, settings: Any = None) -> str | None:
    """Time-stamp a sealed run with the TSA, if one is configured (``GOVEVIDENCE_TSA_URL`` in the
    settings or the environment); never fails the run: a failure is recorded as
    ``anchor: failed (…)`` in its stats. Returns what was recorded, None without a TSA."""
    tsa_url, ca_file, timeout = anchor.tsa_settings(settings)
    if not tsa_url:
        return None
    try:
        with session_factory.begin() as session:
            token = anchor.seal_run(session, run_id, archive_root, tsa_url, ca_file, timeout)
            status = f"rfc3161 {token.token_file} ({token.gen_time.isoformat() if token.gen_time else 'no time'})"
        logger.info("Run %s: time-stamped, %s", run_id, status)
    except Exception as exc:  # an unreachable or broken TSA must not lose the run
        reason = str(exc) if isinstance(exc, anchor.AnchorError) else f"{type(exc).__name__}: {exc}"
        status = f"failed ({reason})"
        logger.warning("Run %s: anchor failed (%s)", run_id, reason)
    with session_factory.begin() as session:
        run = session.get(CrawlRun, run_id)
        run.stats = {**(run.stats or {}), "anchor": status}
    return status


def finish_run(session_factory: sessionmaker, run_id: int, archive_root: Path, settings: Any = None, *,
               reason: str, stats: dict[str, Any]) -> dict[str, Any]:
    """The end of a crawl run (a ``GOVEVIDENCE_RUN_FINISHERS`` entry): roll the page findings
    up and close the run's row (status from Scrapy's finish ``reason``, the crawl ``stats`` and
    the roll-up counts) in one transaction, write the manifest, then time-stamp it."""
    with session_factory.begin() as session:
        counts = rollup(session, run_id)
        close_run(session, run_id, reason, {**stats, **counts}, counts)
    with session_factory.begin() as session:
        manifest = write_manifest(session, run_id, archive_root)
    logger.info("Run %s: manifest %s", run_id, manifest)
    return {**counts, "manifest": manifest, "anchor": anchor_run(session_factory, run_id, archive_root, settings)}


class SealError(Exception):
    """A run cannot be sealed; the message says why (one line)."""


@dataclass
class SealResult:
    run_id: int
    status: str
    finish_reason: str | None
    manifest: Path
    already_sealed: bool = False
    rolled_up: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    recovered_dead_run: bool = False
    torn: list[str] = field(default_factory=list)
    anchor: str | None = None


def _has_rollup(session: Session, run_id: int) -> bool:
    """Whether the crawl's own roll-up of a run (not a judgement's) is stored."""
    entries = session.execute(select(AuditEntry.data).where(
        AuditEntry.action == "findings.rollup", AuditEntry.entity == "crawl_runs", AuditEntry.entity_id == run_id)
    ).scalars()
    return any("judgement" not in (data or {}) for data in entries)


def seal_unsealed(session_factory: sessionmaker, run_id: int, archive_root: Path, settings: Any = None, *,
                  actor: str = "govevidence seal") -> SealResult:
    """Roll up, write the manifest of and time-stamp a run whose crawl ended without it.

    A run with a manifest is left as it is (``already_sealed``). A run still ``running``
    whose process on this host is gone is first closed as the next crawl would close it
    (``interrupted`` / ``killed``, its WARC files re-indexed); one that may still be running
    raises SealError. The manifest marks each torn WARC file with its problems.
    """
    from crawler.recovery import is_dead, recover_dead_run

    with session_factory.begin() as session:
        run = session.get(CrawlRun, run_id)
        if run is None:
            raise SealError(f"运行 {run_id} 不存在")
        entry = anchor.manifest_entry(session, run_id)
        if entry is not None:
            return SealResult(run_id, run.status, run.finish_reason, archive_root / entry.data["path"],
                              already_sealed=True)
        problems: dict[str, list[str]] | None = None
        recovered = False
        if run.status == "running":
            if not is_dead(run):
                host = run.stats or {}
                raise SealError(f"运行 {run_id} 仍在抓取中（主机 {host.get('hostname', '?')}，进程 {host.get('pid', '?')}）"
                                f"：结束后才能封存")
            problems = recover_dead_run(session, run, archive_root, actor=actor)
            recovered = True
    with session_factory() as session:
        rolled_up = not _has_rollup(session, run_id)
    counts: dict[str, Any] = {}
    if rolled_up:
        # Captures stored before the crawl's judging reached them get their findings first.
        from govevidence.judging import judge_left

        left, made = judge_left(session_factory, run_id, archive_root)
        if left:
            counts.update({"govevidence/judged_at_seal": left, "govevidence/judged_at_seal_findings": made})
    with session_factory.begin() as session:
        run = session.get(CrawlRun, run_id)
        if rolled_up:
            counts.update(rollup(session, run_id, actor=actor))
        sealed = {"at": utcnow().isoformat(), "by": actor}
        run.stats = json_safe({**(run.stats or {}), **counts, "sealed": sealed})
        audit.append(session, actor, "run.seal", "crawl_runs", run_id,
                     {"run": run_id, "status": run.status, "rolled_up": rolled_up, **counts})
        status, finish_reason = run.status, run.finish_reason
    if problems is None:  # the files as they are now (a dead run closed by an earlier crawl)
        problems = {}
        for path in run_warc_files(archive_root, run_id):
            label = str(path.relative_to(archive_root))
            problems[label] = verify_warc_file(path, label)
    torn = {label: found for label, found in problems.items() if found}
    with session_factory.begin() as session:
        manifest = write_manifest(session, run_id, archive_root, torn=torn)
    logger.info("Run %s: sealed, manifest %s", run_id, manifest)
    return SealResult(run_id, status, finish_reason, manifest, rolled_up=rolled_up, counts=counts,
                      recovered_dead_run=recovered, torn=[p for found in torn.values() for p in found],
                      anchor=anchor_run(session_factory, run_id, archive_root, settings))
