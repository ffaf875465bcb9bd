"""The WACZ of a run: its WARC files (plus whatever holds the originals of its revisit
records) and a page list, packaged by the ``wacz`` package so ReplayWeb.page or pywb can open it."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import PageCapture, WarcRecord
from vocabulary import OK
from govevidence.exports.records import (
    ExportError,
    get_run,
    read_member,
    records_by_id,
    resolve,
    warc_stem,
    warcinfo_fields,
    write_copy_warc,
)

logger = logging.getLogger(__name__)

ANSWER_RECORDS = ("response", "revisit")


def export_wacz(session: Session, run_id: int, root: Path, output: Path, *,
                revisit_originals: Literal["files", "records"] = "files") -> Path:
    """Write a WACZ of one run to ``output`` and return its path.

    Pages are the run's successful captures, at the URL and time of their HTTP response
    record. Revisit records need their originals for replay: ``files`` (default) adds every
    WARC file holding one, unchanged, so each file in the WACZ is one a run manifest lists;
    ``records`` copies only the original records, byte for byte, into one extra WARC file.
    """
    from wacz.main import main as wacz_main

    root = Path(root)
    output = Path(output)
    run = get_run(session, run_id)
    rows = session.execute(
        select(WarcRecord).where(WarcRecord.run_id == run_id).order_by(WarcRecord.id)).scalars().all()
    if not rows:
        raise ExportError(f"run {run_id} archived no WARC records (no page was fetched, or archiving was off)")
    files = list(dict.fromkeys(r.warc_file for r in sorted(rows, key=lambda r: (r.warc_file, r.offset))))

    referred = records_by_id(session, (r.refers_to for r in rows if r.refers_to))
    missing = sorted({r.refers_to for r in rows if r.refers_to} - referred.keys())
    if missing:
        raise ExportError(f"run {run_id}: revisit records refer to records not in the index: "
                          f"{', '.join(missing[:5])}")
    elsewhere = [o for o in sorted(referred.values(), key=lambda o: (o.warc_file, o.offset))
                 if o.warc_file not in files]

    pages = _pages(session, run_id, rows)
    with tempfile.TemporaryDirectory(prefix="govevidence-wacz-") as tmp:
        work = Path(tmp)
        inputs = [resolve(root, f) for f in files]
        if elsewhere and revisit_originals == "files":
            inputs += [resolve(root, f) for f in dict.fromkeys(o.warc_file for o in elsewhere)]
        elif elsewhere:
            extra = work / f"{warc_stem(run_id)}-revisit-originals.warc.gz"
            write_copy_warc(extra, warcinfo_fields(
                run, f"Original records of revisits in run {run_id}, copied byte for byte",
                {"source-files": ", ".join(sorted({o.warc_file for o in elsewhere}))}),
                (read_member(root, o).data for o in elsewhere))
            inputs.append(extra)
        for path in inputs:
            if not path.is_file():
                raise ExportError(f"WARC file missing: {path}")
        names = [p.name for p in inputs]
        if len(set(names)) != len(names):
            raise ExportError(f"two WARC files share a name: {names}")

        pages_file = work / "pages.jsonl"
        with open(pages_file, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"format": "json-pages-1.0", "id": "pages",
                                 "title": f"运行 {run_id} 的页面"}, ensure_ascii=False) + "\n")
            for page in pages:
                fh.write(json.dumps(page, ensure_ascii=False) + "\n")

        built = work / "run.wacz"
        args = ["create", "-o", str(built), "--hash-type", "sha256", "-p", str(pages_file),
                "--title", f"GovEvidence 运行 {run_id}（{run.spider}）",
                "--desc", f"GovEvidence 运行 {run_id}（{run.spider}）的网页存档，"
                          f"开始于 {run.started_at.isoformat()} (UTC)",
                *map(str, inputs)]
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            code = wacz_main(args)
        if code != 0 or not built.is_file():
            raise ExportError(f"wacz create failed ({code}): {log.getvalue()[-2000:]}")
        unmatched = [line for line in log.getvalue().splitlines() if line.startswith("Invalid passed page")]
        if unmatched:
            logger.warning("WACZ of run %s: %d pages not found in the WARC files: %s", run_id, len(unmatched),
                           unmatched[:3])
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(built), output)
    return output


def _pages(session: Session, run_id: int, rows: list[WarcRecord]) -> list[dict[str, Any]]:
    """One page per successful capture: the URL and WARC-Date of its HTTP response (or revisit),
    the record its ``warc_record_id`` names.

    A capture rendered in the browser points at a ``urn:rendered:`` resource, which a replay
    tool cannot open at the page's URL; it is listed at the run's HTTP record of the same URL
    when there is one, and left out otherwise.
    """
    by_id = {r.record_id: r for r in rows}
    http_by_uri: dict[str, WarcRecord] = {}
    for r in rows:
        if r.record_type in ANSWER_RECORDS:
            http_by_uri.setdefault(r.target_uri, r)
    captures = session.execute(
        select(PageCapture).where(PageCapture.run_id == run_id, PageCapture.error_status == OK)
        .order_by(PageCapture.fetched_at, PageCapture.id)).scalars()
    pages: dict[str, dict[str, Any]] = {}
    skipped = 0
    for capture in captures:
        record = by_id.get(capture.warc_record_id or "")
        if record is None or record.record_type not in ANSWER_RECORDS:
            record = http_by_uri.get(capture.final_url or capture.requested_url)
        if record is None:
            skipped += 1
            continue
        key = f"{record.warc_date}/{record.target_uri}"
        page = pages.setdefault(key, {"id": f"capture-{capture.id}", "url": record.target_uri, "ts": record.warc_date,
                                      "title": capture.title or record.target_uri})
        if capture.title and page["title"] == record.target_uri:
            page["title"] = capture.title
    if skipped:
        logger.info("WACZ of run %s: %d browser-only captures have no HTTP record to list as a page", run_id, skipped)
    return list(pages.values())
