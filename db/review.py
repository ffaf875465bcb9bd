"""Reviewers' decisions on findings: append-only rows, each chained in the audit log.

A finding is never edited. A reviewer adds a decision — ``confirmed``, ``rejected`` or
``needs_review`` — and may correct the verdict and/or value (``verdict``/``value``; None
leaves that part as it was). The newest decision counts:

- ``confirmed``, ``needs_review``: the finding's verdict and value stand, unless corrected;
- ``rejected``: the corrected verdict and value when given, else ``unknown`` with no value
  (a rejected conclusion says nothing about the site, so it never becomes ``absent``).

Each decision's audit entry says who decided, when, the row's digest and the effective
verdict and value before and after it, so ``govevidence verify`` names an edited, deleted
or slipped-in decision.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import audit
from db.base import utcnow
from db.models import DECISIONS, VERDICTS, Finding, ReviewDecision


def _latest(session: Session, finding_id: int) -> ReviewDecision | None:
    return session.execute(
        select(ReviewDecision).where(ReviewDecision.finding_id == finding_id)
        .order_by(ReviewDecision.decided_at.desc(), ReviewDecision.id.desc()).limit(1)
    ).scalar_one_or_none()


def _apply(finding: Finding, decision: ReviewDecision | None) -> dict[str, Any]:
    if decision is None:
        return {"verdict": finding.verdict, "value": finding.value}
    if decision.decision == "rejected" and decision.verdict is None:
        return {"verdict": "unknown", "value": decision.value}
    return {"verdict": decision.verdict or finding.verdict,
            "value": decision.value if decision.value is not None else finding.value}


def effective_verdict(session: Session, finding_id: int) -> dict[str, Any]:
    """The verdict and value that count for a finding: ``{"verdict": …, "value": …}``."""
    finding = session.get(Finding, finding_id)
    if finding is None:
        raise ValueError(f"finding {finding_id} does not exist")
    return _apply(finding, _latest(session, finding_id))


def record_decision(session: Session, finding_id: int, reviewer: str, decision: str, comment: str | None = None,
                    verdict: str | None = None, value: str | None = None) -> ReviewDecision:
    """Add a reviewer's decision on a finding and chain it in the audit log (in the caller's
    transaction). Raises ValueError for an unknown finding, decision or verdict."""
    finding = session.get(Finding, finding_id)
    if finding is None:
        raise ValueError(f"finding {finding_id} does not exist")
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise ValueError("a decision needs the reviewer's name")
    if decision not in DECISIONS:
        raise ValueError(f"unknown decision {decision!r}; one of {', '.join(DECISIONS)}")
    if verdict is not None and verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; one of {', '.join(VERDICTS)}")
    if decision == "confirmed" and verdict is not None and verdict != finding.verdict:
        raise ValueError("a confirmation cannot change the verdict; reject the finding with the corrected verdict")
    before = _apply(finding, _latest(session, finding_id))
    row = ReviewDecision(finding_id=finding_id, reviewer=reviewer, decided_at=utcnow(), decision=decision,
                         comment=comment, verdict=verdict, value=value)
    session.add(row)
    session.flush()
    after = _apply(finding, row)
    audit.append(session, reviewer, "review.decision", "review_decisions", row.id, {
        "run": finding.run_id, "finding": finding_id, "decision": decision, "at": row.decided_at.isoformat(),
        "sha256": audit.row_digest(ReviewDecision.__table__, row), "before": before, "after": after,
    })
    return row
