"""Several crawl workers on one run: the add-on, the shared duplicate filter and queue, the
workers' heartbeats, and two real workers crawling the sandbox together.

Needs the real Redis (``GOVEVIDENCE_TEST_REDIS_URL``, default ``redis://127.0.0.1:6379/0``;
every test uses its own key prefix and deletes its keys). The two-worker crawl also needs
PostgreSQL (``GOVEVIDENCE_TEST_POSTGRES_URL``): SQLite cannot be shared by processes writing
at once. Each is skipped, saying why, when its server is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from scrapy.exceptions import DontCloseSpider
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from w3lib.url import canonicalize_url

from crawler.budgets import RedisBudgetStore
from crawler.distributed import DistributedAddon, SharedDupeFilter, WorkerCoordinator
from db.models import CrawlRun, Finding, PageCapture, RunWorker, Source, Target, WarcRecord
from db.session import get_engine
from govevidence.crawl import SANDBOX_SETTINGS, scrapy_command
from tests.conftest import PG_ADMIN_URL, fresh_database
from tests.test_budgets import KEY, OTHER, RedisServer, open_redis_server

CRAWL_SETTINGS = {**SANDBOX_SETTINGS, "DOWNLOAD_TIMEOUT": "2", "LOG_LEVEL": "INFO"}
# Smaller than what the portals link from their home pages: which pages a source takes is
# decided while its home page is parsed, the same whichever worker parses it.
BUDGET = 8


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    yield from open_redis_server()


def project_settings(**given: str) -> Settings:
    """The project's settings with ``-s`` options, as ``scrapy crawl`` has them before add-ons."""
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("GOVEVIDENCE_RECORD", True, priority="command")
    settings.setdict(given, priority="cmdline")
    return settings


# --- the add-on ------------------------------------------------------------------------
def test_without_a_redis_url_the_crawl_is_unchanged():
    settings = project_settings()
    DistributedAddon(None).update_settings(settings)
    assert settings["SCHEDULER"] == "scrapy.core.scheduler.Scheduler"
    assert settings["GOVEVIDENCE_BUDGET_STORE"] == "crawler.budgets.MemoryBudgetStore"
    assert "crawler.distributed.WorkerCoordinator" not in settings.getdict("EXTENSIONS")


def test_with_a_redis_url_the_crawl_is_a_worker_of_the_run(redis_server):
    settings = project_settings(GOVEVIDENCE_REDIS_URL=redis_server.url, GOVEVIDENCE_RUN_ID="42",
                                GOVEVIDENCE_REDIS_PREFIX=redis_server.prefix)
    DistributedAddon(None).update_settings(settings)
    assert settings["SCHEDULER"] == "scrapy_redis.scheduler.Scheduler"
    assert settings["DUPEFILTER_CLASS"] == "crawler.distributed.SharedDupeFilter"
    assert settings["REDIS_URL"] == redis_server.url and settings.getbool("SCHEDULER_PERSIST")
    assert settings["SCHEDULER_QUEUE_KEY"] == f"{redis_server.prefix}:42:%(spider)s:requests"
    assert settings["SCHEDULER_DUPEFILTER_KEY"] == f"{redis_server.prefix}:42:%(spider)s:dupefilter"
    assert settings["GOVEVIDENCE_BUDGET_STORE"] == "crawler.budgets.RedisBudgetStore"
    assert "crawler.distributed.WorkerCoordinator" in settings.getdict("EXTENSIONS")
    # What is given on the command line stays; tools that do not record are left alone.
    given = project_settings(GOVEVIDENCE_REDIS_URL=redis_server.url, GOVEVIDENCE_RUN_ID="42",
                             GOVEVIDENCE_BUDGET_STORE="crawler.budgets.MemoryBudgetStore")
    DistributedAddon(None).update_settings(given)
    assert given["GOVEVIDENCE_BUDGET_STORE"] == "crawler.budgets.MemoryBudgetStore"
    tool = project_settings(GOVEVIDENCE_REDIS_URL=redis_server.url)
    tool.set("GOVEVIDENCE_RECORD", False, priority="command")
    DistributedAddon(None).update_settings(tool)
    assert tool["SCHEDULER"] == "scrapy.core.scheduler.Scheduler"


def _crawl_fails(tmp_path: Path, sandbox_registry: Path, **given: str) -> list[str]:
    command, env = scrapy_command("province_portals", args={"registry": str(sandbox_registry)},
                                  settings={**CRAWL_SETTINGS, **given},
                                  env={"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
                                       "GOVEVIDENCE_DATA_DIR": str(tmp_path)})
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("scrapy crawl province_portals:")]


def test_a_worker_needs_a_run_and_a_reachable_redis(redis_server, sandbox_registry, tmp_path):
    lines = _crawl_fails(tmp_path, sandbox_registry, GOVEVIDENCE_REDIS_URL=redis_server.url)
    assert len(lines) == 1 and "GOVEVIDENCE_RUN_ID" in lines[0] and "govevidence run open" in lines[0]
    lines = _crawl_fails(tmp_path, sandbox_registry, GOVEVIDENCE_REDIS_URL="redis://:secret-pw@127.0.0.1:1/0",
                         GOVEVIDENCE_RUN_ID="1")
    assert len(lines) == 1 and "无法连接 Redis" in lines[0] and "secret-pw" not in lines[0]
    assert redis_server.keys() == []


# --- the shared duplicate filter and queue ---------------------------------------------
def _worker_crawler(server: RedisServer, sandbox_registry: Path, run_id: str = "5", **extra):
    from spiders.province_portals import ProvincePortalsSpider

    settings = project_settings(GOVEVIDENCE_REDIS_URL=server.url, GOVEVIDENCE_RUN_ID=run_id,
                                GOVEVIDENCE_REDIS_PREFIX=server.prefix, **extra)
    DistributedAddon(None).update_settings(settings)
    names = ("REQUEST_FINGERPRINTER_CLASS", "SCHEDULER", "DUPEFILTER_CLASS", "REDIS_URL", "SCHEDULER_PERSIST",
             "SCHEDULER_QUEUE_KEY", "SCHEDULER_DUPEFILTER_KEY", "GOVEVIDENCE_BUDGET_STORE", "GOVEVIDENCE_REDIS_URL",
             "GOVEVIDENCE_RUN_ID", "GOVEVIDENCE_REDIS_PREFIX", "GOVEVIDENCE_REDIS_TTL_DAYS", *extra)
    # Of the extensions only the budgets: the spider reaches them when its requests are serialized.
    crawler = get_crawler(ProvincePortalsSpider, settings_dict={
        **{name: settings[name] for name in names}, "EXTENSIONS": {"crawler.budgets.BudgetStore": 100}})
    crawler.spider = ProvincePortalsSpider.from_crawler(crawler, registry=str(sandbox_registry), targets="910000")
    return crawler


def test_workers_share_one_queue_and_one_filter_by_capture(redis_server, sandbox_registry):
    from scrapy_redis.scheduler import Scheduler

    from spiders.sources import SourceConfig

    crawlers = [_worker_crawler(redis_server, sandbox_registry) for _ in range(2)]
    schedulers = [Scheduler.from_crawler(c) for c in crawlers]
    for scheduler, crawler in zip(schedulers, crawlers):
        scheduler.open(crawler.spider)
        assert isinstance(scheduler.df, SharedDupeFilter)
    spider = crawlers[0].spider
    source = SourceConfig(*KEY, max_depth=2, max_pages=60)
    page = spider.page_request(source, "http://portal.example/a?y=2&x=1", depth=1, referer=KEY[2])
    assert schedulers[0].enqueue_request(page)
    # The other worker's copy of the same capture is dropped; other captures of the URL are not.
    assert not schedulers[1].enqueue_request(page.replace(url="http://portal.example/a?x=1&y=2"))
    other_source = spider.page_request(SourceConfig(*OTHER, max_depth=1, max_pages=60), page.url, depth=1)
    drawn = spider.page_request(source, page.url, depth=1, render_reason="script_shell")
    assert schedulers[1].enqueue_request(other_source) and schedulers[1].enqueue_request(drawn)
    assert crawlers[1].stats.get_value("dupefilter/filtered") == 1
    # The filter keeps the crawl's own fingerprints.
    stored = redis_server.client.smembers(f"{redis_server.prefix}:5:province_portals:dupefilter")
    assert crawlers[0].request_fingerprinter.fingerprint(page).hex() in stored and len(stored) == 3
    # Either worker takes what either queued: pickled with plain meta, the callback a spider method.
    assert len(schedulers[0]) == len(schedulers[1]) == 3
    taken = [schedulers[1].next_request() for _ in range(3)]
    assert schedulers[0].next_request() is None
    back = next(r for r in taken if r.meta["render_reason"] is None and tuple(r.meta["source"]) == KEY)
    assert back.url == page.url and back.meta == page.meta and back.priority == page.priority
    assert back.callback == crawlers[1].spider.parse_page and back.errback == crawlers[1].spider.page_failed
    for scheduler in schedulers:
        scheduler.close("finished")
    assert redis_server.client.exists(f"{redis_server.prefix}:5:province_portals:dupefilter")  # persisted


def test_an_idle_worker_waits_for_busy_ones_then_closes(redis_server, sandbox_registry):
    crawlers = [_worker_crawler(redis_server, sandbox_registry, GOVEVIDENCE_WORKER_IDLE_GRACE="0.4",
                                GOVEVIDENCE_WORKER_HEARTBEAT_TTL="2") for _ in range(2)]
    idle, busy = [WorkerCoordinator.from_crawler(c) for c in crawlers]
    idle.publish(0)
    busy.publish(3)  # another worker, downloading three pages
    with pytest.raises(DontCloseSpider):
        idle.spider_idle(crawlers[0].spider)
    assert idle.busy_workers() == {busy.token: 3}
    busy.publish(0)
    # All quiet: it still waits out the grace period, in case work comes in.
    with pytest.raises(DontCloseSpider):
        idle.spider_idle(crawlers[0].spider)
    time.sleep(0.5)
    idle.spider_idle(crawlers[0].spider)  # may close
    # A worker that stops beating is no longer waited for.
    busy.publish(2)
    with pytest.raises(DontCloseSpider):
        idle.spider_idle(crawlers[0].spider)
    time.sleep(2.2)
    assert idle.busy_workers() == {}
    assert busy.token not in redis_server.client.smembers(idle.workers_key)
    # The worker set expires with the run's other keys; closing leaves it, beat and all.
    assert 6 * 86400 < redis_server.client.ttl(idle.workers_key) <= 7 * 86400
    idle.spider_closed(crawlers[0].spider, "finished")
    assert not redis_server.client.sismember(idle.workers_key, idle.token)
    assert not redis_server.client.exists(idle.worker_key(idle.token))


# --- two workers, one run ---------------------------------------------------------------------
def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``govevidence ARGS`` as a process of its own, with the environment of the workers."""
    code = "import sys; from govevidence.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)


def _run_of(url: str, run_id: int) -> dict:
    """What a run recorded, comparable between runs: captures, WARC fetches, roll-ups."""
    engine = get_engine(url)
    with Session(engine) as session:
        rows = session.execute(
            select(Target.code, Source.kind, Source.url, PageCapture.requested_url, PageCapture.final_url,
                   PageCapture.rendered, PageCapture.render_reason, PageCapture.error_status)
            .join(Source, Source.id == PageCapture.source_id).join(Target, Target.id == Source.target_id)
            .where(PageCapture.run_id == run_id)).all()
        fetched = Counter(uri for uri, in session.execute(
            select(WarcRecord.target_uri).where(WarcRecord.run_id == run_id,
                                                WarcRecord.record_type.in_(("response", "revisit")))))
        rollups = dict(((code, indicator), verdict) for code, indicator, verdict in session.execute(
            select(Target.code, Finding.indicator, Finding.verdict).join(Target, Target.id == Finding.target_id)
            .where(Finding.run_id == run_id, Finding.scope == "target", Finding.judgement_id.is_(None))))
        per_source = session.execute(
            select(func.count(func.distinct(Finding.source_id))).where(Finding.run_id == run_id,
                                                                      Finding.scope == "source")).scalar_one()
        run = session.get(CrawlRun, run_id)
        workers = session.scalars(select(RunWorker).where(RunWorker.run_id == run_id).order_by(RunWorker.id)).all()
        out = {"captures": [tuple(r) for r in rows], "fetched": fetched, "rollups": rollups, "per_source": per_source,
               "status": run.status, "runs": session.scalar(select(func.count()).select_from(CrawlRun)),
               "workers": [(w.finished_at is not None, w.finish_reason, dict(w.stats or {})) for w in workers]}
    engine.dispose()
    return out


@pytest.fixture
def postgres_url(tmp_path):
    if not PG_ADMIN_URL:
        pytest.skip("two workers share one run only on PostgreSQL: set GOVEVIDENCE_TEST_POSTGRES_URL")
    with fresh_database("postgresql", tmp_path) as url:
        yield url


def test_two_workers_crawl_one_run(redis_server, postgres_url, sandbox_registry, tmp_path):
    settings = {**CRAWL_SETTINGS, "GOVEVIDENCE_MAX_PAGES_PER_SOURCE": str(BUDGET)}
    # The same crawl by one process, for comparison (its own database).
    alone = tmp_path / "alone"
    command, env = scrapy_command("province_portals", args={"registry": str(sandbox_registry)}, settings=settings,
                                  env={"DATABASE_URL": f"sqlite:///{alone / 'db.sqlite3'}",
                                       "GOVEVIDENCE_DATA_DIR": str(alone)})
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    single = _run_of(f"sqlite:///{alone / 'db.sqlite3'}", 1)

    # One run, opened once; two workers join it over one Redis and one PostgreSQL database,
    # writing into one archive folder.
    shared = tmp_path / "shared"
    env = {"DATABASE_URL": postgres_url, "GOVEVIDENCE_DATA_DIR": str(shared)}
    opened = _cli(env, "run", "open", "--spider", "province_portals", "--workers", "2",
                  "--registry", str(sandbox_registry))
    assert opened.returncode == 0, opened.stderr
    run_id = int(opened.stdout.strip().splitlines()[-1])
    worker_settings = {**settings, "GOVEVIDENCE_RUN_ID": str(run_id), "GOVEVIDENCE_REDIS_URL": redis_server.url,
                       "GOVEVIDENCE_REDIS_PREFIX": redis_server.prefix, "GOVEVIDENCE_WORKER_IDLE_GRACE": "3"}
    command, worker_env = scrapy_command("province_portals", args={"registry": str(sandbox_registry)},
                                         settings=worker_settings, env=env)
    started = time.monotonic()
    workers = [subprocess.Popen(command, env=worker_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    logs = [worker.communicate(timeout=600)[1] for worker in workers]
    elapsed = time.monotonic() - started
    for worker, log in zip(workers, logs):
        assert worker.returncode == 0, log[-3000:]
    both = _run_of(postgres_url, run_id)

    # One run, finished by its last worker, with both workers' parts.
    assert both["runs"] == 1 and both["status"] == "finished"
    assert [(done, reason) for done, reason, _ in both["workers"]] == [(True, "finished"), (True, "finished")]
    fetched_by = [stats.get("downloader/response_count", 0) for _, _, stats in both["workers"]]
    assert all(n > 0 for n in fetched_by), fetched_by
    # Every page fetched once: no capture twice, and the same captures as one process makes.
    keys = [(code, kind, url, requested, rendered, reason) for code, kind, url, requested, _, rendered, reason, _
            in both["captures"]]
    assert len(keys) == len(set(keys)) > 50
    assert sorted(both["captures"]) == sorted(single["captures"])
    # The same fetches in the WARC files; robots.txt is read once per worker and host.
    pages = Counter({uri: n for uri, n in both["fetched"].items() if not uri.endswith("/robots.txt")})
    assert pages == Counter({uri: n for uri, n in single["fetched"].items() if not uri.endswith("/robots.txt")})
    # Budgets across workers: what each source took is what the store admitted or saw, never
    # more than its budget asked for; the portals, with more pages than that, took exactly it.
    store = RedisBudgetStore(url=redis_server.url, run_id=run_id, prefix=redis_server.prefix)
    taken: dict[tuple[str, str, str], set[str]] = {}
    for code, kind, url, requested, final, rendered, _, _ in both["captures"]:
        if not rendered:
            taken.setdefault((code, kind, url), set()).update(
                canonicalize_url(u) for u in (requested, final) if u)
    for key, urls in taken.items():
        assert store.count(key) == len(urls), key
        assert all(store.has_seen(key, url) for url in urls), key
    limits = store.limits()
    requested_by = Counter((code, kind, url) for code, kind, url, _, _, rendered, _, _ in set(both["captures"])
                           if not rendered)
    assert all(n <= limits[key] for key, n in requested_by.items())
    portals = [key for key in taken if key[1] == "portal" and key[0] in ("910000", "920000")]
    assert len(portals) == 2 and all(store.count(key) == BUDGET for key in portals)
    # Complete roll-ups, the same as one process's; the run verifies.
    assert both["rollups"] and both["rollups"] == single["rollups"]
    assert both["per_source"] == single["per_source"] > 0
    verified = _cli(env, "verify", str(run_id), "--json")
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]
    assert json.loads(verified.stdout)["ok"] is True
    print(f"two workers: {elapsed:.1f} s, pages fetched {fetched_by}")

