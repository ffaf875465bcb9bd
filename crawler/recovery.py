"""Runs a hard kill left behind: found at the next crawl's start (or by ``seal``), their
WARC files checked and the records missing from the index read back from the files.

A run is dead when its row still says ``running`` but the process that recorded it (host
name and pid in its stats) no longer exists on this host. It is marked ``interrupted`` /
``killed``, with the problems of its torn WARC files (``truncated_warc``) and the number of
records indexed again (``recovered_warc_records``) in its stats and in a ``run.killed``
audit entry.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from crawler.archive import index_rows
from crawler.warc import index_warc_file, run_warc_files, verify_warc_file
from db import audit
from db.models import CrawlRun, RunWorker, WarcRecord

logger = logging.getLogger(__name__)


def this_host() -> dict[str, Any]:
    """What a run records about the process recording it."""
    return {"hostname": socket.gethostname(), "pid": os.getpid()}


def process_alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead(run: CrawlRun, hostname: str | None = None) -> bool:
    """Whether a ``running`` run was recorded by processes of this host that no longer exist.

    The run's workers (``run_workers``) say who records it: it is dead when every expected worker
    joined, none is still at work on another host, and those of this host are gone. A worker of
    another host cannot be told from one still running, so such a run is never dead here. (A run
    without worker rows names its process in its stats.)"""
    if run.status != "running":
        return False
    hostname = hostname or socket.gethostname()
    session = object_session(run)
    workers = session.execute(select(RunWorker).where(RunWorker.run_id == run.id)).scalars().all() if session else []
    if not workers:
        host = run.stats or {}
        return host.get("hostname") == hostname and not process_alive(host.get("pid"))
    if len(workers) < (run.workers or 1):
        return False  # a worker may still join
    if any(w.finished_at is None and w.hostname != hostname for w in workers):
        return False
    return all(not process_alive(w.pid) for w in workers if w.hostname == hostname) and any(
        w.hostname == hostname for w in workers)


def reindex(session: Session, run_id: int, path: Path, label: str) -> int:
    """Index the complete records of a dead run's WARC file that its index lacks."""
    known = set(session.execute(
        select(WarcRecord.record_id).where(WarcRecord.run_id == run_id, WarcRecord.warc_file == label)).scalars())
    batch: list[dict[str, Any]] = []
    count = 0
    for row in index_warc_file(path, label):
        if row["record_id"] in known:
            continue
        batch.append(row)
        if len(batch) >= 500:
            count += len(index_rows(session, run_id, batch, recovered=True))
            batch = []
    return count + len(index_rows(session, run_id, batch, recovered=True))


def recover_dead_run(session: Session, run: CrawlRun, archive_root: Path, actor: str = "crawler") -> dict[str, list[str]]:
    """Mark a dead run interrupted / killed, re-index its files; returns each file's problems."""
    host = run.stats or {}
    torn: list[str] = []
    problems: dict[str, list[str]] = {}
    recovered = 0
    for path in run_warc_files(archive_root, run.id):
        label = str(path.relative_to(archive_root))
        problems[label] = verify_warc_file(path, label)
        torn += problems[label]
        recovered += reindex(session, run.id, path, label)
    run.status, run.finish_reason = "interrupted", "killed"
    run.stats = {**host, "truncated_warc": torn, "recovered_warc_records": recovered}
    for problem in torn:
        logger.warning("Run %s was killed: %s", run.id, problem)
    if recovered:
        logger.warning("Run %s was killed: %d WARC record(s) indexed again from its files", run.id, recovered)
    audit.append(session, actor, "run.killed", "crawl_runs", run.id,
                 {"run": run.id, "truncated_warc": torn, "recovered_warc_records": recovered})
    return problems


def close_dead_runs(session: Session, archive_root: Path, hostname: str | None = None) -> list[int]:
    """Recover every dead run of this host; returns their ids."""
    dead = [run for run in session.execute(select(CrawlRun).where(CrawlRun.status == "running")).scalars()
            if is_dead(run, hostname)]
    for run in dead:
        recover_dead_run(session, run, archive_root)
    return [run.id for run in dead]
