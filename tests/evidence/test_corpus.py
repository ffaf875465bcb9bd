"""The labelled corpus: evaluation thresholds, locators on real markup, corpus hygiene."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from evidence import Page, detect, discover_sources, indicators_for

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
REALPAGES = ROOT.parent / "shared" / "realpages"
KINDS = {"A": "portal", "B": "service", "C": "opendata", "D": "interaction", "E": "department"}


def _evaluator():
    spec = importlib.util.spec_from_file_location("evaluate_detectors", ROOT / "benchmarks" / "evaluate_detectors.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _assert_thresholds(report):
    overall = report.overall
    assert overall.precision >= 0.95, overall
    assert overall.recall >= 0.90, overall
    # Per indicator: precision 0.85 where it made enough calls for a rate to mean something;
    # with fewer than 10 `present` calls, at most one of them wrong.
    weak = {name: (t.tp, t.fp) for name, t in report.per_indicator.items()
            if (t.tp + t.fp >= 10 and t.precision < 0.85) or (t.tp + t.fp < 10 and t.fp > 1)}
    assert not weak, weak


def test_project_corpus_meets_targets():
    report = _evaluator().evaluate(CORPUS)
    assert report.pages >= 30
    _assert_thresholds(report)


def test_shared_realpages_meet_targets():
    if not (REALPAGES / "labels.json").is_file():
        pytest.skip("../shared/realpages (real pages for measurement) is not present next to the checkout")
    _assert_thresholds(_evaluator().evaluate(REALPAGES))


def test_evaluator_skips_missing_corpus(tmp_path, capsys):
    assert _evaluator().main(["--corpus", str(tmp_path / "absent")]) == 0
    assert "skipped" in capsys.readouterr().out


def _entries():
    return json.loads((CORPUS / "labels.json").read_text(encoding="utf-8"))


def test_corpus_labels_schema_and_coverage():
    entries = _entries()
    positives: dict[str, int] = {}
    negatives: dict[str, int] = {}
    for entry in entries:
        assert {"file", "page_kind", "source_url", "labels"} <= set(entry)
        body = (CORPUS / entry["file"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], entry["file"]
        for indicator, label in entry["labels"].items():
            if label is None:
                continue
            bucket = negatives if label is False else positives
            bucket[indicator] = bucket.get(indicator, 0) + 1
    detectable = {i.id for k in KINDS.values() for i in indicators_for(k) if not i.crawler_only}
    for indicator in detectable:
        assert positives.get(indicator, 0) >= 3, indicator
        assert negatives.get(indicator, 0) >= 3, indicator


def test_locators_and_snippets_on_every_corpus_page():
    for entry in _entries():
        body = (CORPUS / entry["file"]).read_bytes()
        page = Page.from_bytes(entry["source_url"], body, kind=KINDS[entry["page_kind"]])
        for finding in detect(page):
            if finding.verdict != "present":
                assert finding.locator is None and finding.checked
                continue
            matched = page.tree.cssselect(finding.locator)
            assert len(matched) == 1, (entry["file"], finding)
            element = matched[0]
            assert finding.snippet == (page.visible_text(element) or page.label_of(element))[:200]
            if finding.href:
                assert finding.href.startswith(("http://", "https://"))
        for source in discover_sources(page):
            assert len(page.tree.cssselect(source.locator)) == 1
            assert source.url.startswith(("http://", "https://"))
