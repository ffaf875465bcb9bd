"""The evidence pack of one target in one run: what a reviewer needs to check its findings
without the database.

A zip of the findings as CSV (for Excel) and JSON, the screenshots they reference, the WARC
records they cite — each a byte-for-byte copy of its gzip member in the original file — in
one small ``evidence.warc.gz``, the map from finding to original record, the run manifest,
a ``SHA256SUMS`` over everything and a README in Chinese. Records are opened by the pointers
the database keeps (``govevidence.exports.records``): a picture's record by
``page_captures.screenshot_record_id`` / ``findings.evidence_image_record_id``, and a source or
target roll-up cites the records of the page finding it stands on (``derived_from_id``: its
capture, request and pictures). Rows recorded before those pointers existed are served by
look-ups instead: pictures by the SHA-256 of their bytes, roll-ups by their ``capture_id``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

import govevidence
from db.findings import of_judgement
from db.models import CrawlRun, Finding, PageCapture, Source, Target, WarcRecord
from vocabulary import RECORD_ROLES, SCOPES
from govevidence.exports.readme import pack_readme
from govevidence.exports.records import (
    ExportError,
    Member,
    get_run,
    is_request_of,
    iso,
    payload,
    read_member,
    record_dict,
    records_by_id,
    request_after,
    resolve,
    screenshot_record_by_prefix,
    screenshot_records,
    warcinfo_fields,
    warcinfo_members,
    write_copy_warc,
)
from govevidence.exports.sheets import FINDINGS_COLUMNS, RECORDS_COLUMNS, csv_bytes
from govevidence.labels import KIND_NAMES, ROLE_NAMES, SCOPE_NAMES, STATUS_NAMES, VERDICT_NAMES, label

# Target roll-ups first, then sources, then pages.
SCOPE_ORDER = {scope: i for i, scope in enumerate(reversed(SCOPES))}
PICTURE_ROLES = ("screenshot", "evidence_image")  # finding columns holding a picture's stored path
FIRST_FILES = ["README.txt", "SHA256SUMS", "findings.csv", "findings.json", "records.csv", "evidence.warc.gz",
               "manifest.json"]


@dataclass
class _Cited:
    record: WarcRecord
    member: Member
    citations: list[tuple[int, str, str]] = field(default_factory=list)  # (finding id, indicator, role)


class _PackRecords:
    """The WARC records a target's findings cite, each read once from its original file."""

    def __init__(self, session: Session, root: Path, requests: dict[str, WarcRecord]) -> None:
        self.session = session
        self.root = root
        self.requests = requests  # by record id: the records captures name as their request
        self.cited: dict[str, _Cited] = {}
        self._members: dict[str, Member] = {}
        self._after: dict[str, WarcRecord | None] = {}

    def member(self, record: WarcRecord) -> Member:
        if record.record_id not in self._members:
            self._members[record.record_id] = read_member(self.root, record)
        return self._members[record.record_id]

    def cite(self, record: WarcRecord, finding: Finding, role: str) -> dict[str, Any]:
        entry = self.cited.get(record.record_id)
        if entry is None:
            entry = self.cited[record.record_id] = _Cited(record, self.member(record))
        citation = (finding.id, finding.indicator, role)
        if citation not in entry.citations:
            entry.citations.append(citation)
        return {"role": role, "record_id": record.record_id}

    def request_of(self, capture: PageCapture, answer: WarcRecord) -> WarcRecord | None:
        """The request record of a capture's answer: the one it names, checked to be it."""
        if capture.warc_request_id:
            request = self.requests.get(capture.warc_request_id)
            if request is None:
                raise ExportError(f"capture {capture.id}: its request record {capture.warc_request_id} "
                                  f"is not in the index")
            if not is_request_of(self.member(request), answer):
                raise ExportError(f"capture {capture.id}: record {request.record_id} ({request.warc_file} at "
                                  f"offset {request.offset}) is not the request of {answer.record_id}")
            return request
        # Recorded without the pointer: the request indexed right after its answer, if it is that.
        if answer.record_id not in self._after:
            candidate = request_after(self.session, answer)
            if candidate is not None and not is_request_of(self.member(candidate), answer):
                candidate = None
            self._after[answer.record_id] = candidate
        return self._after[answer.record_id]

    def ordered(self) -> list[_Cited]:
        return sorted(self.cited.values(), key=lambda c: (c.record.warc_file, c.record.offset))


def export_pack(session: Session, run_id: int, target_code: str, root: Path, output: Path, *,
                judgement: int | str | None = None) -> Path:
    """Write the evidence pack (zip) of one target in one run to ``output`` and return its path.

    The findings are those of the run's newest finished judgement (``govevidence judge``), or
    the crawl's own when it has none; ``judgement`` picks a judgement's id, or ``"crawl"``."""
    from govevidence.reports import JudgementError, chosen_judgement

    run = get_run(session, run_id)
    try:
        chosen = chosen_judgement(session, run_id, judgement)
    except JudgementError as exc:
        raise ExportError(str(exc)) from None
    root = Path(root)
    output = Path(output)
    target = _target_in_run(session, run_id, target_code)

    rows = session.execute(
        select(Finding, Source).outerjoin(Source, Source.id == Finding.source_id)
        .where(Finding.run_id == run_id, Finding.target_id == target.id, of_judgement(chosen))
    ).all()
    rows.sort(key=lambda fs: (SCOPE_ORDER.get(fs[0].scope, 9), fs[1].kind if fs[1] else "", fs[1].url if fs[1] else "",
                              fs[0].indicator, fs[0].id))
    bases = _bases(session, [f for f, _ in rows])
    capture_ids = {f.capture_id for f, _ in rows if f.capture_id} | {b.capture_id for b in bases.values() if b.capture_id}
    captures = {c.id: c for c in session.execute(
        select(PageCapture).where(PageCapture.id.in_(capture_ids))).scalars()} if capture_ids else {}
    pointers = records_by_id(session, (c.warc_record_id for c in captures.values()))
    originals = records_by_id(session, (r.refers_to for r in pointers.values() if r.refers_to))
    requests = records_by_id(session, (c.warc_request_id for c in captures.values()))
    names = _indicator_names()

    cited = _PackRecords(session, root, requests)
    files: dict[str, bytes] = {}  # path inside the pack -> content
    missing: list[str] = []
    evidence = [(finding, source, _capture_of(finding, bases, captures)) for finding, source in rows]
    pictures = _Pictures(session, root, run_id, files, missing, [(f, c) for f, _, c in evidence])
    findings_json: list[dict[str, Any]] = []
    csv_rows: list[list[Any]] = []

    for finding, source, capture in evidence:
        records: list[dict[str, Any]] = []
        pointer = pointers.get(capture.warc_record_id) if capture and capture.warc_record_id else None
        if pointer is not None:
            records.append(cited.cite(pointer, finding, "capture"))
            if pointer.refers_to:
                original = originals.get(pointer.refers_to)
                if original is None:
                    raise ExportError(f"revisit {pointer.record_id} refers to {pointer.refers_to}, not in the index")
                records.append(cited.cite(original, finding, "revisit_original"))
            if pointer.record_type in ("response", "revisit"):
                request = cited.request_of(capture, pointer)
                if request is not None:
                    records.append(cited.cite(request, finding, "request"))
        for role in PICTURE_ROLES:
            shot = pictures.record(finding, role, capture)
            if shot is not None:
                records.append(cited.cite(shot, finding, role))
        findings_json.append(_finding_entry(finding, source, capture, records, names))
        csv_rows.append(_finding_row(finding, source, capture, target, pointer, names))

    ordered = cited.ordered()
    citations = sorted(((finding_id, RECORD_ROLES.index(role), indicator, item.record)
                        for item in ordered for finding_id, indicator, role in item.citations),
                       key=lambda c: c[:2])
    record_rows = [[finding_id, indicator, ROLE_NAMES[RECORD_ROLES[role]], r.warc_file, r.record_id, r.offset,
                    r.length, r.record_type, r.target_uri, r.warc_date, r.payload_sha256, r.refers_to or ""]
                   for finding_id, role, indicator, r in citations]

    exported_at = dt.datetime.now(dt.timezone.utc)
    files["findings.csv"] = csv_bytes(FINDINGS_COLUMNS, csv_rows)
    files["records.csv"] = csv_bytes(RECORDS_COLUMNS, record_rows)
    meta = {
        "format": "govevidence-evidence-pack/1",
        "software": f"GovEvidence {govevidence.__version__}",
        "exported_at": exported_at.isoformat(),
        "run": {"id": run.id, "spider": run.spider, "status": run.status, "started_at": iso(run.started_at),
                "finished_at": iso(run.finished_at), "software_version": run.software_version},
        "target": {"code": target.code, "name": target.name, "level": target.level,
                   "parent_code": target.parent_code},
        "judgement": chosen,  # None: the findings made during the crawl
        "missing_files": missing,
        "findings": findings_json,
        # in the order of evidence.warc.gz (after its warcinfo records); findings cite them by record_id
        "records": [record_dict(c.record) for c in ordered],
    }
    files["findings.json"] = json.dumps(meta, ensure_ascii=False, indent=2, default=str).encode("utf-8") + b"\n"
    files["evidence.warc.gz"] = _evidence_warc(session, root, run, target, ordered)
    manifest = root / "runs" / f"run-{run_id:05d}" / "manifest.json"
    if manifest.is_file():
        files["manifest.json"] = manifest.read_bytes()
    files["README.txt"] = pack_readme(run, target, len(rows), len(ordered), "manifest.json" in files, missing,
                                      exported_at).encode("utf-8-sig").replace(b"\n", b"\r\n")
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))
    files["SHA256SUMS"] = sums.encode("utf-8")
    _write_zip(output, f"govevidence-run-{run_id:05d}-{target.code}", files, exported_at)
    return output


def _target_in_run(session: Session, run_id: int, target_code: str) -> Target:
    target = session.execute(select(Target).where(Target.code == target_code)).scalar_one_or_none()
    if target is None:
        raise ExportError(f"target {target_code} is not in the database")
    in_run = session.execute(select(
        exists().where(Finding.run_id == run_id, Finding.target_id == target.id)
        | exists().where(PageCapture.run_id == run_id, PageCapture.source_id == Source.id,
                         Source.target_id == target.id)
    )).scalar()
    if not in_run:
        raise ExportError(f"target {target_code} ({target.name}) was not crawled in run {run_id}")
    return target


def _bases(session: Session, findings: list[Finding]) -> dict[int, Finding]:
    """The page findings the roll-ups among ``findings`` stand on, by id."""
    have = {f.id: f for f in findings}
    wanted = {f.derived_from_id for f in findings if f.derived_from_id}
    out = {i: have[i] for i in wanted if i in have}
    rest = sorted(wanted - out.keys())
    for start in range(0, len(rest), 500):
        out.update({f.id: f for f in session.execute(
            select(Finding).where(Finding.id.in_(rest[start:start + 500]))).scalars()})
    return out


def _capture_of(finding: Finding, bases: dict[int, Finding], captures: dict[int, PageCapture]) -> PageCapture | None:
    """The capture a finding's evidence is on: its own, or for a roll-up that of the page finding
    it stands on (an ``absent``'s searched page too); rows without that pointer use their capture_id."""
    basis = bases.get(finding.derived_from_id) if finding.derived_from_id else None
    capture_id = basis.capture_id if basis is not None else finding.capture_id
    return captures.get(capture_id) if capture_id else None


def _indicator_names() -> dict[str, str]:
    try:
        from evidence.catalogue import load_catalogue

        return {i.id: i.name for i in load_catalogue().indicators}
    except Exception:  # the pack must not depend on the catalogue loading
        return {}


# --- pictures ------------------------------------------------------------------------------
def picture_pointer(finding: Finding, role: str, capture: PageCapture | None) -> str | None:
    """The WARC-Record-ID the database keeps for a finding's picture (None: recorded without one).

    An element picture's is the finding's own ``evidence_image_record_id``; a full-page
    picture's is that of the capture it was taken of (``screenshot_record_id``)."""
    if role == "evidence_image":
        return finding.evidence_image_record_id if finding.evidence_image else None
    if capture is not None and finding.screenshot and finding.screenshot == capture.screenshot:
        return capture.screenshot_record_id
    return None


class _Pictures:
    """The screenshots the findings reference: each put in the pack under its stored path, and
    the ``urn:screenshot:`` record that archived it — the one its pointer names, or for rows
    recorded without a pointer, found in the index by the picture's SHA-256."""

    def __init__(self, session: Session, root: Path, run_id: int, files: dict[str, bytes], missing: list[str],
                 findings: list[tuple[Finding, PageCapture | None]]) -> None:
        self.run_id = run_id
        self.pointed = records_by_id(session, (picture_pointer(f, role, c) for f, c in findings for role in PICTURE_ROLES))
        self.digests: dict[str, str] = {}  # stored path -> sha256 of its bytes ("" when missing)
        unpointed: set[str] = set()
        for finding, capture in findings:
            for role in PICTURE_ROLES:
                stored = getattr(finding, role)
                if not stored:
                    continue
                pointer = picture_pointer(finding, role, capture)
                if stored not in self.digests:
                    self.digests[stored] = _add_screenshot(session, root, stored, files, missing,
                                                           self.pointed.get(pointer) if pointer else None)
                if pointer is None:
                    unpointed.add(stored)
        self.records = screenshot_records(session, (self.digests[s] for s in unpointed if self.digests[s]))

    def record(self, finding: Finding, role: str, capture: PageCapture | None) -> WarcRecord | None:
        stored = getattr(finding, role)
        digest = self.digests.get(stored) if stored else None
        if not digest:
            return None
        pointer = picture_pointer(finding, role, capture)
        if pointer is not None:
            record = self.pointed.get(pointer)
            if record is None:
                raise ExportError(f"finding {finding.id}: the record of its picture {stored}, {pointer}, "
                                  f"is not in the index")
            if record.record_type != "resource" or record.payload_sha256 != digest:
                raise ExportError(f"finding {finding.id}: record {pointer} ({record.record_type}, payload "
                                  f"{record.payload_sha256[:16]}…) is not the picture {stored}")
            return record
        rows = self.records.get(digest)
        if not rows:
            return None
        url = finding.url or (capture.final_url if capture else None)

        def rank(r: WarcRecord) -> tuple[bool, bool, int]:
            uri_matches = url is not None and (
                r.target_uri == f"urn:screenshot:{url}" if role == "screenshot"
                else r.target_uri.startswith(f"urn:screenshot:{url}#locator="))
            return (r.run_id != self.run_id, not uri_matches, r.id)

        return min(rows, key=rank)


def _add_screenshot(session: Session, root: Path, stored: str, files: dict[str, bytes], missing: list[str],
                    record: WarcRecord | None = None) -> str:
    """Put a screenshot in the pack under its stored path; if the file is gone, from the WARC
    record its pointer names (``record``), else the one its file name points to.
    Returns the SHA-256 of its bytes, "" when it could not be found."""
    name = PurePosixPath(stored)
    if name.is_absolute() or ".." in name.parts:
        missing.append(stored)
        return ""
    data: bytes | None = None
    try:
        data = resolve(root, stored).read_bytes()
    except (OSError, ExportError):
        if record is None:
            record = screenshot_record_by_prefix(session, name.stem)  # files are named by their SHA-256's first 32 digits
        if record is not None:
            data = payload(read_member(root, record))
    if data is None:
        missing.append(stored)
        return ""
    path = str(name) if name.parts[0] == "screenshots" else str(PurePosixPath("screenshots", *name.parts))
    files[path] = data
    return hashlib.sha256(data).hexdigest()


# --- findings.json and findings.csv --------------------------------------------------------
def _finding_entry(finding: Finding, source: Source | None, capture: PageCapture | None,
                   records: list[dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": finding.id, "scope": finding.scope, "indicator": finding.indicator,
        "indicator_name": names.get(finding.indicator), "verdict": finding.verdict,
        "verdict_name": label(VERDICT_NAMES, finding.verdict), "value": finding.value,
        "url": finding.url, "href": finding.href, "locator": finding.locator, "snippet": finding.snippet,
        "checked": finding.checked, "details": finding.details, "detector_version": finding.detector_version,
        "created_at": iso(finding.created_at), "screenshot": finding.screenshot,
        "evidence_image": finding.evidence_image, "evidence_image_record_id": finding.evidence_image_record_id,
        "derived_from_id": finding.derived_from_id,
        "source": {"id": source.id, "kind": source.kind, "url": source.url, "name": source.name,
                   "origin": source.origin} if source else None,
        "capture": {
            "id": capture.id, "requested_url": capture.requested_url, "final_url": capture.final_url,
            "http_status": capture.http_status, "fetched_at": iso(capture.fetched_at),
            "content_type": capture.content_type, "size": capture.size, "sha256": capture.sha256,
            "title": capture.title, "rendered": capture.rendered, "error_status": capture.error_status,
            "error_detail": capture.error_detail, "screenshot": capture.screenshot,
            "screenshot_record_id": capture.screenshot_record_id,
        } if capture else None,
        "records": records,
    }


def _finding_row(finding: Finding, source: Source | None, capture: PageCapture | None, target: Target,
                 pointer: WarcRecord | None, names: dict[str, str]) -> list[Any]:
    """One row of findings.csv (FINDINGS_COLUMNS)."""
    return [
        finding.id, label(SCOPE_NAMES, finding.scope), finding.derived_from_id, target.code, target.name,
        label(KIND_NAMES, source.kind) if source else "", source.url if source else "",
        finding.indicator, names.get(finding.indicator, ""), label(VERDICT_NAMES, finding.verdict),
        finding.value, finding.url, finding.href, finding.locator, finding.snippet, finding.checked,
        json.dumps(finding.details, ensure_ascii=False) if finding.details else "", finding.detector_version,
        finding.screenshot, finding.evidence_image,
        capture.id if capture else "", iso(capture.fetched_at) if capture else "",
        capture.http_status if capture else "",
        label(STATUS_NAMES, capture.error_status) if capture else "",
        capture.sha256 if capture else "",
        pointer.warc_file if pointer else "", pointer.record_id if pointer else "",
        pointer.offset if pointer else "", pointer.payload_sha256 if pointer else "",
    ]


# --- evidence.warc.gz and the zip ----------------------------------------------------------
def _evidence_warc(session: Session, root: Path, run: CrawlRun, target: Target, cited: list[_Cited]) -> bytes:
    """warcinfo of the pack, the source files' own warcinfo records, then the cited records, all gzip members."""
    sources = list(dict.fromkeys(c.record.warc_file for c in cited))
    heads = warcinfo_members(session, root, sources)
    with tempfile.TemporaryDirectory(prefix="govevidence-pack-") as tmp:
        path = Path(tmp) / "evidence.warc.gz"
        members = [heads[s] for s in sources if s in heads] + [c.member.data for c in cited]
        write_copy_warc(path, warcinfo_fields(
            run, f"Evidence pack of target {target.code} in run {run.id}: the records its findings cite, copied "
                 f"byte for byte from the original WARC files (preceded by those files' own warcinfo records); "
                 f"see records.csv",
            {"target": target.code, "source-files": ", ".join(sources)}), members)
        data = path.read_bytes()
    gzip.decompress(data)  # every member must still be a complete gzip stream
    return data


def _write_zip(output: Path, folder: str, files: dict[str, bytes], exported_at: dt.datetime) -> None:
    """The pack's files under one folder, README first; written aside, then moved into place."""
    stamp = exported_at.timetuple()[:6]
    order = [n for n in FIRST_FILES if n in files] + sorted(n for n in files if n not in FIRST_FILES)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w") as zf:
            for name in order:
                info = zipfile.ZipInfo(f"{folder}/{name}", stamp)
                info.compress_type = zipfile.ZIP_STORED if name.endswith((".gz", ".png")) else zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, files[name])
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
