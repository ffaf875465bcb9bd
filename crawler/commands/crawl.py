"""``scrapy crawl``: Scrapy's command, recording the run, with one clear line on failure.

Before Scrapy starts, the folder for the run's files is checked and the evidence database
is brought to the newest schema (under the migration lock, see ``db.session.upgrade``). A bad registry, an unknown target code, a
database that cannot be used, a folder that cannot be written end the command with one
line on stderr and exit code 2; a run that was started and then failed (e.g. its WARC
folder cannot be written) is recorded as ``failed`` with its reason, said in one line,
exit code 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import traceback
from pathlib import Path
from typing import Any

from scrapy.commands.crawl import Command as ScrapyCrawl
from twisted.internet.defer import Deferred

from crawler.addon import recording


def prepare_recording(settings: Any) -> None:
    """Check the folder the run's files go to, open the database the crawl records into
    and migrate it (under the lock)."""
    from db.session import data_dir, ensure_schema, get_engine, writable_folder

    archive = settings.get("GOVEVIDENCE_ARCHIVE_DIR")
    writable_folder(Path(archive) if archive else data_dir(),
                    "归档目录（GOVEVIDENCE_ARCHIVE_DIR）" if archive else "数据目录（GOVEVIDENCE_DATA_DIR）")
    ensure_schema(get_engine(settings.get("DATABASE_URL") or None))


class Command(ScrapyCrawl):
    default_settings = {**ScrapyCrawl.default_settings, "GOVEVIDENCE_RECORD": True}

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            super().run(args, opts)  # Scrapy's usage errors
            return
        name = args[0]
        assert self.crawler_process and self.settings is not None
        try:
            if recording(self.settings):
                prepare_recording(self.settings)
            crawler = self._create_crawler(name)
        except KeyError as exc:  # the spider loader: no spider of that name
            self._fail(name, exc.args[0] if exc.args else exc, 2)
            return
        except Exception as exc:
            self._fail(name, exc, 2)
            return
        errors: list[BaseException] = []
        outcome = self.crawler_process.crawl(crawler, **opts.spargs)
        if isinstance(outcome, asyncio.Future):
            outcome.add_done_callback(
                lambda task: errors.append(task.exception()) if not task.cancelled() and task.exception() else None)
        elif isinstance(outcome, Deferred):
            outcome.addErrback(lambda failure: errors.append(failure.value))
        self.crawler_process.start()
        if errors:
            # Before the run started (spider arguments, registry, database, components) or while
            # opening it; a run already started is closed by then and recorded as such.
            self._fail(name, errors[0], 2)
            return
        if self.crawler_process.bootstrap_failed:
            self.exitcode = 1
            return
        reason = str(crawler.stats.get_value("finish_reason") or "")
        if "error" in reason:  # the run is recorded as failed (crawler/pipelines.py)
            from crawler.run import RunContext

            context = crawler.get_extension(RunContext)
            run = context.opened_run_id if context is not None else None
            detail = crawler.stats.get_value("govevidence/error") or reason
            where = f"运行 {run} 失败（{reason}）" if run else f"抓取失败（{reason}）"
            self._fail(name, f"{where}：{detail}", 1)

    def _fail(self, spider: str, problem: BaseException | str, exitcode: int) -> None:
        self.exitcode = exitcode
        url = self.settings.get("DATABASE_URL") if self.settings is not None else None
        # The wording is the application's (GOVEVIDENCE_ERRORS_MODULE); the plumbing only prints it.
        module = self.settings.get("GOVEVIDENCE_ERRORS_MODULE") if self.settings is not None else None
        errors = importlib.import_module(module) if module else None
        if isinstance(problem, BaseException):
            message = errors.user_message(problem, url) if errors else None
            if message is None:  # not a problem of input or environment: show where it came from
                traceback.print_exception(problem, file=sys.stderr)
                return
        else:
            message = errors.hide_passwords(errors.one_line(problem), url) if errors else " ".join(problem.split())
        print(f"scrapy crawl {spider}: {message}", file=sys.stderr, flush=True)
