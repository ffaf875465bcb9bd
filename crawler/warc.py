"""Gzip WARC/1.1 files with SHA-256 digests, rotated by size, and the checks of such a file.

Raw HTTP exchanges become ``request``/``response`` record pairs; what a browser or the
crawler derived (rendered DOM, screenshots) becomes ``resource`` records under
``urn:rendered:<url>`` / ``urn:screenshot:<url>`` — never disguised as responses.

``verify_warc_file`` names a truncated or corrupt file and ``index_warc_file`` reads the
index rows of its complete records back (after a hard kill). Payloads are read exactly as
stored, in bounded blocks: a gzip answer is never decoded, so a decompression bomb costs
no memory.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter


class Sha256WARCWriter(WARCWriter):
    """warcio writer whose block and payload digests are SHA-256 instead of SHA-1."""

    @staticmethod
    def _create_digester() -> Digester:
        return Digester("sha256")


def warc_digest(hex_digest: str) -> str:
    """``sha256:<BASE32>``, the form of WARC-Payload-Digest, from a hex SHA-256."""
    return "sha256:" + base64.b32encode(bytes.fromhex(hex_digest)).decode("ascii")


@dataclass(frozen=True)
class RecordPointer:
    """Where an archived record lives: enough to open it again and check it."""

    warc_file: str  # relative to the archive root
    record_id: str
    offset: int
    length: int
    record_type: str
    target_uri: str
    warc_date: str
    payload_sha256: str  # hex

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RotatingWarcWriter:
    """Appends records to ``<root>/<prefix>-<serial>.warc.gz``, starting a new file past ``max_size``."""

    def __init__(self, root: Path, subdir: str, prefix: str, max_size: int, info: dict[str, str]) -> None:
        self.root = root
        self.folder = root / subdir
        self.folder.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.max_size = max_size
        self.info = info
        self.serial = 0
        self.files: list[Path] = []
        self._fh: io.BufferedWriter | None = None
        self._writer: Sha256WARCWriter | None = None
        self._name = ""

    # --- files ---------------------------------------------------------------------------
    def _open_next(self) -> None:
        self.close()
        self.serial += 1
        self._name = f"{self.prefix}-{self.serial:05d}.warc.gz"
        path = self.folder / self._name
        self._fh = open(path, "xb")  # never overwrite another writer's file
        self._writer = Sha256WARCWriter(self._fh, gzip=True, warc_version="1.1")
        self.files.append(path)
        self._writer.write_record(self._writer.create_warcinfo_record(self._name, self.info))
        self._fh.flush()

    def _ready(self) -> Sha256WARCWriter:
        if self._fh is None or self._fh.tell() >= self.max_size:
            self._open_next()
        assert self._writer is not None
        return self._writer

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            self._fh.close()
            self._fh = None
            self._writer = None

    def _write(self, record: Any, payload_sha256: str) -> RecordPointer:
        writer = self._ready()
        assert self._fh is not None
        offset = self._fh.tell()
        writer.write_record(record)
        self._fh.flush()
        headers = record.rec_headers
        return RecordPointer(
            warc_file=str((self.folder / self._name).relative_to(self.root)),
            record_id=headers.get_header("WARC-Record-ID"),
            offset=offset,
            length=self._fh.tell() - offset,
            record_type=headers.get_header("WARC-Type"),
            target_uri=headers.get_header("WARC-Target-URI"),
            warc_date=headers.get_header("WARC-Date"),
            payload_sha256=payload_sha256,
        )

    # --- records ---------------------------------------------------------------------------
    def write_exchange(self, url: str, *, method: str, request_headers: list[tuple[str, str]], request_body: bytes,
                       protocol: str, status: int, reason: str, response_headers: list[tuple[str, str]],
                       body: bytes, revisit_of: dict[str, str] | None = None) -> tuple[RecordPointer, RecordPointer]:
        """A request record and its response (or identical-payload revisit) record; returns (response, request)."""
        writer = self._ready()
        digest = hashlib.sha256(body).hexdigest()
        http = StatusAndHeaders(f"{status} {reason}".strip(), response_headers, protocol=protocol)
        if revisit_of:
            response = writer.create_revisit_record(
                url, warc_digest(digest), revisit_of["target_uri"], revisit_of["warc_date"], http_headers=http)
            response.rec_headers.add_header("WARC-Refers-To", revisit_of["record_id"])
        else:
            response = writer.create_warc_record(url, "response", payload=io.BytesIO(body), length=len(body),
                                                 http_headers=http)
        path = url.split("://", 1)[-1].partition("/")[2]
        request_http = StatusAndHeaders(f"{method} /{path} HTTP/1.1", request_headers, is_http_request=True)
        request = writer.create_warc_record(url, "request", payload=io.BytesIO(request_body),
                                            length=len(request_body), http_headers=request_http)
        request.rec_headers.add_header("WARC-Concurrent-To", response.rec_headers.get_header("WARC-Record-ID"))
        response_pointer = self._write(response, digest)
        request_pointer = self._write(request, hashlib.sha256(request_body).hexdigest())
        return response_pointer, request_pointer

    def write_resource(self, uri: str, content_type: str, payload: bytes,
                       concurrent_to: str | None = None) -> RecordPointer:
        writer = self._ready()
        record = writer.create_warc_record(uri, "resource", payload=io.BytesIO(payload), length=len(payload),
                                           warc_content_type=content_type)
        if concurrent_to:
            record.rec_headers.add_header("WARC-Concurrent-To", concurrent_to)
        return self._write(record, hashlib.sha256(payload).hexdigest())


def run_warc_files(root: Path, run_id: int) -> list[Path]:
    """The WARC files of a run under an archive root (``warc/run-NNNNN/*.warc.gz``)."""
    return sorted((root / "warc").glob(f"run-{run_id:05d}/*.warc.gz"))


def utc_timestamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S")


# --- checking files ----------------------------------------------------------------------
# Payloads are hashed as stored: the bytes after the HTTP headers, read from the record's
# raw stream in bounded blocks. Content-Encoding (gzip, br …) is never decoded, so a
# compressed answer hashes to what the server sent and a decompression bomb stays small.
CHUNK = 1024 * 1024


def drain(stream: Any, digest: Any = None) -> int:
    """Read a stream to its end in bounded blocks, feeding a digest; returns the byte count."""
    size = 0
    while True:
        block = stream.read(CHUNK)
        if not block:
            return size
        size += len(block)
        if digest is not None:
            digest.update(block)


def brief_error(exc: Exception) -> str:
    """Exception type and the printable start of its message (warcio quotes raw bytes)."""
    text = "".join(ch for ch in str(exc)[:200] if ch.isprintable() and ord(ch) < 0x250)
    return f"{type(exc).__name__}: {text[:80]}".rstrip(": ")


def hex_digest(value: str | None) -> str | None:
    """Hex SHA-256 from a ``sha256:<BASE32>`` WARC digest, None for any other form."""
    if not value or not value.lower().startswith("sha256:"):
        return None
    try:
        return base64.b32decode(value.split(":", 1)[1]).hex()
    except (ValueError, binascii.Error):
        return None


def _gzip_ok(path: Path) -> str | None:
    """None when every gzip member of a file is complete, else why not (bounded memory)."""
    decompressor = zlib.decompressobj(31)
    pending = False  # bytes of a member not yet finished were fed
    try:
        with open(path, "rb") as fh:
            for data in iter(lambda: fh.read(CHUNK), b""):
                while data:
                    pending = True
                    decompressor.decompress(data, CHUNK)  # output is thrown away, at most CHUNK at once
                    data = decompressor.unconsumed_tail
                    if decompressor.eof:
                        data, decompressor, pending = decompressor.unused_data, zlib.decompressobj(31), False
    except zlib.error as exc:
        return brief_error(exc)
    if pending:
        return "EOFError: compressed file ended before the end-of-stream marker was reached"
    return None


def verify_warc_file(path: Path, label: str) -> list[str]:
    """Read every gzip member and record of a WARC; name a truncated or corrupt file.

    warcio reads a torn last gzip member without complaint, so the gzip stream is
    checked to its end-of-stream marker first, then each record's digests. Payloads are
    read raw and in bounded blocks.
    """
    torn = _gzip_ok(path)
    if torn:
        return [f"{label}: truncated or corrupt gzip data ({torn})"]
    problems: list[str] = []
    count = 0
    try:
        with open(path, "rb") as fh:
            iterator = ArchiveIterator(fh, check_digests=True)
            for record in iterator:
                drain(record.raw_stream)
                count += 1
                if record.digest_checker.passed is False:
                    problems.append(f"{label}: record {record.rec_headers.get_header('WARC-Record-ID')} "
                                    f"@ {iterator.get_record_offset()} fails its digest")
    except Exception as exc:  # warcio raises several types for malformed records
        problems.append(f"{label}: truncated or corrupt after {count} readable record(s) ({brief_error(exc)})")
    return problems


def _member_complete(fh: Any, offset: int, length: int) -> bool:
    """Whether the bytes [offset, offset+length) are one whole gzip member (bounded memory)."""
    fh.seek(offset)
    decompressor = zlib.decompressobj(31)
    remaining = length
    try:
        while remaining > 0:
            data = fh.read(min(CHUNK, remaining))
            if not data:
                return False
            remaining -= len(data)
            while data and not decompressor.eof:
                decompressor.decompress(data, CHUNK)
                data = decompressor.unconsumed_tail
    except zlib.error:
        return False
    return decompressor.eof


def index_warc_file(path: Path, label: str) -> Iterator[dict[str, Any]]:
    """The ``warc_records`` rows of every complete record of a WARC file (warcinfo excepted).

    For re-indexing a file whose index was lost (a killed crawl): reads the file once, in
    bounded memory, and stops at the first unreadable record; a torn last record, whose
    gzip member or digests are incomplete, is left out.
    """
    try:
        with open(path, "rb") as fh, open(path, "rb") as probe:
            iterator = ArchiveIterator(fh, check_digests=True)
            for record in iterator:
                digest = hashlib.sha256()
                drain(record.raw_stream, digest)
                headers = record.rec_headers
                offset, length = iterator.get_record_offset(), iterator.get_record_length()
                if record.rec_type == "warcinfo":
                    continue
                if record.digest_checker.passed is False or not _member_complete(probe, offset, length):
                    return
                payload = digest.hexdigest()
                if record.rec_type == "revisit":
                    payload = hex_digest(headers.get_header("WARC-Payload-Digest")) or payload
                yield {
                    "warc_file": label, "record_id": headers.get_header("WARC-Record-ID"),
                    "record_type": record.rec_type, "target_uri": headers.get_header("WARC-Target-URI") or "",
                    "warc_date": headers.get_header("WARC-Date") or "", "offset": offset, "length": length,
                    "payload_sha256": payload, "refers_to": headers.get_header("WARC-Refers-To"),
                }
    except Exception:  # the rest of a torn or corrupt file cannot be read; verify names it
        return
