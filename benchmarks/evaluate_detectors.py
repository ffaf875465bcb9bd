#!/usr/bin/env python
"""Precision and recall of the evidence detectors over a labelled page corpus.

A corpus is a folder with ``labels.json`` (entries with ``file``, ``page_kind`` A–E,
``source_url`` and ``labels`` {indicator: true | false | value string | null}) and the page
files it names. Scoring:

* ``null`` labels are not scored;
* presence labels: ``present`` on a true label is a true positive, on a false label a false
  positive; ``absent`` on a true label is a false negative;
* value labels (a string): ``present`` with the same value (whitespace and case ignored) is a
  true positive; a wrong value counts as a false positive AND a false negative;
* an indicator the detectors do not run for the page kind counts as ``absent``.

Usage: ``python benchmarks/evaluate_detectors.py [--corpus DIR] [--verbose]``
(default corpus: ``tests/evidence/corpus``; ``--corpus ../shared/realpages`` for the shared set).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from evidence import Page, detect  # noqa: E402

DEFAULT_CORPUS = ROOT / "tests" / "evidence" / "corpus"
PAGE_KINDS = {"A": "portal", "B": "service", "C": "opendata", "D": "interaction", "E": "department"}
_WS = re.compile(r"[\s\u00a0\u3000]+")


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


@dataclass
class Report:
    corpus: Path
    pages: int
    per_indicator: dict[str, Tally]
    overall: Tally


def _norm(value: object) -> str:
    return _WS.sub("", str(value)).lower()


def load_labels(corpus: Path) -> list[dict]:
    return json.loads((corpus / "labels.json").read_text(encoding="utf-8"))


def evaluate(corpus: Path, *, now: dt.date | None = None) -> Report:
    """Run the detectors over every labelled page of ``corpus`` and tally the outcomes."""
    per: dict[str, Tally] = defaultdict(Tally)
    entries = load_labels(corpus)
    for entry in entries:
        body = (corpus / entry["file"]).read_bytes()
        kind = PAGE_KINDS[entry["page_kind"]]
        page = Page.from_bytes(entry.get("source_url") or "http://localhost/", body, kind=kind)
        findings = {f.indicator: f for f in detect(page, now=now)}
        for indicator, label in entry["labels"].items():
            if label is None:
                continue
            tally = per[indicator]
            finding = findings.get(indicator)
            found = finding is not None and finding.verdict == "present"
            where = f"{entry['file']}: label={label!r} got={'present ' + repr(finding.value) if found else 'absent'}"
            if label is False:
                if found:
                    tally.fp += 1
                    tally.errors.append(f"FP {where} [{finding.snippet!r} {finding.locator}]")
                else:
                    tally.tn += 1
            elif label is True:
                if found:
                    tally.tp += 1
                else:
                    tally.fn += 1
                    tally.errors.append(f"FN {where}")
            else:
                if found and _norm(finding.value) == _norm(label):
                    tally.tp += 1
                elif found:
                    tally.fp += 1
                    tally.fn += 1
                    tally.errors.append(f"FP+FN {where} [{finding.snippet!r}]")
                else:
                    tally.fn += 1
                    tally.errors.append(f"FN {where}")
    overall = Tally()
    for tally in per.values():
        overall.tp += tally.tp
        overall.fp += tally.fp
        overall.fn += tally.fn
        overall.tn += tally.tn
    return Report(corpus=corpus, pages=len(entries), per_indicator=dict(sorted(per.items())), overall=overall)


def _fmt(value: float | None) -> str:
    return "   -" if value is None else f"{value:.2f}"


def format_report(report: Report, *, verbose: bool = False) -> str:
    lines = [f"corpus: {report.corpus} ({report.pages} pages)", ""]
    lines.append(f"{'indicator':34} {'TP':>4} {'FP':>4} {'FN':>4} {'TN':>4}  {'P':>5} {'R':>5}")
    for name, t in report.per_indicator.items():
        lines.append(f"{name:34} {t.tp:4} {t.fp:4} {t.fn:4} {t.tn:4}  {_fmt(t.precision):>5} {_fmt(t.recall):>5}")
        if verbose:
            lines.extend(f"    {e}" for e in t.errors)
    o = report.overall
    lines.append(f"{'OVERALL':34} {o.tp:4} {o.fp:4} {o.fn:4} {o.tn:4}  {_fmt(o.precision):>5} {_fmt(o.recall):>5}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder with labels.json (default: project corpus)")
    parser.add_argument("--verbose", "-v", action="store_true", help="list every false positive / negative")
    args = parser.parse_args(argv)
    if not (args.corpus / "labels.json").is_file():
        print(f"skipped: no labelled corpus at {args.corpus} (labels.json not found)")
        return 0
    print(format_report(evaluate(args.corpus), verbose=args.verbose))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
