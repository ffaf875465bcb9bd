"""Archived records opened by the pointers the database keeps, for the exports.

Every record is opened where its ``warc_records`` row says (file, offset, length) and checked
to be that record; the request of an answer is the one its capture names
(``page_captures.warc_request_id``). Nothing here scans a WARC file to find a record.
"""

from __future__ import annotations

import datetime as dt
import io
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import govevidence
from db.models import CrawlRun, WarcRecord

# A warcinfo record is a few hundred bytes; more than this at the head of a file is not one.
WARCINFO_MAX = 64 * 1024


class ExportError(ValueError):
    """An export cannot be made: unknown run or target, or archived data missing or inconsistent."""


@dataclass(frozen=True)
class Member:
    """One record's gzip member, byte for byte, and the record's WARC headers."""

    data: bytes
    headers: dict[str, str]


def get_run(session: Session, run_id: int) -> CrawlRun:
    run = session.get(CrawlRun, run_id)
    if run is None:
        raise ExportError(f"run {run_id} does not exist")
    return run


def resolve(root: Path, relative: str) -> Path:
    """A path stored in the database, under the data root; refuses anything escaping it."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ExportError(f"stored path {relative!r} points outside the data folder {root}")
    return path


def _read(root: Path, warc_file: str, offset: int, length: int) -> bytes:
    try:
        with open(resolve(root, warc_file), "rb") as fh:
            fh.seek(offset)
            return fh.read(length)
    except OSError as exc:
        raise ExportError(f"cannot read {warc_file}: {exc}") from None


def member_headers(data: bytes) -> dict[str, str]:
    """The WARC headers of the (first) record in a gzip member."""
    from warcio.archiveiterator import ArchiveIterator

    for rec in ArchiveIterator(io.BytesIO(data)):
        return dict(rec.rec_headers.headers)
    return {}


def read_member(root: Path, record: WarcRecord) -> Member:
    """The gzip member of one indexed record, exactly as stored, checked to hold that record."""
    data = _read(root, record.warc_file, record.offset, record.length)
    if len(data) != record.length or data[:2] != b"\x1f\x8b":
        raise ExportError(f"{record.warc_file} at offset {record.offset}: not a gzip member of "
                          f"{record.length} bytes (record {record.record_id})")
    headers = member_headers(data)
    if headers.get("WARC-Record-ID") != record.record_id:
        raise ExportError(f"{record.warc_file} at offset {record.offset} holds "
                          f"{headers.get('WARC-Record-ID')}, not {record.record_id} as indexed")
    return Member(data, headers)


def payload(member: Member) -> bytes:
    """The payload of a resource record (a screenshot) held in a member."""
    from warcio.archiveiterator import ArchiveIterator

    for rec in ArchiveIterator(io.BytesIO(member.data)):
        return rec.raw_stream.read()
    return b""


def records_by_id(session: Session, record_ids: Iterable[str | None]) -> dict[str, WarcRecord]:
    """Index rows by WARC-Record-ID, looked up in batches."""
    ids = sorted({r for r in record_ids if r})
    out: dict[str, WarcRecord] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        out.update({r.record_id: r for r in session.execute(
            select(WarcRecord).where(WarcRecord.record_id.in_(chunk))).scalars()})
    return out


def request_after(session: Session, response: WarcRecord) -> WarcRecord | None:
    """The request record indexed right after a response, for captures recorded without
    ``warc_request_id``: the writer puts each request straight after its answer. Whoever
    cites it checks its WARC-Concurrent-To (``is_request_of``)."""
    return session.execute(
        select(WarcRecord).where(WarcRecord.record_type == "request", WarcRecord.warc_file == response.warc_file,
                                 WarcRecord.offset == response.offset + response.length)).scalar_one_or_none()


def is_request_of(member: Member, response: WarcRecord) -> bool:
    return (member.headers.get("WARC-Type") == "request"
            and member.headers.get("WARC-Concurrent-To") == response.record_id)


def warcinfo_members(session: Session, root: Path, warc_files: Iterable[str]) -> dict[str, bytes]:
    """The warcinfo record that opens each WARC file, byte for byte.

    Warcinfo records are not indexed, but every file starts with one, and the file's first
    indexed record bounds it: only the bytes before that offset are read. A file whose head
    is not one complete warcinfo member is left out."""
    files = list(dict.fromkeys(warc_files))
    if not files:
        return {}
    firsts = dict(session.execute(
        select(WarcRecord.warc_file, func.min(WarcRecord.offset)).where(WarcRecord.warc_file.in_(files))
        .group_by(WarcRecord.warc_file)).all())
    out: dict[str, bytes] = {}
    for name in files:
        bound = min(firsts.get(name) or WARCINFO_MAX, WARCINFO_MAX)
        member = _first_member(_read(root, name, 0, bound))
        if member is not None:
            out[name] = member
    return out


def _first_member(head: bytes) -> bytes | None:
    """The first gzip member of ``head`` when it is complete and holds a warcinfo record."""
    decompressor = zlib.decompressobj(31)
    try:
        text = decompressor.decompress(head, WARCINFO_MAX)
    except zlib.error:
        return None
    if not decompressor.eof:
        return None
    member = head[:len(head) - len(decompressor.unused_data)]
    start = text[:4096].split(b"\r\n\r\n", 1)[0].lower()
    if not start.startswith(b"warc/") or b"\r\nwarc-type: warcinfo\r\n" not in start + b"\r\n":
        return None
    return member


def screenshot_records(session: Session, sha256s: Iterable[str]) -> dict[str, list[WarcRecord]]:
    """The ``urn:screenshot:`` resource records of each picture, by the SHA-256 of its bytes
    (``payload_sha256`` is indexed), oldest first."""
    digests = sorted(set(sha256s))
    out: dict[str, list[WarcRecord]] = {}
    for start in range(0, len(digests), 500):
        chunk = digests[start:start + 500]
        for row in session.execute(
                select(WarcRecord).where(WarcRecord.record_type == "resource", WarcRecord.payload_sha256.in_(chunk),
                                         WarcRecord.target_uri.like("urn:screenshot:%")).order_by(WarcRecord.id)
        ).scalars():
            out.setdefault(row.payload_sha256, []).append(row)
    return out


def screenshot_record_by_prefix(session: Session, prefix: str) -> WarcRecord | None:
    """A screenshot's record when only its file name (the first 32 hex digits of its SHA-256) is known."""
    return session.execute(
        select(WarcRecord).where(WarcRecord.record_type == "resource", WarcRecord.payload_sha256.like(f"{prefix}%"),
                                 WarcRecord.target_uri.like("urn:screenshot:%")).order_by(WarcRecord.id).limit(1)
    ).scalar_one_or_none()


def record_dict(record: WarcRecord) -> dict[str, object]:
    return {"warc_file": record.warc_file, "record_id": record.record_id, "offset": record.offset,
            "length": record.length, "record_type": record.record_type, "target_uri": record.target_uri,
            "warc_date": record.warc_date, "payload_sha256": record.payload_sha256, "refers_to": record.refers_to}


# --- writing copies ------------------------------------------------------------------------
def warc_stem(run_id: int) -> str:
    return f"GOVEVIDENCE-{run_id:05d}"


def warcinfo_fields(run: CrawlRun, description: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "software": f"GovEvidence/{govevidence.__version__} (export)",
        "format": "WARC File Format 1.1",
        "conformsTo": "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "isPartOf": f"govevidence-run-{run.id}",
        "description": description,
        **(extra or {}),
    }


def write_copy_warc(path: Path, info: dict[str, str], members: Iterable[bytes]) -> None:
    """A new WARC file: a warcinfo record of its own, then the given gzip members unchanged."""
    from crawler.warc import Sha256WARCWriter

    with open(path, "wb") as fh:
        writer = Sha256WARCWriter(fh, gzip=True, warc_version="1.1")
        writer.write_record(writer.create_warcinfo_record(path.name, info))
        for member in members:
            fh.write(member)


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC; naive database times are UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat()
