"""Read-side queries over the evidence database, shared by the CLI and exports.

A run's findings are those of its newest finished judgement (``govevidence judge RUN``,
highest id), or the crawl's own when it has none; ``judgement=N`` picks one judgement and
``judgement="crawl"`` the findings made during the crawl.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, false, func, or_, select
from sqlalchemy.orm import Session

from db.findings import of_judgement
from db.models import CrawlRun, Finding, Judgement, PageCapture, Source, Target

CRAWL = "crawl"


class JudgementError(ValueError):
    """The judgement asked for does not exist in the run."""


def newest_judgement(session: Session, run_id: int) -> int | None:
    """The id of the run's newest finished judgement, None when it has none."""
    return session.execute(
        select(func.max(Judgement.id)).where(Judgement.run_id == run_id, Judgement.status == "finished")).scalar()


def chosen_judgement(session: Session, run_id: int, judgement: int | str | None = None) -> int | None:
    """Which findings of a run to read: a judgement's id, or None for the crawl's own."""
    if judgement is None:
        return newest_judgement(session, run_id)
    if judgement == CRAWL:
        return None
    try:
        wanted = int(judgement)
    except (TypeError, ValueError):
        raise JudgementError(f"判定应为编号或 crawl，而不是 {judgement!r}") from None
    row = session.get(Judgement, wanted)
    if row is None or row.run_id != run_id:
        raise JudgementError(f"运行 {run_id} 没有判定 {wanted}")
    return wanted


def judgement_filter(session: Session, run_id: int, judgement: int | str | None = None) -> Any:
    """A WHERE clause picking the run's findings of the chosen judgement (see the module doc)."""
    return of_judgement(chosen_judgement(session, run_id, judgement))


def runs(session: Session, limit: int = 20) -> list[dict[str, Any]]:
    pages = (
        select(PageCapture.run_id, func.count().label("pages"),
               func.sum(case((PageCapture.error_status != "ok", 1), else_=0)).label("failed"))
        .group_by(PageCapture.run_id).subquery()
    )
    found = select(Finding.run_id, func.count().label("findings")).group_by(Finding.run_id).subquery()
    query = (
        select(CrawlRun, pages.c.pages, pages.c.failed, found.c.findings)
        .outerjoin(pages, pages.c.run_id == CrawlRun.id)
        .outerjoin(found, found.c.run_id == CrawlRun.id)
        .order_by(CrawlRun.id.desc()).limit(limit)
    )
    out = []
    for run, n_pages, n_failed, n_findings in session.execute(query):
        out.append({
            "id": run.id, "spider": run.spider, "status": run.status, "finish_reason": run.finish_reason,
            "started_at": run.started_at.isoformat(), "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "pages": n_pages or 0, "failed_pages": n_failed or 0, "findings": n_findings or 0,
        })
    return out


def findings(session: Session, run_id: int, *, scope: str = "target", target_code: str | None = None,
             indicator: str | None = None, judgement: int | str | None = None) -> list[dict[str, Any]]:
    query = (
        select(Finding, Target.code, Target.name, Source.kind, Source.url)
        .join(Target, Target.id == Finding.target_id)
        .outerjoin(Source, Source.id == Finding.source_id)
        .where(Finding.run_id == run_id, Finding.scope == scope, judgement_filter(session, run_id, judgement))
        .order_by(Target.code, Finding.indicator, Finding.id)
    )
    if target_code:
        query = query.where(Target.code == target_code)
    if indicator:
        query = query.where(Finding.indicator == indicator)
    out = []
    for finding, code, name, kind, source_url in session.execute(query):
        out.append({
            "id": finding.id, "target": code, "target_name": name, "source_kind": kind, "source_url": source_url,
            "scope": finding.scope, "indicator": finding.indicator, "verdict": finding.verdict, "value": finding.value,
            "url": finding.url, "href": finding.href, "locator": finding.locator, "snippet": finding.snippet,
            "checked": finding.checked, "capture_id": finding.capture_id, "details": finding.details,
            "detector_version": finding.detector_version, "judgement": finding.judgement_id,
        })
    return out


def target_summary(session: Session, run_ids: list[int]) -> list[dict[str, Any]]:
    """One row per target crawled in the given runs: pages, failures, verdict counts, key values
    (the findings of each run's newest judgement)."""
    chosen = or_(false(), *(and_(Finding.run_id == run_id, judgement_filter(session, run_id)) for run_id in run_ids))
    pages = session.execute(
        select(Source.target_id, func.count(), func.sum(case((PageCapture.error_status != "ok", 1), else_=0)))
        .join(Source, Source.id == PageCapture.source_id)
        .where(PageCapture.run_id.in_(run_ids)).group_by(Source.target_id)
    ).all()
    page_counts = {t: (n or 0, f or 0) for t, n, f in pages}
    rows = session.execute(
        select(Target.id, Target.code, Target.name, Target.level, Finding.indicator, Finding.verdict, Finding.value)
        .join(Finding, Finding.target_id == Target.id)
        .where(Finding.run_id.in_(run_ids), Finding.scope == "target", chosen)
        .order_by(Target.code)
    ).all()
    summary: dict[int, dict[str, Any]] = {}
    for target_id, code, name, level, indicator, verdict, value in rows:
        entry = summary.setdefault(target_id, {
            "code": code, "name": name, "level": level,
            "pages": page_counts.get(target_id, (0, 0))[0], "failed_pages": page_counts.get(target_id, (0, 0))[1],
            "present": 0, "absent": 0, "unknown": 0, "values": {},
        })
        entry[verdict] += 1
        if verdict == "present" and value is not None:
            entry["values"][indicator] = value
        if indicator == "site.reachable":
            entry["reachable"] = verdict
    return sorted(summary.values(), key=lambda e: (e["level"] != "province", e["code"]))


def sources(session: Session, *, target_code: str | None = None, discovered_only: bool = False) -> list[dict[str, Any]]:
    """Known sources of targets; discovered ones say where and under which anchor text."""
    query = select(Source, Target.code, Target.name).join(Target, Target.id == Source.target_id) \
        .order_by(Target.code, Source.kind, Source.url)
    if target_code:
        query = query.where(Target.code == target_code)
    if discovered_only:
        query = query.where(Source.origin == "discovered")
    return [
        {"target": code, "target_name": name, "kind": s.kind, "url": s.url, "name": s.name, "origin": s.origin,
         "verified": s.verified, "anchor_text": s.anchor_text, "discovered_on": s.discovered_on,
         "first_seen_run": s.first_seen_run_id}
        for s, code, name in session.execute(query)
    ]
