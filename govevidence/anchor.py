"""RFC 3161 time-stamps of sealed runs: a witness of the evidence outside the database.

When a run is sealed (its manifest written), a time-stamping authority (TSA) signs an
imprint: the SHA-256 of the canonical JSON

    {"audit_entry_id": …, "audit_hash": …, "manifest_sha256": …, "run": …}

where the audit entry is the run's ``run.manifest`` entry, the head of the audit chain
at sealing. The token is kept twice: in ``run_anchors`` and as
``runs/run-NNNNN/anchor.tsr`` beside the manifest. Whoever rewrites the audit chain
afterwards, however consistently, changes that entry's hash, and no one but the TSA
can sign a new imprint.

``verify_anchors`` (part of ``govevidence verify``) checks each token's signature and
certificate chain against the TSA's certificates (``GOVEVIDENCE_TSA_CA_FILE``), that the
imprint is the one recomputed from the database and the manifest file as they are now,
that the audit entry at the time-stamped id still has the time-stamped hash and that
the manifest file still has the time-stamped digest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import audit
from db.models import AuditEntry, RunAnchor
from govevidence.manifest import file_sha256, run_folder

logger = logging.getLogger(__name__)

METHOD = "rfc3161"
TOKEN_FILE = "anchor.tsr"
DEFAULT_TIMEOUT = 10.0
MAX_REPLY = 1024 * 1024  # a time-stamp reply is a few kilobytes


class AnchorError(Exception):
    """A run could not be time-stamped; the message says why (one line)."""


def tsa_settings(settings: Any = None) -> tuple[str | None, str | None, float]:
    """(TSA URL, CA file, timeout) from Scrapy settings if given, else the environment."""
    get = settings.get if settings is not None else (lambda name, default=None: default)
    url = get("GOVEVIDENCE_TSA_URL") or os.environ.get("GOVEVIDENCE_TSA_URL") or None
    ca_file = get("GOVEVIDENCE_TSA_CA_FILE") or os.environ.get("GOVEVIDENCE_TSA_CA_FILE") or None
    timeout = float(get("GOVEVIDENCE_TSA_TIMEOUT") or os.environ.get("GOVEVIDENCE_TSA_TIMEOUT") or DEFAULT_TIMEOUT)
    return url, ca_file, timeout


def imprint_document(run_id: int, manifest_sha256: str, audit_entry_id: int, audit_hash: str) -> bytes:
    """The canonical JSON the TSA's imprint is the SHA-256 of."""
    return audit.canonical_json({"run": run_id, "manifest_sha256": manifest_sha256,
                                 "audit_entry_id": audit_entry_id, "audit_hash": audit_hash}).encode("utf-8")


def manifest_entry(session: Session, run_id: int) -> AuditEntry | None:
    """The newest ``run.manifest`` audit entry of a run: the chain head when it was sealed."""
    entries = session.execute(
        select(AuditEntry).where(AuditEntry.action == "run.manifest", AuditEntry.entity == "crawl_runs",
                                 AuditEntry.entity_id == run_id).order_by(AuditEntry.id.desc())
    ).scalars()
    return next((e for e in entries if e.data.get("run") == run_id), None)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- talking to the TSA -----------------------------------------------------------------
def request_token(tsa_url: str, document: bytes, timeout: float = DEFAULT_TIMEOUT) -> tuple[bytes, Any]:
    """Ask the TSA to time-stamp ``document``; returns (DER reply, decoded reply).

    Raises AnchorError when the TSA is unreachable, refuses, or answers anything but a
    granted reply over this very imprint and nonce.
    """
    request = TimestampRequestBuilder().data(document).hash_algorithm(HashAlgorithm.SHA256).build()
    post = urllib.request.Request(tsa_url, data=request.as_bytes(), method="POST",
                                  headers={"Content-Type": "application/timestamp-query"})
    try:
        with urllib.request.urlopen(post, timeout=timeout) as answer:
            body = answer.read(MAX_REPLY + 1)
    except urllib.error.HTTPError as exc:
        raise AnchorError(f"TSA answered HTTP {exc.code}") from None
    except http.client.HTTPException as exc:
        raise AnchorError(f"TSA answered no valid HTTP ({_one_line(exc)})") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise AnchorError(f"TSA unreachable ({_one_line(reason) if isinstance(reason, BaseException) else reason})") from None
    if len(body) > MAX_REPLY:
        raise AnchorError("TSA reply is too large to be a time-stamp reply")
    try:
        reply = decode_timestamp_response(body)
        status = PKIStatus(reply.status)
    except Exception as exc:  # the decoder raises ValueError and others on garbage
        raise AnchorError(f"TSA reply is not a time-stamp response ({_one_line(exc)})") from None
    if status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        raise AnchorError(f"TSA refused the request (status {status.name})")
    try:
        info = reply.tst_info
        imprint, nonce = info.message_imprint.message, info.nonce
    except Exception as exc:
        raise AnchorError(f"TSA reply has no readable token ({_one_line(exc)})") from None
    if imprint != hashlib.sha256(document).digest():
        raise AnchorError("TSA time-stamped another imprint than the one asked for")
    if request.nonce is not None and nonce != request.nonce:
        raise AnchorError("TSA reply carries another nonce than the request")
    return body, reply


def load_certificates(ca_file: str | Path) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """(roots, intermediates) from a PEM file: self-signed certificates are roots."""
    certificates = x509.load_pem_x509_certificates(Path(ca_file).read_bytes())
    roots = [c for c in certificates if c.issuer == c.subject]
    others = [c for c in certificates if c.issuer != c.subject]
    if not roots:  # a file naming only the TSA's issuing certificate trusts that one
        return others, []
    return roots, others


def check_signature(reply: Any, imprint: bytes, ca_file: str | Path) -> None:
    """Raise VerificationError unless the token's signature and chain verify against the CA file
    and it time-stamps ``imprint``."""
    roots, intermediates = load_certificates(ca_file)
    builder = VerifierBuilder()
    for certificate in roots:
        builder = builder.add_root_certificate(certificate)
    for certificate in intermediates:
        builder = builder.add_intermediate_certificate(certificate)
    builder.build().verify(reply, imprint)


def _gen_time(reply: Any) -> dt.datetime | None:
    try:
        value = reply.tst_info.gen_time
    except Exception:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


# --- sealing ---------------------------------------------------------------------------
def seal_run(session: Session, run_id: int, root: Path, tsa_url: str, ca_file: str | None = None,
             timeout: float = DEFAULT_TIMEOUT) -> RunAnchor:
    """Time-stamp a sealed run; store the token in ``run_anchors`` and beside the manifest.

    Raises AnchorError (one line, nothing stored) when the run has no intact manifest
    or the TSA does not deliver a token that checks out.
    """
    entry = manifest_entry(session, run_id)
    if entry is None:
        raise AnchorError(f"run {run_id} has no manifest to time-stamp")
    manifest_path = root / entry.data["path"]
    if not manifest_path.exists():
        raise AnchorError(f"{entry.data['path']} is missing")
    manifest_sha256 = file_sha256(manifest_path)
    if manifest_sha256 != entry.data["sha256"]:
        raise AnchorError(f"{entry.data['path']} differs from its audit entry")
    document = imprint_document(run_id, manifest_sha256, entry.id, entry.hash)
    imprint = hashlib.sha256(document).digest()
    tsr, reply = request_token(tsa_url, document, timeout)
    if ca_file:
        try:
            check_signature(reply, imprint, ca_file)
        except (VerificationError, ValueError, OSError) as exc:
            raise AnchorError(f"token does not verify against {Path(ca_file).name} ({_one_line(exc)})") from None

    folder = run_folder(root, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    existing = session.execute(select(RunAnchor.id).where(RunAnchor.run_id == run_id)).scalars().all()
    name = TOKEN_FILE if not existing and not (folder / TOKEN_FILE).exists() else f"anchor-{len(existing) + 1}.tsr"
    path = folder / name
    partial = path.with_suffix(".tsr.part")
    partial.write_bytes(tsr)
    partial.replace(path)
    anchor = RunAnchor(run_id=run_id, method=METHOD, audit_entry_id=entry.id, audit_hash=entry.hash,
                       manifest_sha256=manifest_sha256, tsa_url=tsa_url,
                       token=tsr, token_file=str(path.relative_to(root)), gen_time=_gen_time(reply))
    session.add(anchor)
    session.flush()
    audit.append(session, "crawler", "run.anchor", "run_anchors", anchor.id,
                 {"run": run_id, "method": METHOD, "imprint_sha256": imprint.hex(),
                  "token_sha256": hashlib.sha256(tsr).hexdigest(), "file": anchor.token_file})
    return anchor


# --- verification ----------------------------------------------------------------------
def verify_anchors(session: Session, run_id: int, root: Path, ca_file: str | None = None) -> list[str]:
    """Problems with a run's time-stamp tokens, each naming what is wrong; empty when intact
    (or when the run was never time-stamped)."""
    ca_file = ca_file or tsa_settings()[1]
    rows = session.execute(select(RunAnchor).where(RunAnchor.run_id == run_id).order_by(RunAnchor.id)).scalars().all()
    folder = run_folder(root, run_id)
    on_disk = {str(p.relative_to(root)) for p in folder.glob("anchor*.tsr")} if folder.exists() else set()
    if not rows and not on_disk:
        return []

    problems: list[str] = []
    entry = manifest_entry(session, run_id)
    current: bytes | None = None  # the imprint recomputed from the database and files as they are now
    manifest: tuple[str, str] | None = None  # (path, SHA-256) of the manifest as it is now
    if entry is None:
        problems.append(f"run {run_id}: time-stamped, but its run.manifest audit entry is gone")
    elif (root / entry.data["path"]).exists():
        manifest = (entry.data["path"], file_sha256(root / entry.data["path"]))
        current = hashlib.sha256(imprint_document(run_id, manifest[1], entry.id, entry.hash)).digest()
    if ca_file is None:
        logger.warning("Run %s: time-stamp signatures not checked (GOVEVIDENCE_TSA_CA_FILE is not set)", run_id)

    tokens: list[tuple[str, bytes, RunAnchor | None]] = []
    for row in rows:
        label = f"run_anchors {row.id}"
        if row.token_file:
            path = root / row.token_file
            if not path.exists():
                problems.append(f"{row.token_file}: file missing")
            elif path.read_bytes() != row.token:
                problems.append(f"{row.token_file}: file differs from the token in {label}")
                tokens.append((row.token_file, path.read_bytes(), row))
        tokens.append((label, row.token or b"", row))
    for relative in sorted(on_disk - {row.token_file for row in rows}):
        problems.append(f"{relative}: time-stamp token that no run_anchors row lists")
        tokens.append((relative, (root / relative).read_bytes(), None))

    for label, token, row in tokens:
        problems += _check_token(session, label, token, row, current, ca_file, manifest)
    return problems


def _check_token(session: Session, label: str, token: bytes, row: RunAnchor | None, current: bytes | None,
                 ca_file: str | None, manifest: tuple[str, str] | None) -> list[str]:
    try:
        reply = decode_timestamp_response(token)
        imprint = reply.tst_info.message_imprint.message
    except Exception as exc:
        return [f"{label}: not a readable time-stamp token ({_one_line(exc)})"]
    problems: list[str] = []
    if ca_file:
        try:
            check_signature(reply, imprint, ca_file)
        except (VerificationError, ValueError, OSError) as exc:
            problems.append(f"{label}: signature or certificate chain does not verify against "
                            f"{Path(ca_file).name} ({_one_line(exc)})")
    if row is not None:
        stored = hashlib.sha256(imprint_document(row.run_id, row.manifest_sha256, row.audit_entry_id,
                                                 row.audit_hash)).digest()
        if stored != imprint:
            problems.append(f"{label}: row does not match the imprint its token time-stamps")
        witnessed = session.get(AuditEntry, row.audit_entry_id)
        if witnessed is None:
            problems.append(f"audit_log {row.audit_entry_id}: time-stamped chain head is gone")
        elif witnessed.hash != row.audit_hash:
            problems.append(f"audit_log {row.audit_entry_id}: hash differs from the time-stamped one "
                            f"(the chain was rewritten after {row.gen_time or 'sealing'})")
        if manifest is not None and manifest[1] != row.manifest_sha256:
            problems.append(f"{manifest[0]}: differs from the time-stamped digest")
    if current is None or current != imprint:
        problems.append(f"{label}: time-stamped imprint {imprint.hex()[:16]}… does not match the run's manifest "
                        f"and audit chain as they are now")
    return problems
