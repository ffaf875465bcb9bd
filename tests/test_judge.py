"""Judging after the crawl: ``govevidence judge RUN`` over the archived bytes decides as the crawl did.

One sandbox target (东海省: gzip-served pages, a source drawn by the browser) is crawled once;
the run is then judged again with the packaged catalogue (findings equal to the crawl's), and
with a copy whose accessibility keywords match nothing (that indicator changes, nothing else),
and verify checks the old and new findings, and names a tampered judged row.
"""

from __future__ import annotations

import gzip
import json
import tracemalloc
from collections import Counter
from pathlib import Path

import brotli
import pytest
import yaml
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from warcio.archiveiterator import ArchiveIterator

from db.models import Finding, Judgement, PageCapture
from db.session import get_engine
from evidence.catalogue import CATALOGUE_PATH
from govevidence.cli import main
from govevidence.judge import _decode
from tests.test_archive import _crawl

pytestmark = pytest.mark.slow

CHANGED = "site.accessibility"
# derived_from_id names a page finding of the same judgement: compared through what it names (_bases).
COMPARED = [c.name for c in Finding.__table__.columns
            if c.name not in ("id", "created_at", "judgement_id", "derived_from_id")]


@pytest.fixture(scope="module")
def crawled(sandbox_registry, tmp_path_factory):
    folder = tmp_path_factory.mktemp("judge")
    _crawl(sandbox_registry, folder)
    return folder


@pytest.fixture
def env(crawled, monkeypatch):
    monkeypatch.setenv("GOVEVIDENCE_DATA_DIR", str(crawled))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{crawled / 'db.sqlite3'}")
    return crawled


def _session(folder: Path) -> Session:
    return Session(get_engine(f"sqlite:///{folder / 'db.sqlite3'}"))


def _key(finding: Finding) -> tuple[str, ...]:
    return tuple(json.dumps(getattr(finding, name), sort_keys=True, ensure_ascii=False, default=str)
                 for name in COMPARED)


def _findings(session: Session, judgement: int | None, exclude: str | None = None) -> Counter:
    clause = Finding.judgement_id.is_(None) if judgement is None else Finding.judgement_id == judgement
    rows = session.execute(select(Finding).where(Finding.run_id == 1, clause)).scalars()
    return Counter(_key(f) for f in rows if f.indicator != exclude)


def _bases(session: Session, judgement: int | None) -> Counter:
    """Each roll-up with the page finding it stands on (its key, or None), of one judgement."""
    clause = Finding.judgement_id.is_(None) if judgement is None else Finding.judgement_id == judgement
    rows = {f.id: f for f in session.execute(select(Finding).where(Finding.run_id == 1, clause)).scalars()}
    out = Counter()
    for f in rows.values():
        if f.scope != "page":
            basis = rows.get(f.derived_from_id) if f.derived_from_id else None
            assert f.derived_from_id is None or (basis is not None and basis.scope == "page"), f.id
            out[(_key(f), _key(basis) if basis else None)] += 1
    return out


def _judge(capsys, *extra: str) -> dict:
    assert main(["judge", "1", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_judge_equals_crawl_then_changed_catalogue_then_tamper(env, capsys, tmp_path):
    first = _judge(capsys)
    assert first["judgement"] == 1 and first["status_changed"] == []
    with _session(env) as session:
        captures = session.execute(select(PageCapture).where(PageCapture.run_id == 1)).scalars().all()
        # The run holds what this must cover: rendered captures and gzip-served answers.
        assert any(c.rendered and c.render_reason == "source_marked" for c in captures)
        gzipped = 0
        for c in captures:
            if c.warc_file and not c.rendered:
                with open(env / c.warc_file, "rb") as fh:
                    fh.seek(c.warc_offset)
                    record = next(iter(ArchiveIterator(fh)))
                    gzipped += (record.http_headers.get_header("Content-Encoding") or "") == "gzip"
        assert gzipped >= 10
        assert first["from_archive"] == sum(1 for c in captures if c.warc_file)
        crawl = _findings(session, None)
        judged = _findings(session, 1)
        assert sum(judged.values()) > 1000
        assert judged == crawl  # every field, page and roll-up scopes, pictures included
        assert _bases(session, 1) == _bases(session, None)  # each roll-up on the same page finding
        assert any(f.evidence_image_record_id for f in session.execute(
            select(Finding).where(Finding.judgement_id == 1, Finding.scope == "page")).scalars())
        assert any(f.evidence_image for f in session.execute(
            select(Finding).where(Finding.judgement_id == 1, Finding.scope == "page")).scalars())
        judgement = session.get(Judgement, 1)
        assert judgement.status == "finished" and len(judgement.catalogue_sha256) == 64

    # A catalogue whose accessibility keywords match nothing.
    data = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    entry = next(i for i in data["indicators"] if i["id"] == CHANGED)
    entry["rules"]["link_texts"] = ["不会出现的入口词"]
    entry["rules"]["text_patterns"] = ["^不会出现的入口词$"]
    changed = tmp_path / "catalogue.yaml"
    changed.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    second = _judge(capsys, "--catalogue", str(changed))
    assert second["judgement"] == 2
    with _session(env) as session:
        assert _findings(session, 2, exclude=CHANGED) == _findings(session, None, exclude=CHANGED)
        before = session.execute(select(Finding.verdict).where(
            Finding.judgement_id.is_(None), Finding.indicator == CHANGED, Finding.scope == "target")).scalar_one()
        after = session.execute(select(Finding.verdict).where(
            Finding.judgement_id == 2, Finding.indicator == CHANGED, Finding.scope == "target")).scalar_one()
        assert (before, after) == ("present", "absent")
        assert not session.execute(select(Finding).where(
            Finding.judgement_id == 2, Finding.indicator == CHANGED, Finding.verdict == "present")).first()
        assert session.get(Judgement, 2).catalogue_sha256 != session.get(Judgement, 1).catalogue_sha256

    # Readers show the newest judgement unless told otherwise.
    assert main(["findings", "--run", "1", "--json", "--indicator", CHANGED]) == 0
    assert [(r["verdict"], r["judgement"]) for r in json.loads(capsys.readouterr().out)] == [("absent", 2)]
    assert main(["findings", "--run", "1", "--json", "--indicator", CHANGED, "--judgement", "crawl"]) == 0
    assert [(r["verdict"], r["judgement"]) for r in json.loads(capsys.readouterr().out)] == [("present", None)]

    assert main(["verify", "1"]) == 0, capsys.readouterr().out
    capsys.readouterr()

    with _session(env) as session:
        victim = session.execute(select(Finding).where(
            Finding.judgement_id == 2, Finding.scope == "page", Finding.indicator == "site.icp_record",
            Finding.verdict == "present")).scalars().first()
        session.execute(update(Finding).where(Finding.id == victim.id).values(value="伪ICP备00000000号"))
        session.commit()
        victim_id = victim.id
    assert main(["verify", "1"]) == 1
    out = capsys.readouterr().out
    assert f"findings {victim_id} (site.icp_record, page): row altered" in out


def test_hostile_answers_judged_alike(hostile_crawl, monkeypatch, capsys):
    """Every hostile case (bombs, cut streams, challenges, garbage, refused redirects …) read
    back from the archive gets the status and the findings the crawl gave it."""
    folder = Path(hostile_crawl.url.removeprefix("sqlite:///")).parent
    monkeypatch.setenv("GOVEVIDENCE_DATA_DIR", str(folder))
    monkeypatch.setenv("DATABASE_URL", hostile_crawl.url)
    result = _judge(capsys)
    assert result["status_changed"] == []
    assert {"challenge", "unreadable", "truncated", "empty", "too_large"} <= set(result["statuses"])
    with hostile_crawl.session() as session:
        assert _findings(session, result["judgement"]) == _findings(session, None)


def test_unknown_run_and_bad_catalogue_say_so(env, capsys, tmp_path):
    assert main(["judge", "99"]) == 2
    assert "运行 99 不存在" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("indicators: [{id: nope}]\n", encoding="utf-8")
    assert main(["judge", "1", "--catalogue", str(bad)]) == 2
    assert "指标目录无效" in capsys.readouterr().err


@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_decompression_bomb_stays_small(coding):
    size, limit = 128 * 1024 * 1024, 20 * 1024 * 1024
    zeros = b"\0" * (1 << 20)
    if coding == "gzip":
        compressor, parts = __import__("zlib").compressobj(9, wbits=31), []
        for _ in range(size >> 20):
            parts.append(compressor.compress(zeros))
        raw = b"".join(parts) + compressor.flush()
    else:
        raw = brotli.compress(b"\0" * size, quality=1)
    tracemalloc.start()
    try:
        assert _decode(raw, [coding], limit) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, peak
    page = b"<html><body>" + "东海省".encode() * 1000 + b"</body></html>"
    body = gzip.compress(page) if coding == "gzip" else brotli.compress(page)
    assert _decode(body, [coding], limit) == page


def test_bodies_are_decoded_as_the_crawl_decoded_them():
    """zstd, which Scrapy asks for and undoes, is undone by the judge too; a bomb is refused."""
    import gzip

    from backports import zstd

    from govevidence.judge import _decode

    page = "<html><body><p>网站标识码：9100000001</p></body></html>".encode("utf-8")
    assert _decode(zstd.compress(page), ["zstd"], 1 << 20) == page
    assert _decode(gzip.compress(zstd.compress(page)), ["zstd", "gzip"], 1 << 20) == page
    assert _decode(gzip.compress(b"\0" * (4 << 20)), ["gzip"], 1 << 20) is None
