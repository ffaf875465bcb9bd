"""One vocabulary and one table of Chinese labels.

Every status the code can record is a term of ``vocabulary`` (read from the code that
decides it, or by calling it); the database's constraints and the registry's schema spell the
same words; every term has exactly one Chinese label in ``govevidence.labels``.
"""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest
from sqlalchemy import CheckConstraint

import db.models as models
import vocabulary as terms
from evidence import judgement
from govevidence import labels, registry

REPO = Path(__file__).resolve().parent.parent
TUPLES = ("LEVELS", "SOURCE_KINDS", "SOURCE_ORIGINS", "VERDICTS", "SCOPES", "DECISIONS", "RUN_STATUSES",
          "JUDGEMENT_STATUSES", "ANSWER_STATUSES", "FETCH_FAILURE_STATUSES", "JUDGE_STATUSES", "CAPTURE_STATUSES",
          "RENDER_REASONS", "RECORD_ROLES")
GROUPS = ("DOWN_STATUSES", "BLOCKED_STATUSES", "NOTHING_SHOWN_STATUSES", "BROKEN_STATUSES")


def _function(path: Path, name: str) -> ast.FunctionDef:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]
    assert len(found) == 1, name
    return found[0]


def _returned_statuses(function: ast.FunctionDef) -> set[str]:
    """The string constants a function returns, alone or first in a returned tuple."""
    out = set()
    for node in ast.walk(function):
        if not isinstance(node, ast.Return) or node.value is None:
            continue
        values = [node.value] if not isinstance(node.value, ast.IfExp) else [node.value.body, node.value.orelse]
        for value in values:
            first = value.elts[0] if isinstance(value, ast.Tuple) else value
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                out.add(first.value)
    return out


# --- the vocabulary ----------------------------------------------------------------------------
def test_the_vocabulary_imports_nothing_of_the_project_or_its_libraries():
    tree = ast.parse((REPO / "vocabulary.py").read_text(encoding="utf-8"))
    imported = [n.module if isinstance(n, ast.ImportFrom) else a.name
                for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in (n.names if isinstance(n, ast.Import) else [None])]
    assert imported == ["__future__"]


@pytest.mark.parametrize("name", TUPLES)
def test_each_list_of_terms_names_each_term_once(name):
    values = getattr(terms, name)
    assert values and all(isinstance(v, str) and v == v.strip() for v in values)
    assert len(set(values)) == len(values), name


def test_every_status_group_is_made_of_capture_statuses():
    statuses = set(terms.CAPTURE_STATUSES)
    assert statuses == set(terms.ANSWER_STATUSES) | set(terms.FETCH_FAILURE_STATUSES) | set(terms.JUDGE_STATUSES)
    for name in GROUPS:
        group = getattr(terms, name)
        assert group and group <= statuses, (name, sorted(group - statuses))
    assert terms.OK in terms.ANSWER_STATUSES
    # A status means one thing for reachability: down, not allowed to look, or nothing shown.
    assert not terms.DOWN_STATUSES & terms.BLOCKED_STATUSES
    assert not terms.DOWN_STATUSES & terms.NOTHING_SHOWN_STATUSES
    assert not terms.BLOCKED_STATUSES & terms.NOTHING_SHOWN_STATUSES
    assert terms.OK not in terms.DOWN_STATUSES | terms.BLOCKED_STATUSES | terms.NOTHING_SHOWN_STATUSES


def test_the_judgement_uses_the_vocabulary_groups_and_render_reasons():
    for name in ("DOWN_STATUSES", "BLOCKED_STATUSES", "NOTHING_SHOWN_STATUSES"):
        assert getattr(judgement, name) is getattr(terms, name), name
    assert set(judgement.RENDER_NOTES) <= set(terms.RENDER_REASONS)


def test_every_http_status_maps_to_an_answer_status():
    kinds = {judgement.http_status_kind(code) for code in range(100, 600)}
    assert kinds <= set(terms.ANSWER_STATUSES), sorted(kinds - set(terms.ANSWER_STATUSES))
    assert {"ok", "blocked", "http_error", "server_error", "empty", "not_modified", "refused_redirect",
            "challenge"} <= kinds


def test_every_status_the_judgement_returns_is_an_answer_status():
    returned = _returned_statuses(_function(REPO / "evidence" / "judgement.py", "answer_status"))
    assert {"truncated", "unreadable", "empty", "not_html", "challenge", "ok"} <= returned  # the reader sees them
    assert returned <= set(terms.ANSWER_STATUSES), sorted(returned - set(terms.ANSWER_STATUSES))


def test_every_status_the_judge_step_records_is_a_judge_status():
    tree = ast.parse((REPO / "govevidence" / "judge.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_Stored":
            found |= {k.value.value for k in node.keywords if k.arg == "status" and isinstance(k.value, ast.Constant)}
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple) and isinstance(
                node.targets[0], ast.Tuple) and getattr(node.targets[0].elts[0], "id", None) == "status":
            first = node.value.elts[0]
            if isinstance(first, ast.Constant):
                found.add(first.value)
    assert {"not_archived", "archive_error", "too_large", "judge_error"} <= found
    assert found <= set(terms.JUDGE_STATUSES), sorted(found - set(terms.JUDGE_STATUSES))


# --- the same words where they are spelled out -------------------------------------------------
def test_every_layer_takes_the_words_from_the_vocabulary():
    from evidence import catalogue, finding

    assert models.LEVELS is terms.LEVELS and models.SOURCE_KINDS is terms.SOURCE_KINDS
    assert models.VERDICTS is terms.VERDICTS and models.RUN_STATUSES is terms.RUN_STATUSES
    assert models.DECISIONS is terms.DECISIONS and models.JUDGEMENT_STATUSES is terms.JUDGEMENT_STATUSES
    assert catalogue.SOURCE_KINDS is terms.SOURCE_KINDS
    assert (finding.PRESENT, finding.ABSENT, finding.UNKNOWN) == terms.VERDICTS


@pytest.mark.parametrize("table, column, values", [
    (models.Target, "level", terms.LEVELS),
    (models.Source, "kind", terms.SOURCE_KINDS),
    (models.Source, "origin", terms.SOURCE_ORIGINS),
    (models.CrawlRun, "status", terms.RUN_STATUSES),
    (models.Judgement, "status", terms.JUDGEMENT_STATUSES),
    (models.Finding, "verdict", terms.VERDICTS),
    (models.Finding, "scope", terms.SCOPES),
    (models.ReviewDecision, "decision", terms.DECISIONS),
])
def test_each_check_constraint_allows_exactly_the_terms(table, column, values):
    texts = [str(c.sqltext) for c in table.__table__.constraints
             if isinstance(c, CheckConstraint) and str(c.sqltext).startswith(f"{column} IN (")]
    assert texts == [f"{column} IN ({', '.join(repr(v) for v in values)})"]


def test_the_registry_schema_spells_the_same_words():
    assert typing.get_args(registry.SourceKind) == terms.SOURCE_KINDS
    assert typing.get_args(registry.Level) == terms.LEVELS


def test_the_catalogue_and_findings_use_the_vocabulary():
    from evidence import catalogue, finding

    assert catalogue.SOURCE_KINDS is terms.SOURCE_KINDS
    assert (finding.PRESENT, finding.ABSENT, finding.UNKNOWN) == terms.VERDICTS


# --- labels ------------------------------------------------------------------------------------
@pytest.mark.parametrize("names, values", [
    (labels.LEVEL_NAMES, terms.LEVELS),
    (labels.KIND_NAMES, terms.SOURCE_KINDS),
    (labels.ORIGIN_NAMES, terms.SOURCE_ORIGINS),
    (labels.VERDICT_NAMES, terms.VERDICTS),
    (labels.SCOPE_NAMES, terms.SCOPES),
    (labels.DECISION_NAMES, terms.DECISIONS),
    (labels.RUN_STATUS_NAMES, terms.RUN_STATUSES),
    (labels.JUDGEMENT_STATUS_NAMES, terms.JUDGEMENT_STATUSES),
    (labels.STATUS_NAMES, terms.CAPTURE_STATUSES),
    (labels.RENDER_REASON_NAMES, terms.RENDER_REASONS),
    (labels.ROLE_NAMES, terms.RECORD_ROLES),
], ids=lambda v: None)
def test_every_term_has_one_chinese_label_and_nothing_else_has(names, values):
    assert set(names) == set(values), (sorted(set(values) - set(names)), sorted(set(names) - set(values)))
    for term, name in names.items():
        assert name.strip() and any("\u4e00" <= ch <= "\u9fff" for ch in name), (term, name)
    assert len(set(names.values())) == len(names), "two terms share a label"


def test_label_falls_back_to_the_term():
    assert labels.label(labels.VERDICT_NAMES, "present") == "有"
    assert labels.label(labels.STATUS_NAMES, "some_later_status") == "some_later_status"
    assert labels.label(labels.STATUS_NAMES, None) == ""


def test_the_application_takes_its_labels_from_one_module():
    """No module of the application keeps its own table of Chinese names for terms."""
    every_term = {t for name in TUPLES for t in getattr(terms, name)}
    offending = []
    for path in sorted((REPO / "govevidence").rglob("*.py")):
        if path.name == "labels.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict) and node.keys:
                keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
                chinese = [v for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
                           and any("\u4e00" <= ch <= "\u9fff" for ch in v.value)]
                if chinese and set(keys) & every_term:
                    offending.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offending == []
