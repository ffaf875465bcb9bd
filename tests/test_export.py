"""Exports: the WACZ of a run and the evidence pack of a target, checked with the real tools.

The module fixture crawls target 910000 of the sandbox twice as ``scrapy crawl`` subprocesses:
run 1 in full, run 2 only the sources' home pages without screenshots, so that run 2's
responses are revisits of records in run 1's WARC file. The WACZ files are checked with
``wacz validate`` and the packs' WARC with ``warcio check``, both the installed scripts.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from warcio.archiveiterator import ArchiveIterator

from db.models import Finding, PageCapture, Target, WarcRecord
from db.session import get_engine
from govevidence.crawl import SANDBOX_SETTINGS, scrapy_crawl
from govevidence.export import ExportError, export_pack, export_wacz
from govevidence.manifest import verify_run
from tests.conftest import BACKENDS, fresh_database

pytestmark = pytest.mark.slow

CODE = "910000"
CRAWL_SETTINGS = {**SANDBOX_SETTINGS, "DOWNLOAD_TIMEOUT": "2"}
HOME_PAGES_ONLY = {"GOVEVIDENCE_PORTAL_MAX_DEPTH": "0", "GOVEVIDENCE_SOURCE_MAX_DEPTH": "0",
                   "GOVEVIDENCE_SCREENSHOTS": "False"}
SCRIPTS = Path(sys.executable).parent
PACK_FILES = {"README.txt", "SHA256SUMS", "findings.csv", "findings.json", "records.csv", "evidence.warc.gz"}


@dataclass
class Exported:
    url: str
    root: Path
    wacz: dict[str, Path]
    packs: dict[int, Path]

    def session(self) -> Session:
        return Session(get_engine(self.url))


@pytest.fixture(scope="module", params=BACKENDS)
def exported(request, sandbox_registry, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"export-{request.param}")
    root = folder / "data"
    with fresh_database(request.param, folder) as url:
        env = {"DATABASE_URL": url, "GOVEVIDENCE_DATA_DIR": str(root)}
        for extra in ({}, HOME_PAGES_ONLY):
            result = scrapy_crawl("province_portals", args={"registry": str(sandbox_registry), "targets": CODE},
                                  settings={**CRAWL_SETTINGS, **extra}, env=env, capture=True, timeout=300)
            assert result.returncode == 0, result.stderr[-3000:]
        out = folder / "out"
        with Session(get_engine(url)) as session:
            wacz = {
                "run1": export_wacz(session, 1, root, out / "run-1.wacz"),
                "run2": export_wacz(session, 2, root, out / "run-2.wacz"),
                "run2-records": export_wacz(session, 2, root, out / "run-2-records.wacz", revisit_originals="records"),
            }
            packs = {run: export_pack(session, run, CODE, root, out / f"pack-{run}.zip") for run in (1, 2)}
        yield Exported(url, root, wacz, packs)


# --- helpers -----------------------------------------------------------------------------
def _run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=120, check=False)


def _pack(path: Path) -> dict[str, bytes]:
    """Files of a pack by their path inside its single top-level folder."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        folders = {n.split("/", 1)[0] for n in names}
        assert len(folders) == 1, folders
        return {n.split("/", 1)[1]: zf.read(n) for n in names if not n.endswith("/")}


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "CSV for Excel must start with a UTF-8 BOM"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def _warc_records(data: bytes) -> dict[str, dict]:
    """Records of a WARC by WARC-Record-ID: type, headers and the SHA-256 of the raw payload."""
    out = {}
    for rec in ArchiveIterator(io.BytesIO(data)):
        out[rec.rec_headers.get_header("WARC-Record-ID")] = {
            "type": rec.rec_type, "headers": dict(rec.rec_headers.headers),
            "payload_sha256": hashlib.sha256(rec.raw_stream.read()).hexdigest(),
        }
    return out


def _base32_hex(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    assert algorithm == "sha256", digest
    return base64.b32decode(value).hex()


def _wacz_index(path: Path) -> tuple[list[dict], list[dict], list[str]]:
    """(CDX entries, pages, archive file names) of a WACZ."""
    with zipfile.ZipFile(path) as zf:
        cdx = gzip.decompress(zf.read("indexes/index.cdx.gz")).decode("utf-8")
        pages = [json.loads(line) for line in zf.read("pages/pages.jsonl").decode("utf-8").splitlines() if line]
        archives = [n.split("/", 1)[1] for n in zf.namelist() if n.startswith("archive/")]
    entries = []
    for line in cdx.splitlines():
        _, ts, data = line.split(" ", 2)
        entries.append({"ts": ts, **json.loads(data)})
    return entries, pages[1:], archives


# --- WACZ --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["run1", "run2", "run2-records"])
def test_wacz_passes_wacz_validate(exported, name):
    result = _run_script("wacz", "validate", "-f", str(exported.wacz[name]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout


def test_wacz_index_lists_the_crawled_pages(exported):
    entries, pages, archives = _wacz_index(exported.wacz["run1"])
    with exported.session() as session:
        raw_ok = session.execute(select(PageCapture.final_url).where(
            PageCapture.run_id == 1, PageCapture.error_status == "ok", PageCapture.rendered.is_(False))).scalars().all()
        files = session.execute(select(WarcRecord.warc_file).where(WarcRecord.run_id == 1).distinct()).scalars().all()
    assert len(raw_ok) >= 5
    indexed = {e["url"] for e in entries}
    assert set(raw_ok) <= indexed
    assert set(raw_ok) <= {p["url"] for p in pages}
    assert sorted(archives) == sorted(Path(f).name for f in files)
    by_url_ts = {(e["url"], e["ts"]) for e in entries}
    for page in pages:
        ts = page["ts"].replace("-", "").replace(":", "").replace("T", "")[:14]
        assert (page["url"], ts) in by_url_ts, page
        assert page["title"] and page["title"] != page["url"]
    assert any(e.get("digest", "").startswith("sha256:") for e in entries)


def test_wacz_of_a_later_run_carries_the_originals_of_its_revisits(exported):
    with exported.session() as session:
        revisits = session.execute(
            select(WarcRecord).where(WarcRecord.run_id == 2, WarcRecord.record_type == "revisit")).scalars().all()
        originals = {r.record_id: r for r in session.execute(
            select(WarcRecord).where(WarcRecord.record_id.in_([r.refers_to for r in revisits]))).scalars()}
    assert revisits and {o.run_id for o in originals.values()} == {1}

    for name in ("run2", "run2-records"):
        entries, pages, archives = _wacz_index(exported.wacz[name])
        assert pages
        assert any(e["mime"] == "warc/revisit" for e in entries)
        stored = {(e["url"], e["digest"]) for e in entries if e["mime"] != "warc/revisit"}
        for revisit in revisits:  # replay finds the original by its URI (WARC-Refers-To-Target-URI) and digest
            original = originals[revisit.refers_to]
            digest = "sha256:" + base64.b32encode(bytes.fromhex(original.payload_sha256)).decode()
            assert (original.target_uri, digest) in stored, revisit.target_uri

    _, _, archives = _wacz_index(exported.wacz["run2"])
    assert {Path(o.warc_file).name for o in originals.values()} <= set(archives)

    _, _, archives = _wacz_index(exported.wacz["run2-records"])
    assert not {Path(o.warc_file).name for o in originals.values()} & set(archives)
    extra = [a for a in archives if "revisit-originals" in a]
    assert len(extra) == 1
    with zipfile.ZipFile(exported.wacz["run2-records"]) as zf:
        copied = _warc_records(zf.read(f"archive/{extra[0]}"))
    assert set(originals) <= set(copied)
    for record_id, original in originals.items():
        assert copied[record_id]["payload_sha256"] == original.payload_sha256


# --- evidence pack -----------------------------------------------------------------------
@pytest.mark.parametrize("run", [1, 2])
def test_pack_has_its_files_and_every_hash_matches(exported, run):
    files = _pack(exported.packs[run])
    assert PACK_FILES <= set(files)
    assert any(name.startswith("screenshots/") and name.endswith(".png") for name in files) or run == 2
    sums = {}
    for line in files["SHA256SUMS"].decode("utf-8").splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest
    assert set(sums) == set(files) - {"SHA256SUMS"}
    for name, digest in sums.items():
        assert hashlib.sha256(files[name]).hexdigest() == digest, name

    manifest = exported.root / "runs" / f"run-{run:05d}" / "manifest.json"
    if manifest.is_file():
        assert files["manifest.json"] == manifest.read_bytes()
    else:
        assert "manifest.json" not in files

    readme = files["README.txt"].decode("utf-8-sig")
    for needle in ("sha256sum -c SHA256SUMS", "certutil -hashfile", "Get-FileHash", "ReplayWeb.page", "无法判断",
                   CODE):
        assert needle.lower() in readme.lower(), needle


def test_pack_lists_all_findings_of_the_target(exported):
    files = _pack(exported.packs[1])
    rows = _csv_rows(files["findings.csv"])
    data = json.loads(files["findings.json"])
    with exported.session() as session:
        target = session.execute(select(Target).where(Target.code == CODE)).scalar_one()
        findings = session.execute(
            select(Finding).where(Finding.run_id == 1, Finding.target_id == target.id)).scalars().all()
    assert {int(r["编号"]) for r in rows} == {f.id for f in findings}
    assert {f["id"] for f in data["findings"]} == {f.id for f in findings}
    assert {r["范围"] for r in rows} == {"页面", "来源汇总", "对象汇总"}
    assert {r["结论"] for r in rows} <= {"有", "无", "无法判断"} and "有" in {r["结论"] for r in rows}
    assert all(r["评估对象代码"] == CODE and r["评估对象名称"] == target.name for r in rows)
    assert data["target"]["code"] == CODE and data["run"]["id"] == 1
    icp = [r for r in rows if r["指标代码"] == "site.icp_record" and r["结论"] == "有"]
    assert icp and all("ICP" in r["证据摘录"] and r["WARC 记录 ID"].startswith("<urn:uuid:") for r in icp)

    for entry in data["findings"]:  # every picture a finding references is in the pack, as on disk
        for stored in (entry["screenshot"], entry["evidence_image"]):
            if stored:
                assert files[stored] == (exported.root / stored).read_bytes()
    assert any(e["evidence_image"] for e in data["findings"])


@pytest.mark.parametrize("run", [1, 2])
def test_pack_warc_holds_every_cited_record_unchanged(exported, run, tmp_path):
    files = _pack(exported.packs[run])
    warc = tmp_path / "evidence.warc.gz"
    warc.write_bytes(files["evidence.warc.gz"])
    result = _run_script("warcio", "check", str(warc))
    assert result.returncode == 0, result.stdout + result.stderr

    records = _warc_records(files["evidence.warc.gz"])
    rows = _csv_rows(files["records.csv"])
    assert rows
    with exported.session() as session:
        indexed = {r.record_id: r for r in session.execute(
            select(WarcRecord).where(WarcRecord.record_id.in_({row["记录 ID"] for row in rows}))).scalars()}
    for row in rows:
        record_id = row["记录 ID"]
        assert record_id in records, row
        record = records[record_id]
        if record["type"] == "revisit":
            assert _base32_hex(record["headers"]["WARC-Payload-Digest"]) == row["载荷 SHA-256"]
            assert record["headers"]["WARC-Refers-To"] in records  # the original came along
        else:
            assert record["payload_sha256"] == row["载荷 SHA-256"], row
        original = indexed[record_id]
        assert (original.warc_file, original.offset) == (row["原 WARC 文件"], int(row["偏移"]))
        with open(exported.root / original.warc_file, "rb") as fh:  # a byte-for-byte copy of the gzip member
            fh.seek(original.offset)
            assert fh.read(original.length) in files["evidence.warc.gz"]

    cited_types = {records[row["记录 ID"]]["type"] for row in rows}
    assert {"request", "resource"} <= cited_types
    assert ("revisit" in cited_types) if run == 2 else ("response" in cited_types)
    responses = [r for r in records.values() if r["type"] in ("response", "revisit")]
    concurrent = {r["headers"].get("WARC-Concurrent-To") for r in records.values() if r["type"] == "request"}
    cited_ids = {row["记录 ID"] for row in rows if row["记录角色"] == "页面记录"}
    for response in responses:
        if response["headers"]["WARC-Record-ID"] in cited_ids:
            assert response["headers"]["WARC-Record-ID"] in concurrent  # its request came along


def test_unknown_run_or_target_raises(exported):
    with exported.session() as session:
        with pytest.raises(ValueError, match="run 999"):
            export_wacz(session, 999, exported.root, exported.root / "x.wacz")
        with pytest.raises(ValueError, match="run 999"):
            export_pack(session, 999, CODE, exported.root, exported.root / "x.zip")
        with pytest.raises(ValueError, match="999999"):
            export_pack(session, 1, "999999", exported.root, exported.root / "x.zip")
        session.add(Target(code="990000", name="未抓取省", level="province"))
        session.flush()
        with pytest.raises(ValueError, match="990000"):
            export_pack(session, 1, "990000", exported.root, exported.root / "x.zip")
        session.rollback()
    assert not (exported.root / "x.zip").exists() and not (exported.root / "x.wacz").exists()


# --- records opened by their stored pointers ---------------------------------------------------
def _requests_in_files(root: Path, warc_files: set[str]) -> dict[str, str]:
    """WARC-Record-ID of each request record by the record it is concurrent to, read from the files."""
    out = {}
    for name in warc_files:
        with open(root / name, "rb") as fh:
            for rec in ArchiveIterator(fh):
                if rec.rec_type == "request":
                    out[rec.rec_headers.get_header("WARC-Concurrent-To")] = rec.rec_headers.get_header("WARC-Record-ID")
    return out


def _first_members(root: Path, warc_files: set[str]) -> dict[str, bytes]:
    out = {}
    for name in warc_files:
        with open(root / name, "rb") as fh:
            it = ArchiveIterator(fh)
            rec = next(iter(it))
            assert rec.rec_type == "warcinfo"
            rec.raw_stream.read()
            it.read_to_end(rec)
            length = it.get_record_length()
            fh.seek(0)
            out[name] = fh.read(length)
    return out


def _point_captures_at_their_requests(session: Session, root: Path, run: int) -> dict[int, str]:
    """Fill ``warc_request_id`` of the run's captures of an HTTP answer, as the files pair them."""
    captures = session.execute(select(PageCapture).where(PageCapture.run_id == run,
                                                         PageCapture.warc_record_id.is_not(None))).scalars().all()
    records = {r.record_id: r for r in session.execute(
        select(WarcRecord).where(WarcRecord.record_id.in_([c.warc_record_id for c in captures]))).scalars()}
    answers = {c.id: records[c.warc_record_id] for c in captures
               if records[c.warc_record_id].record_type in ("response", "revisit")}
    pairs = _requests_in_files(root, {a.warc_file for a in answers.values()})
    named = {}
    for capture in captures:
        if capture.id in answers:
            capture.warc_request_id = named[capture.id] = pairs[capture.warc_record_id]
    session.flush()
    return named


@pytest.mark.parametrize("run", [1, 2])
def test_pack_cites_the_request_each_capture_names(exported, run, tmp_path):
    with exported.session() as session:
        named = _point_captures_at_their_requests(session, exported.root, run)
        assert named
        path = export_pack(session, run, CODE, exported.root, tmp_path / "pack.zip")
        session.rollback()
    data = json.loads(_pack(path)["findings.json"])
    checked = 0
    for entry in data["findings"]:
        capture = entry["capture"]
        if capture and capture["id"] in named:
            requests = [r["record_id"] for r in entry["records"] if r["role"] == "request"]
            assert requests == [named[capture["id"]]], entry["id"]
            checked += 1
    assert checked


def test_a_request_pointer_that_is_not_the_answers_request_is_refused(exported, tmp_path):
    with exported.session() as session:
        named = _point_captures_at_their_requests(session, exported.root, 1)
        cited = {f.capture_id for f in session.execute(select(Finding).where(
            Finding.run_id == 1, Finding.capture_id.in_(named))).scalars()}
        first, other = sorted(cited)[:2]
        capture = session.get(PageCapture, first)
        capture.warc_request_id = named[other]  # the request of another page
        session.flush()
        with pytest.raises(ExportError, match=f"capture {first}: record .* is not the request of"):
            export_pack(session, 1, CODE, exported.root, tmp_path / "wrong.zip")
        capture.warc_request_id = "<urn:uuid:00000000-0000-0000-0000-000000000000>"
        session.flush()
        with pytest.raises(ExportError, match=f"capture {first}: its request record .* is not in the index"):
            export_pack(session, 1, CODE, exported.root, tmp_path / "missing.zip")
        session.rollback()
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("run", [1, 2])
def test_pack_warc_starts_with_each_source_files_own_warcinfo(exported, run, tmp_path):
    files = _pack(exported.packs[run])
    rows = _csv_rows(files["records.csv"])
    sources = {row["原 WARC 文件"] for row in rows}
    pack = files["evidence.warc.gz"]
    heads = _first_members(exported.root, sources)
    assert set(heads) == sources
    positions = [pack.find(head) for head in heads.values()]
    assert all(p > 0 for p in positions)  # after the pack's own warcinfo record
    infos = [r for r in _warc_records(pack).values() if r["type"] == "warcinfo"]
    assert len(infos) == 1 + len(sources)


# --- pointers: the record of each picture, the page finding behind each roll-up ------------------
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _resource(session: Session, record_id: str | None) -> WarcRecord:
    assert record_id, "no record pointer"
    record = session.execute(select(WarcRecord).where(WarcRecord.record_id == record_id)).scalar_one()
    assert record.record_type == "resource" and record.target_uri.startswith("urn:screenshot:")
    return record


def test_pictures_point_at_their_records_and_rollups_at_their_page_findings(exported):
    with exported.session() as session:
        captures = session.execute(select(PageCapture).where(PageCapture.run_id == 1)).scalars().all()
        shot = [c for c in captures if c.screenshot]
        assert shot
        for capture in shot:
            record = _resource(session, capture.screenshot_record_id)
            assert record.payload_sha256 == _sha256(exported.root / capture.screenshot)
            assert "#locator=" not in record.target_uri
            for picture in (capture.observations or {}).get("pictures", []):
                assert picture["screenshot_record_id"] == capture.screenshot_record_id
                if picture["evidence_image"]:
                    crop = _resource(session, picture["evidence_image_record_id"])
                    assert crop.payload_sha256 == _sha256(exported.root / picture["evidence_image"])
        assert all(c.screenshot_record_id is None for c in captures if not c.screenshot)

        findings = {f.id: f for f in session.execute(select(Finding).where(Finding.run_id == 1)).scalars()}
        pictured = [f for f in findings.values() if f.evidence_image]
        assert pictured and any(f.scope == "page" for f in pictured) and any(f.scope == "target" for f in pictured)
        for finding in pictured:
            record = _resource(session, finding.evidence_image_record_id)
            assert record.payload_sha256 == _sha256(exported.root / finding.evidence_image)
            assert "#locator=" in record.target_uri

        rollups = [f for f in findings.values() if f.scope != "page"]
        judged = [f for f in rollups if f.verdict in ("present", "absent") and f.indicator != "site.broken_links"]
        assert {f.verdict for f in judged} == {"present", "absent"} and {f.scope for f in judged} == {"source", "target"}
        for finding in judged:
            basis = findings.get(finding.derived_from_id)
            assert basis is not None, (finding.id, finding.indicator, finding.scope)
            assert (basis.scope, basis.indicator, basis.judgement_id) == ("page", finding.indicator, None)
            if finding.verdict == "present":
                assert basis.verdict == "present" and basis.capture_id == finding.capture_id
                assert (basis.value, basis.locator, basis.evidence_image_record_id) == (
                    finding.value, finding.locator, finding.evidence_image_record_id)
            else:
                assert basis.verdict == "absent" and basis.capture_id
        for finding in rollups:  # a target row stands on the page finding of a source row it takes
            if finding.scope == "target" and finding.derived_from_id:
                assert any(f.scope == "source" and f.target_id == finding.target_id and f.indicator == finding.indicator
                           and f.derived_from_id == finding.derived_from_id for f in rollups), finding.id
        assert all(f.derived_from_id is None for f in findings.values() if f.scope == "page")

        # Run 2 took no pictures: no pointers to any.
        assert not session.execute(select(PageCapture).where(
            PageCapture.run_id == 2, PageCapture.screenshot_record_id.is_not(None))).first()


def _cited(entry: dict, role: str) -> list[str]:
    return [r["record_id"] for r in entry["records"] if r["role"] == role]


def test_pack_opens_pictures_and_rollups_through_their_pointers(exported, tmp_path):
    data = json.loads(_pack(exported.packs[1])["findings.json"])
    by_id = {e["id"]: e for e in data["findings"]}
    rollups = [e for e in data["findings"] if e["derived_from_id"]]
    assert {e["verdict"] for e in rollups} >= {"present", "absent"}
    for entry in data["findings"]:
        if entry["evidence_image"]:
            assert _cited(entry, "evidence_image") == [entry["evidence_image_record_id"]]
        if entry["screenshot"] and entry["capture"] and entry["capture"]["screenshot"] == entry["screenshot"]:
            assert _cited(entry, "screenshot") == [entry["capture"]["screenshot_record_id"]]
    for entry in rollups:  # cites the records of the page finding it stands on, an absent's searched page too
        basis = by_id[entry["derived_from_id"]]
        assert entry["capture"]["id"] == basis["capture"]["id"]
        assert entry["records"] == basis["records"] and _cited(entry, "capture")
    rows = {int(r["编号"]): r for r in _csv_rows(_pack(exported.packs[1])["findings.csv"])}
    assert all(rows[e["id"]]["依据的页面发现编号"] == str(e["derived_from_id"]) for e in rollups)

    # Rows recorded before the pointers existed: pictures found by their digest, roll-ups by capture_id.
    with exported.session() as session:
        session.execute(update(PageCapture).where(PageCapture.run_id == 1).values(screenshot_record_id=None))
        session.execute(update(Finding).where(Finding.run_id == 1).values(evidence_image_record_id=None,
                                                                         derived_from_id=None))
        path = export_pack(session, 1, CODE, exported.root, tmp_path / "before.zip")
        session.rollback()
    before = {e["id"]: e for e in json.loads(_pack(path)["findings.json"])["findings"]}
    for entry in data["findings"]:
        old = before[entry["id"]]
        for role in ("screenshot", "evidence_image"):
            assert _cited(old, role) == _cited(entry, role), (entry["id"], role)
        if entry["derived_from_id"] and entry["verdict"] == "absent":
            assert old["capture"] is None and old["records"] == []


def test_a_picture_pointer_to_another_record_is_refused(exported, tmp_path):
    with exported.session() as session:
        pictured = session.execute(select(Finding).where(
            Finding.run_id == 1, Finding.scope == "page", Finding.evidence_image.is_not(None))
            .order_by(Finding.id)).scalars().all()
        victim = pictured[0]
        other = next(f for f in pictured if f.evidence_image != victim.evidence_image)
        victim.evidence_image_record_id = other.evidence_image_record_id
        session.flush()
        with pytest.raises(ExportError, match=f"finding {victim.id}: record .* is not the picture"):
            export_pack(session, 1, CODE, exported.root, tmp_path / "wrong.zip")
        victim.evidence_image_record_id = "<urn:uuid:00000000-0000-0000-0000-000000000000>"
        session.flush()
        with pytest.raises(ExportError, match=f"finding {victim.id}: the record of its picture .* is not in the index"):
            export_pack(session, 1, CODE, exported.root, tmp_path / "missing.zip")
        session.rollback()
    assert not list(tmp_path.iterdir())


def test_verify_names_each_tampered_pointer(exported):
    missing = "<urn:uuid:00000000-0000-0000-0000-000000000000>"
    with exported.session() as session:
        assert verify_run(session, 1, exported.root) == []
        captures = session.execute(select(PageCapture).where(
            PageCapture.run_id == 1, PageCapture.screenshot_record_id.is_not(None)).order_by(PageCapture.id)).scalars().all()
        shot, other = captures[0], next(c for c in captures if c.screenshot != captures[0].screenshot)
        page = session.execute(select(Finding).where(
            Finding.run_id == 1, Finding.scope == "page", Finding.evidence_image_record_id.is_not(None))
            .order_by(Finding.id)).scalars().first()
        rollup = session.execute(select(Finding).where(
            Finding.run_id == 1, Finding.scope == "target", Finding.derived_from_id.is_not(None))
            .order_by(Finding.id)).scalars().first()
        stranger = session.execute(select(Finding).where(
            Finding.run_id == 1, Finding.scope == "page", Finding.indicator != rollup.indicator)).scalars().first()
        response = session.execute(select(WarcRecord).where(WarcRecord.run_id == 1, WarcRecord.record_type == "response")
                                   .order_by(WarcRecord.id)).scalars().first()
        # UPDATEs as whoever writes the database would make them: to another picture's record, ...
        session.execute(update(PageCapture).where(PageCapture.id == shot.id)
                        .values(screenshot_record_id=other.screenshot_record_id))
        session.execute(update(Finding).where(Finding.id == page.id).values(evidence_image_record_id=response.record_id))
        session.execute(update(Finding).where(Finding.id == rollup.id).values(derived_from_id=stranger.id))
        problems = verify_run(session, 1, exported.root)
        session.execute(update(Finding).where(Finding.id == page.id).values(evidence_image_record_id=missing))
        dangling = verify_run(session, 1, exported.root)
        session.rollback()
        assert verify_run(session, 1, exported.root) == []
    text = "\n".join(problems)
    assert (f"page_captures {shot.id} ({shot.requested_url}): screenshot_record_id {other.screenshot_record_id} "
            f"does not hold {shot.screenshot}") in text
    assert (f"findings {page.id} ({page.indicator}, page): evidence_image_record_id {response.record_id} "
            f"is a response record, not a picture's resource") in text
    assert (f"findings {rollup.id} ({rollup.indicator}, target): derived_from_id {stranger.id} names a page finding "
            f"of {stranger.indicator} (crawl), not a page finding of {rollup.indicator} (crawl)") in text
    assert f"page_captures {shot.id} ({shot.requested_url}): row altered" in text  # the row digest as well
    assert (f"findings {page.id} ({page.indicator}, page): evidence_image_record_id {missing} "
            f"names no indexed WARC record") in "\n".join(dangling)
