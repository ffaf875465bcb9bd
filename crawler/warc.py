"""Gzip WARC/1.1 files with SHA-256 digests, rotated by size.

Raw HTTP exchanges become ``request``/``response`` record pairs; what a browser or the
crawler derived (rendered DOM, screenshots) becomes ``resource`` records under
``urn:rendered:<url>`` / ``urn:screenshot:<url>`` — never disguised as responses.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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
        self._fh = open(path, "wb")
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


def utc_timestamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S")
