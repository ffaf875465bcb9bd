"""Per-source budgets live in the crawl's BudgetStore, not in the requests; the duplicate
filter drops only a capture already made.

Both stores — in memory, and in the real Redis (``GOVEVIDENCE_TEST_REDIS_URL``, default
``redis://127.0.0.1:6379/0``; skipped when it does not answer) — are tested on the same
behaviour, and the Redis store on what several processes share. The request fingerprint is
tested on requests built by Scrapy's own redirect and retry middlewares. Then sandbox
targets are crawled three times: normally, with a pickling disk queue (``JOBDIR``, which
writes every scheduled request to disk: every request must pickle) and with the duplicate
filter switched off; all three must take the same pages, so the filter lost none (redirect
hops and a redirect loop included) and none was fetched twice.
"""

from __future__ import annotations

import os
import pickle
import threading
import uuid
from urllib.parse import urlsplit
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scrapy import Request, Spider
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler
from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.budgets import BudgetStore, MemoryBudgetStore, RedisBudgetStore
from crawler.fingerprints import CaptureFingerprinter
from db.models import CrawlRun, PageCapture
from db.session import get_engine
from govevidence.crawl import SANDBOX_SETTINGS, scrapy_crawl

KEY = ("910000", "portal", "http://portal.example/")
OTHER = ("910000", "service", "http://service.example/")
SETTINGS = {**SANDBOX_SETTINGS, "DOWNLOAD_TIMEOUT": "5", "LOG_LEVEL": "INFO", "GOVEVIDENCE_SCREENSHOTS": "False"}
REDIS_URL = os.environ.get("GOVEVIDENCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


# --- the real Redis -------------------------------------------------------------------
class RedisServer:
    """The test Redis, with a key prefix of this test only; its keys are deleted afterwards."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = f"govevidence-test-{uuid.uuid4().hex[:12]}"

    def store(self, run_id: str | int = 1, **kwargs) -> RedisBudgetStore:
        """A store as one worker of the run has it (its own connection)."""
        return RedisBudgetStore(url=self.url, run_id=run_id, prefix=self.prefix, **kwargs)

    def keys(self) -> list[str]:
        return sorted(self.client.scan_iter(f"{self.prefix}:*"))

    def cleanup(self) -> None:
        keys = self.keys()
        if keys:
            self.client.delete(*keys)
        self.client.close()


def open_redis_server() -> Iterator[RedisServer]:
    """The test Redis for one test (skipped, saying why, when it does not answer)."""
    import redis

    try:
        server = RedisServer(REDIS_URL)
        server.client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL} (set GOVEVIDENCE_TEST_REDIS_URL): {exc}")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    yield from open_redis_server()


@pytest.fixture(params=["memory", "redis"])
def new_store(request: pytest.FixtureRequest) -> Callable[[], BudgetStore]:
    """Make an empty store of each kind."""
    if request.param == "memory":
        return MemoryBudgetStore
    server: RedisServer = request.getfixturevalue("redis_server")
    runs = iter(range(1, 1000))
    return lambda: server.store(run_id=next(runs))


# --- the store ------------------------------------------------------------------------
def test_admit_reserves_a_page_once_per_canonical_url(new_store):
    store = new_store()
    assert store.register(KEY, 3) is True
    assert store.admit(KEY, "http://portal.example/a?y=2&x=1")
    # The same URL in another spelling (query order, fragment) is not admitted twice.
    assert not store.admit(KEY, "http://portal.example/a?x=1&y=2#top")
    assert store.has_seen(KEY, "http://portal.example/a?x=1&y=2")
    assert store.count(KEY) == 1 and store.remaining(KEY) == 2
    assert store.admit(KEY, "http://portal.example/b")
    assert store.admit(KEY, "http://portal.example/c")
    # The budget is spent: a new URL is refused and not recorded as seen.
    assert not store.admit(KEY, "http://portal.example/d")
    assert not store.has_seen(KEY, "http://portal.example/d")
    assert store.count(KEY) == 3 and store.remaining(KEY) == 0 and store.max_pages(KEY) == 3


def test_sources_have_separate_budgets_and_registering_again_keeps_state(new_store):
    store = new_store()
    store.register(KEY, 2, {"max_depth": 2})
    store.register(OTHER, 1)
    assert store.admit(KEY, "http://x.example/")
    assert store.admit(OTHER, "http://x.example/")  # seen by another source only
    assert not store.admit(OTHER, "http://x.example/other")
    assert store.register(KEY, 50, {"max_depth": 9}) is False
    assert store.max_pages(KEY) == 2 and store.count(KEY) == 1
    assert store.config(KEY) == {"max_depth": 2}  # the first registration's
    assert store.counts() == {KEY: 1, OTHER: 1}
    assert store.limits() == {KEY: 2, OTHER: 1}
    assert sorted(store.keys()) == sorted([KEY, OTHER])


def test_mark_seen_uses_the_budget_and_blocks_the_url(new_store):
    store = new_store()
    store.register(KEY, 2)
    store.admit(KEY, "http://portal.example/")
    store.mark_seen(KEY, "https://www.portal.example/")  # where the home page landed
    assert not store.admit(KEY, "https://www.portal.example/")
    assert store.count(KEY) == 2
    assert not store.admit(KEY, "http://portal.example/new")
    # Marking what was fetched is recorded even past the budget.
    store.mark_seen(KEY, "https://www.portal.example/moved")
    assert store.count(KEY) == 3 and store.remaining(KEY) == 0


def test_unregistered_sources_and_bad_budgets_are_refused(new_store):
    store = new_store()
    for call in (lambda: store.admit(KEY, "http://portal.example/"), lambda: store.mark_seen(KEY, "http://portal.example/"),
                 lambda: store.count(KEY), lambda: store.add_scope(KEY, "https://www.portal.example")):
        with pytest.raises(KeyError):
            call()
    assert store.config(KEY) is None
    with pytest.raises(ValueError):
        store.register(KEY, -1)
    assert store.keys() == []
    # A key that went through a serializer as a list names the same source.
    store.register(KEY, 1)
    assert store.admit(list(KEY), "http://portal.example/")  # type: ignore[arg-type]
    assert store.count(KEY) == 1
    # A budget of nothing admits nothing.
    store.register(OTHER, 0)
    assert not store.admit(OTHER, "http://service.example/") and store.count(OTHER) == 0


def test_config_scope_and_sites_of_a_target(new_store):
    store = new_store()
    config = {"target_code": "910000", "kind": "portal", "url": KEY[2], "max_depth": 2, "max_pages": 60,
              "render": False, "obey_robots": True}
    store.register(KEY, 60, config)
    store.register(OTHER, 60)
    store.register(("920000", "portal", "http://other.example/"), 60)
    assert store.config(KEY) == config and store.config(OTHER) == {}
    assert store.scope(KEY) == set()
    assert store.add_scope(KEY, "https://www.portal.example") is True
    assert store.add_scope(KEY, "https://www.portal.example") is False
    assert store.scope(KEY) == {"https://www.portal.example"} and store.scope(OTHER) == set()
    # Registered origins and added ones, of this target only.
    assert store.target_sites("910000") == {"http://portal.example", "http://service.example",
                                            "https://www.portal.example"}
    assert store.target_sites("920000") == {"http://other.example"}
    assert store.target_sites("930000") == set()


def test_the_setting_chooses_the_store():
    class Shared(MemoryBudgetStore):
        pass

    store = BudgetStore.from_crawler(get_crawler(settings_dict={}))
    assert type(store) is MemoryBudgetStore
    assert isinstance(BudgetStore.from_crawler(get_crawler(settings_dict={"GOVEVIDENCE_BUDGET_STORE": Shared})), Shared)
    for bad in ("builtins.dict", "crawler.budgets.BudgetStore", "crawler.budgets.NoSuchStore"):
        with pytest.raises(ValueError, match="GOVEVIDENCE_BUDGET_STORE"):
            BudgetStore.from_crawler(get_crawler(settings_dict={"GOVEVIDENCE_BUDGET_STORE": bad}))


# --- the Redis store: what the workers of a run share ------------------------------------
def test_workers_share_budget_config_and_scope(redis_server):
    first, second = redis_server.store(run_id=7), redis_server.store(run_id=7)
    assert first.register(KEY, 3, {"max_depth": 2}) is True
    assert second.register(KEY, 3, {"max_depth": 2}) is False  # every worker registers; one makes it
    assert second.config(KEY) == {"max_depth": 2} and second.max_pages(KEY) == 3
    assert first.admit(KEY, "http://portal.example/a")
    assert not second.admit(KEY, "http://portal.example/a")  # taken by the other worker
    assert second.admit(KEY, "http://portal.example/b")
    first.mark_seen(KEY, "http://portal.example/landing")
    assert not second.admit(KEY, "http://portal.example/c")  # the budget is spent across both
    assert first.count(KEY) == second.count(KEY) == 3
    assert second.add_scope(KEY, "https://www.portal.example")
    assert first.scope(KEY) == {"https://www.portal.example"}
    assert "https://www.portal.example" in first.target_sites("910000")


def test_concurrent_admits_never_exceed_the_budget(redis_server):
    """Four workers racing for 60 URLs of a 25-page budget: exactly 25 are admitted, each once."""
    redis_server.store(run_id=8).register(KEY, 25)
    stores = [redis_server.store(run_id=8) for _ in range(4)]
    urls = [f"http://portal.example/p{i}" for i in range(60)]
    admitted: list[list[str]] = [[] for _ in stores]
    barrier = threading.Barrier(len(stores))

    def work(index: int) -> None:
        barrier.wait()
        for url in urls:
            if stores[index].admit(KEY, url):
                admitted[index].append(url)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken = [url for urls_of_one in admitted for url in urls_of_one]
    assert len(taken) == len(set(taken)) == 25
    assert stores[0].count(KEY) == 25


def test_keys_are_namespaced_by_run_and_expire(redis_server):
    one, other = redis_server.store(run_id=11, ttl_days=2), redis_server.store(run_id=12)
    one.register(KEY, 5, {"max_depth": 1})
    one.admit(KEY, "http://portal.example/")
    one.add_scope(KEY, "https://www.portal.example")
    assert other.keys() == [] and other.config(KEY) is None
    other.register(KEY, 1)
    assert other.admit(KEY, "http://portal.example/")  # the other run's seen URL is not this run's
    keys = redis_server.keys()
    assert keys and all(k.startswith((f"{redis_server.prefix}:11:", f"{redis_server.prefix}:12:")) for k in keys)
    for key in keys:
        ttl = redis_server.client.ttl(key)
        limit = 2 * 86400 if ":11:" in key else 7 * 86400
        assert limit - 60 < ttl <= limit, (key, ttl)
    # Closing the spider sets the expiry again from then on.
    redis_server.client.persist(f"{redis_server.prefix}:11:budget")
    one.spider_closed()
    assert redis_server.client.ttl(f"{redis_server.prefix}:11:budget") > 86400


def test_the_redis_store_needs_a_run_and_a_server(redis_server):
    with pytest.raises(ValueError, match="GOVEVIDENCE_RUN_ID"):
        RedisBudgetStore(url=redis_server.url, run_id="")
    with pytest.raises(ValueError, match="GOVEVIDENCE_REDIS_URL") as refused:
        RedisBudgetStore(url="redis://:secret-pw@127.0.0.1:1/0", run_id=1)
    assert "secret-pw" not in str(refused.value) and "\n" not in str(refused.value)
    # Built as the extension, from the settings.
    crawler = get_crawler(settings_dict={"GOVEVIDENCE_BUDGET_STORE": "crawler.budgets.RedisBudgetStore",
                                         "GOVEVIDENCE_REDIS_URL": redis_server.url, "GOVEVIDENCE_RUN_ID": "21",
                                         "GOVEVIDENCE_REDIS_PREFIX": redis_server.prefix})
    store = BudgetStore.from_crawler(crawler)
    assert isinstance(store, RedisBudgetStore) and store.namespace == f"{redis_server.prefix}:21"


# --- fingerprints: what makes a capture its own --------------------------------------------
def _request(url: str, source=KEY, **meta) -> Request:
    return Request(url, meta={"source": source, "depth_in_source": 0, "render": False, "render_reason": None,
                              "screenshot_only": False, **meta})


def test_the_fingerprint_tells_captures_apart():
    fingerprint = CaptureFingerprinter().fingerprint
    page = fingerprint(_request("http://portal.example/a?y=2&x=1"))
    # One capture: the same URL in another spelling, for the same source, drawn the same way.
    assert fingerprint(_request("http://portal.example/a?x=1&y=2#top")) == page
    # Other captures: another source, the browser's drawing, a picture only, another method.
    others = [
        fingerprint(_request("http://portal.example/a?x=1&y=2", source=OTHER)),
        fingerprint(_request("http://portal.example/a?x=1&y=2", render=True, render_reason="script_shell")),
        fingerprint(_request("http://portal.example/a?x=1&y=2", render=True, render_reason="challenge")),
        fingerprint(_request("http://portal.example/a?x=1&y=2", render=True, render_reason="screenshot",
                             screenshot_only=True)),
        fingerprint(_request("http://portal.example/a?x=1&y=2").replace(method="POST")),
        fingerprint(_request("http://portal.example/b")),
    ]
    assert len({page, *others}) == len(others) + 1
    # The crawl uses it: the project's setting names it, and Scrapy builds it for the filter.
    from crawler import settings as project

    crawler = get_crawler(settings_dict={"REQUEST_FINGERPRINTER_CLASS": project.REQUEST_FINGERPRINTER_CLASS})
    assert isinstance(crawler.request_fingerprinter, CaptureFingerprinter)


def test_redirect_hops_and_retries_are_not_dropped_as_duplicates():
    """Scrapy's redirect middleware gives the hop the original's dont_filter (False now): a page
    redirecting to one already fetched must still be its own capture; retries are never filtered."""
    crawler = get_crawler(settings_dict={"REQUEST_FINGERPRINTER_CLASS": CaptureFingerprinter})
    crawler.spider = Spider.from_crawler(crawler, name="budgets")
    redirect = RedirectMiddleware.from_crawler(crawler)
    fingerprint = crawler.request_fingerprinter.fingerprint
    old = _request("http://portal.example/zwgk/old/")
    target = _request("http://portal.example/zwgk/tzgg/")
    hop = redirect.process_response(old, HtmlResponse(old.url, status=301, headers={"Location": "/zwgk/tzgg/"},
                                                      request=old))
    assert isinstance(hop, Request) and hop.url == target.url and not hop.dont_filter
    assert fingerprint(hop) != fingerprint(target)
    # A loop (a → b → a) is followed until Scrapy gives up, which the errback records.
    loop_a = _request("http://portal.example/loop/a")
    to_b = redirect.process_response(loop_a, HtmlResponse(loop_a.url, status=302, headers={"Location": "/loop/b"},
                                                          request=loop_a))
    back_to_a = redirect.process_response(to_b, HtmlResponse(to_b.url, status=302, headers={"Location": "/loop/a"},
                                                             request=to_b))
    assert back_to_a.url == loop_a.url
    assert len({fingerprint(loop_a), fingerprint(to_b), fingerprint(back_to_a)}) == 3
    retry = get_retry_request(target, spider=crawler.spider, reason="timeout")
    assert retry is not None and retry.dont_filter


# --- the crawl: requests pickle, the filter loses no page and fetches none twice -------------
Pages = list[tuple[str, int, bool, str | None, str]]


def _crawl(registry: Path, folder: Path, **extra: str) -> tuple[dict, Pages, str]:
    env = {"GOVEVIDENCE_DATA_DIR": str(folder), "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}"}
    result = scrapy_crawl("province_portals", args={"registry": str(registry), "targets": "910000,920000"},
                          settings={**SETTINGS, **extra}, env=env, capture=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    engine = get_engine(env["DATABASE_URL"])
    with Session(engine) as session:
        run = session.scalars(select(CrawlRun)).one()
        pages = [(p.requested_url, p.depth, bool(p.rendered), p.render_reason, p.error_status)
                 for p in session.scalars(select(PageCapture).where(PageCapture.run_id == run.id))]
        stats = dict(run.stats or {})
    engine.dispose()
    return stats, sorted(pages), result.stderr


@pytest.fixture(scope="module")
def plain_crawl(sandbox_registry, tmp_path_factory) -> tuple[dict, Pages, str]:
    return _crawl(sandbox_registry, tmp_path_factory.mktemp("plain"))


def test_every_request_pickles_and_the_crawl_takes_the_same_pages(plain_crawl, sandbox_registry, tmp_path):
    plain_stats, plain_pages, _ = plain_crawl
    job = tmp_path / "disk" / "job"
    disk_stats, disk_pages, log = _crawl(sandbox_registry, tmp_path / "disk",
                                         SCHEDULER_DISK_QUEUE="scrapy.squeues.PickleLifoDiskQueue", JOBDIR=str(job))
    assert "Unable to serialize request" not in log
    assert job.is_dir()
    # Every request went through pickle to disk; none fell back to memory.
    assert disk_stats.get("scheduler/enqueued/disk", 0) == disk_stats["scheduler/enqueued"] > 10
    assert not disk_stats.get("scheduler/enqueued/memory") and not disk_stats.get("scheduler/unserializable")
    assert plain_stats.get("scheduler/enqueued/memory", 0) == plain_stats["scheduler/enqueued"]
    assert len(disk_pages) == len(plain_pages) > 10
    assert disk_pages == plain_pages
    # The browser was asked for pages too (the service platform needs one), and those pickled.
    assert any(rendered for _, _, rendered, _, _ in disk_pages)


def test_the_duplicate_filter_drops_no_capture(plain_crawl, sandbox_registry, tmp_path):
    """The same crawl with Scrapy's filter switched off (what dont_filter did) takes the same
    pages: no request the spider made was lost, and with it on none is taken twice."""
    _, plain_pages, _ = plain_crawl
    _, unfiltered_pages, _ = _crawl(sandbox_registry, tmp_path / "unfiltered",
                                    DUPEFILTER_CLASS="scrapy.dupefilters.BaseDupeFilter")
    assert unfiltered_pages == plain_pages
    captures = [(url, rendered, reason) for url, _, rendered, reason, _ in plain_pages]
    assert len(captures) == len(set(captures))
    by_path = {(url.split("/", 3)[-1], status) for url, _, rendered, _, status in plain_pages if not rendered}
    # A page redirecting to one the source fetched anyway, and a redirect loop (robots.txt
    # refusals of the city portal, with the filter on too: tests/test_crawl.py).
    assert ("zwgk/old/", "ok") in by_path and ("loop/a", "redirect_loop") in by_path


def test_a_request_meta_holds_plain_data_only(sandbox_registry):
    """What the spider puts in meta pickles on its own (no spider object, no store)."""
    from spiders.sources import SourceConfig
    from spiders.province_portals import ProvincePortalsSpider

    spider = ProvincePortalsSpider(targets="910000", registry=str(sandbox_registry))
    source = SourceConfig("910000", "portal", "http://portal.example/", max_depth=2, max_pages=60)
    request = spider.page_request(source, "http://portal.example/a", depth=1,
                                  referer="http://portal.example/", render_reason="script_shell")
    meta = pickle.loads(pickle.dumps(request.meta))
    assert meta["source"] == source.key and meta["depth_in_source"] == 1
    assert meta["render"] is True and meta["render_reason"] == "script_shell"
    assert all(isinstance(v, (str, int, bool, tuple, type(None))) for v in meta.values())
    assert not request.dont_filter
    # How the source is crawled is rebuilt from the plain dict the store keeps.
    assert SourceConfig.from_shared(pickle.loads(pickle.dumps(source.shared()))) == source


def test_origin_of_a_link_is_what_urlsplit_gives():
    import random

    from crawler.budgets import site_of as origin

    def by_urlsplit(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    urls = ["http://Gov.CN/a", "https://www.gov.cn:8443?q=1", "http://a.b#frag", "http://user@host/x", "https://[::1]:8080/",
            "http://host\\path", "http://ho st/", "HTTPS://X.cn/", "ftp://x/", "http://", "https://x.cn"]
    rng = random.Random(7)
    urls += [rng.choice(["http://", "https://"]) + "".join(rng.choice("ab/?#:@.%-\t\\19") for _ in range(rng.randint(0, 20)))
             for _ in range(5000)]
    for url in urls:
        try:
            expected = by_urlsplit(url)
        except ValueError:
            continue
        assert origin(url) == expected, url
