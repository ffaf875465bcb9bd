"""The detectors give exactly the findings recorded in ``golden_findings.json``.

The golden file was written from the detectors before they were rebuilt around the page index
(``findings_dump.py golden --write --from-dump``); every field of every finding and every
discovered source of the corpus and sandbox pages is compared through its digest. Pages whose
bytes changed since are not compared (they are listed in the failure message of the count check
when too many changed).
"""

from __future__ import annotations

import json

import findings_dump
from evidence import Page, detect, discover_sources


def test_findings_equal_the_golden_file():
    stored = json.loads(findings_dump.GOLDEN.read_text(encoding="utf-8"))
    assert stored["indicators"] == findings_dump.indicator_order(), "catalogue changed: rewrite the golden file"
    current = findings_dump.golden_now()
    differing, changed = findings_dump.check_golden(stored, current)
    details = {
        name: (stored["pages"][name]["verdicts"], current["pages"][name]["verdicts"]) for name in differing
    }
    assert not differing, f"findings differ from the golden file (golden, now verdicts): {details}"
    corpus = [name for name in stored["pages"] if name.startswith("corpus/")]
    compared = len(set(stored["pages"]) & set(current["pages"])) - len([n for n in changed if n in stored["pages"]])
    assert len(corpus) >= 60 and compared >= len(corpus), changed


def test_golden_digest_sees_a_changed_field():
    """The digests cover every field: one changed snippet character changes the entry."""
    name, url, body, _kind = next(findings_dump.labelled_pages(findings_dump.CORPUS, "corpus"))
    page = Page.from_bytes(url, body, kind="portal")
    findings = [f.to_dict() for f in detect(page, now=findings_dump.NOW)]
    sources = [s.to_dict() for s in discover_sources(page)]
    reference = findings_dump.golden_of(body, findings, sources)
    present = next(f for f in findings if f["verdict"] == "present")
    present["snippet"] += "x"
    assert findings_dump.golden_of(body, findings, sources)["findings"] != reference["findings"]
    assert findings_dump.golden_of(body, findings, sources[1:])["sources"] != reference["sources"] or not sources


def test_dump_compare_names_the_field(tmp_path):
    name, url, body, kind = next(findings_dump.labelled_pages(findings_dump.CORPUS, "corpus"))
    before = {name: findings_dump.dump_page(url, body, kind)}
    after = json.loads(json.dumps(before))
    finding = next(f for f in after[name]["by_kind"]["portal"] if f["verdict"] == "present")
    finding["locator"] = "html > body"
    diffs = findings_dump.compare(before, after)
    assert len(diffs) == 1 and finding["indicator"] in diffs[0] and "locator" in diffs[0]
    assert findings_dump.compare(before, before) == []
