"""Several crawl workers on one run: a settings-only switch to scrapy-redis (``ADDONS``).

Without ``GOVEVIDENCE_REDIS_URL`` the add-on does nothing. With it, ``scrapy crawl`` becomes
one worker of a run that others share — on this machine or on others, against one Redis and
one evidence database (``DATABASE_URL``):

- the run is given by ``GOVEVIDENCE_RUN_ID`` (made by ``govevidence run open --workers N``);
  without it the crawl ends with one line saying so;
- requests go to scrapy-redis's scheduler, one priority queue per run and spider, and through
  its duplicate filter, which here uses the crawl's request fingerprinter
  (``crawler.request_fingerprinter``, ``crawler/fingerprints.py``) instead of its own;
  requests are pickled into Redis, so their callbacks are spider methods and their meta plain
  data (``spiders/base.py``);
- page budgets, seen URLs, source configs and crawl scopes are kept in
  ``crawler.budgets.RedisBudgetStore``;
- the queue is kept when a worker closes (``SCHEDULER_PERSIST``), and every key of the run is
  set to expire ``GOVEVIDENCE_REDIS_TTL_DAYS`` after it.

A plain ``scrapy.Spider`` on scrapy-redis's scheduler closes as soon as it is idle, while
another worker may still add pages to the shared queue. ``WorkerCoordinator`` keeps, per
worker, a heartbeat with its number of requests in progress, and keeps an idle worker open
while the shared queue holds requests or another live worker is busy; once everything has been
quiet for ``GOVEVIDENCE_WORKER_IDLE_GRACE`` seconds, each worker closes (the last one to close
seals the run, ``crawler/run.py``). A worker that stops beating for
``GOVEVIDENCE_WORKER_HEARTBEAT_TTL`` seconds is no longer waited for.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
import warnings
from typing import Any

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, NotConfigured, ScrapyDeprecationWarning
from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings
from scrapy.utils.asyncio import create_looping_call
from scrapy_redis.connection import get_redis_from_settings
from scrapy_redis.dupefilter import RFPDupeFilter

from crawler.addon import recording
from crawler.budgets import DEFAULT_TTL_DAYS, redis_client, redis_namespace

logger = logging.getLogger(__name__)

SCHEDULER = "scrapy_redis.scheduler.Scheduler"
DUPEFILTER = "crawler.distributed.SharedDupeFilter"
BUDGET_STORE = "crawler.budgets.RedisBudgetStore"
COORDINATOR = "crawler.distributed.WorkerCoordinator"


def distributed(settings: BaseSettings) -> bool:
    """Whether this crawl is a worker of a shared run."""
    return bool(settings.get("GOVEVIDENCE_REDIS_URL")) and recording(settings)


def ttl_seconds(settings: BaseSettings) -> int:
    days = settings.get("GOVEVIDENCE_REDIS_TTL_DAYS")
    return max(int((float(days) if days not in (None, "") else DEFAULT_TTL_DAYS) * 86400), 1)


class DistributedAddon:
    """Switches a crawl to the shared scheduler, duplicate filter and budgets when
    ``GOVEVIDENCE_REDIS_URL`` is set (see the module)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "DistributedAddon":
        return cls(crawler)

    def update_settings(self, settings: BaseSettings) -> None:
        if not distributed(settings):
            return
        url = settings.get("GOVEVIDENCE_REDIS_URL")
        run_id = str(settings.get("GOVEVIDENCE_RUN_ID") or "").strip()
        if not run_id:
            raise ValueError("GOVEVIDENCE_REDIS_URL 已设置，多个抓取进程共享一次运行：请用 "
                             "-s GOVEVIDENCE_RUN_ID=<运行编号> 指定（由 govevidence run open --workers N 创建）")
        redis_client(url).close()  # an unreachable server is said in one line, before anything starts
        # scrapy-redis 0.9.1 still passes the spider to the stats collector: two warnings per
        # crawl that no setting can avoid.
        warnings.filterwarnings("ignore", message="Passing a 'spider' argument to StatsCollector",
                                category=ScrapyDeprecationWarning)
        # %(spider)s is filled in by scrapy-redis; a % of the prefix is kept as it is.
        namespace = redis_namespace(settings.get("GOVEVIDENCE_REDIS_PREFIX"), run_id).replace("%", "%%")
        for name, value in {
            "SCHEDULER": SCHEDULER,
            "DUPEFILTER_CLASS": DUPEFILTER,
            "REDIS_URL": url,
            # A worker that closes leaves the queue and the seen fingerprints to the others.
            "SCHEDULER_PERSIST": True,
            "SCHEDULER_QUEUE_KEY": f"{namespace}:%(spider)s:requests",
            "SCHEDULER_DUPEFILTER_KEY": f"{namespace}:%(spider)s:dupefilter",
            "GOVEVIDENCE_BUDGET_STORE": BUDGET_STORE,
        }.items():
            _switch(settings, name, value)
        settings["EXTENSIONS"].set(COORDINATOR, 120, priority="addon")


def _switch(settings: BaseSettings, name: str, value: Any) -> None:
    """Set a value over the project's and defaults, not over one given on the command line."""
    current = settings.getpriority(name) or 0
    if current >= SETTINGS_PRIORITIES["cmdline"]:
        return
    settings.set(name, value, priority=max(current, SETTINGS_PRIORITIES["addon"]))


class SharedDupeFilter(RFPDupeFilter):
    """scrapy-redis's Redis-backed duplicate filter, fingerprinting requests with the crawl's
    ``REQUEST_FINGERPRINTER_CLASS`` (scrapy-redis's own looks at URL, method and body only)."""

    def __init__(self, server: Any, key: str, debug: bool = False, *, fingerprinter: Any, stats: Any = None) -> None:
        super().__init__(server, key, debug)
        self.fingerprinter = fingerprinter
        self.stats = stats

    @classmethod
    def _build(cls, crawler: Crawler, spider_name: str) -> "SharedDupeFilter":
        settings = crawler.settings
        key = settings.get("SCHEDULER_DUPEFILTER_KEY") or "%(spider)s:dupefilter"
        return cls(get_redis_from_settings(settings), key % {"spider": spider_name},
                   settings.getbool("DUPEFILTER_DEBUG"), fingerprinter=crawler.request_fingerprinter,
                   stats=crawler.stats)

    @classmethod
    def from_spider(cls, spider: Spider) -> "SharedDupeFilter":
        """How scrapy-redis's scheduler builds it."""
        return cls._build(spider.crawler, spider.name)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "SharedDupeFilter":
        """How Scrapy's own scheduler builds it."""
        return cls._build(crawler, crawler.spidercls.name)

    @classmethod
    def from_settings(cls, settings: Any) -> "SharedDupeFilter":
        raise NotConfigured("SharedDupeFilter needs the crawler's request fingerprinter")

    def request_fingerprint(self, request: Request) -> str:
        return self.fingerprinter.fingerprint(request).hex()

    def log(self, request: Request, spider: Spider) -> None:
        if self.stats is not None:
            self.stats.inc_value("dupefilter/filtered")
        super().log(request, spider)


class WorkerCoordinator:
    """Heartbeats of the run's workers, and closing only once all of them are done."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.redis = redis_client(settings.get("GOVEVIDENCE_REDIS_URL"))
        self.namespace = redis_namespace(settings.get("GOVEVIDENCE_REDIS_PREFIX"), settings.get("GOVEVIDENCE_RUN_ID"))
        self.interval = settings.getfloat("GOVEVIDENCE_WORKER_HEARTBEAT", 1.0)
        self.heartbeat_ttl = max(settings.getfloat("GOVEVIDENCE_WORKER_HEARTBEAT_TTL", 30.0), 2 * self.interval)
        self.grace = settings.getfloat("GOVEVIDENCE_WORKER_IDLE_GRACE", 6.0)
        self.ttl = ttl_seconds(settings)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.workers_key = f"{self.namespace}:workers"
        self.task: Any = None
        self.quiet_since: float | None = None
        self.waiting_for: tuple[int, int] | None = None
        self.queue_keys: list[str] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "WorkerCoordinator":
        if not distributed(crawler.settings):
            raise NotConfigured
        coordinator = cls(crawler)
        crawler.signals.connect(coordinator.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(coordinator.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(coordinator.spider_closed, signal=signals.spider_closed)
        return coordinator

    def worker_key(self, token: str) -> str:
        return f"{self.namespace}:worker:{token}"

    # --- heartbeat ----------------------------------------------------------------------------
    def _engine(self) -> Any:
        try:
            return self.crawler.engine
        except RuntimeError:  # the crawl has not started
            return None

    def in_progress(self) -> int:
        """Requests this worker is downloading or whose answers it is handling (1 while it
        still reads its start requests or has anything else pending)."""
        engine = self._engine()
        try:
            if engine is None or engine.spider_is_idle():
                return 0
        except RuntimeError:  # no spider open
            return 0
        slot = engine.scraper.slot
        handling = len(slot.active) + len(slot.queue) if slot is not None else 0
        return max(len(engine.downloader.active) + handling, 1)

    def beat(self) -> None:
        self.publish(self.in_progress())

    def publish(self, busy: int) -> None:
        """Write this worker's heartbeat: its requests in progress, live for the heartbeat TTL."""
        value = json.dumps({"busy": busy, "host": socket.gethostname(), "pid": os.getpid(), "at": time.time()})
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(self.worker_key(self.token), value, px=int(self.heartbeat_ttl * 1000))
            pipe.sadd(self.workers_key, self.token)
            pipe.expire(self.workers_key, self.ttl)
            pipe.execute()
        except Exception:  # a missed beat only makes the others stop waiting for this worker sooner
            logger.warning("Could not write this worker's heartbeat to Redis", exc_info=True)

    def busy_workers(self) -> dict[str, int]:
        """Other live workers of the run with requests in progress; workers whose heartbeat
        has expired are forgotten."""
        tokens = sorted(t for t in self.redis.smembers(self.workers_key) if t != self.token)
        if not tokens:
            return {}
        busy: dict[str, int] = {}
        for token, value in zip(tokens, self.redis.mget([self.worker_key(t) for t in tokens])):
            if value is None:
                self.redis.srem(self.workers_key, token)
                continue
            count = int(json.loads(value).get("busy") or 0)
            if count:
                busy[token] = count
        return busy

    def queued(self) -> int:
        """Requests waiting in the shared queue."""
        scheduler = getattr(self._engine(), "scheduler", None)
        try:
            return len(scheduler) if scheduler is not None else 0
        except (TypeError, AttributeError):  # not scrapy-redis's, or not open yet
            return 0

    # --- signals ----------------------------------------------------------------------------------
    def spider_opened(self, spider: Spider) -> None:
        settings = self.crawler.settings
        self.queue_keys = [settings.get(name) % {"spider": spider.name}
                           for name in ("SCHEDULER_QUEUE_KEY", "SCHEDULER_DUPEFILTER_KEY") if settings.get(name)]
        self.beat()
        self.task = create_looping_call(self.beat)
        self.task.start(self.interval, now=False)
        logger.info("Worker %s of run %s (Redis keys %s:*)", self.token, settings.get("GOVEVIDENCE_RUN_ID"),
                    self.namespace)

    def spider_idle(self, spider: Spider) -> None:
        self.beat()
        queued, busy = self.queued(), self.busy_workers()
        if queued or busy:
            self.quiet_since = None
            if self.waiting_for != (queued, len(busy)):
                self.waiting_for = (queued, len(busy))
                logger.info("Idle, waiting: %d requests queued, %d other workers busy", queued, len(busy))
            raise DontCloseSpider
        now = time.monotonic()
        if self.quiet_since is None:
            self.quiet_since = now
            self.waiting_for = None
            logger.info("Queue empty and no worker busy: closing in %.0f s unless work comes in", self.grace)
        if now - self.quiet_since < self.grace:
            raise DontCloseSpider

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(self.worker_key(self.token))
            pipe.srem(self.workers_key, self.token)
            for key in (*self.queue_keys, self.workers_key):
                pipe.expire(key, self.ttl)
            pipe.execute()
        except Exception:
            logger.warning("Could not leave the run's worker set in Redis", exc_info=True)
