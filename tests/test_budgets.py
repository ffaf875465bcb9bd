"""Per-source budgets live in the crawl's BudgetStore, not in the requests.

The store is tested on its own; then one sandbox target is crawled twice, once normally and
once with a pickling disk queue (``JOBDIR``), which writes every scheduled request to disk:
every request must pickle (none falls back to the memory queue) and the crawl must take the
same pages.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from scrapy.utils.test import get_crawler
from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.budgets import BudgetStore, MemoryBudgetStore
from db.models import CrawlRun, PageCapture
from db.session import get_engine
from govevidence.crawl import SANDBOX_SETTINGS, scrapy_crawl

KEY = ("910000", "portal", "http://portal.example/")
OTHER = ("910000", "service", "http://service.example/")
SETTINGS = {**SANDBOX_SETTINGS, "DOWNLOAD_TIMEOUT": "5", "LOG_LEVEL": "INFO", "GOVEVIDENCE_SCREENSHOTS": "False"}


# --- the store ------------------------------------------------------------------------
def test_admit_reserves_a_page_once_per_canonical_url():
    store = MemoryBudgetStore()
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


def test_sources_have_separate_budgets_and_registering_again_keeps_state():
    store = MemoryBudgetStore()
    store.register(KEY, 2)
    store.register(OTHER, 1)
    assert store.admit(KEY, "http://x.example/")
    assert store.admit(OTHER, "http://x.example/")  # seen by another source only
    assert not store.admit(OTHER, "http://x.example/other")
    assert store.register(KEY, 50) is False
    assert store.max_pages(KEY) == 2 and store.count(KEY) == 1
    assert store.counts() == {KEY: 1, OTHER: 1}
    assert sorted(store.keys()) == sorted([KEY, OTHER])


def test_mark_seen_uses_the_budget_and_blocks_the_url():
    store = MemoryBudgetStore()
    store.register(KEY, 2)
    store.admit(KEY, "http://portal.example/")
    store.mark_seen(KEY, "https://www.portal.example/")  # where the home page landed
    assert not store.admit(KEY, "https://www.portal.example/")
    assert store.count(KEY) == 2
    assert not store.admit(KEY, "http://portal.example/new")
    # Marking what was fetched is recorded even past the budget.
    store.mark_seen(KEY, "https://www.portal.example/moved")
    assert store.count(KEY) == 3 and store.remaining(KEY) == 0


def test_unregistered_sources_and_bad_budgets_are_refused():
    store = MemoryBudgetStore()
    with pytest.raises(KeyError):
        store.admit(KEY, "http://portal.example/")
    with pytest.raises(KeyError):
        store.mark_seen(KEY, "http://portal.example/")
    with pytest.raises(ValueError):
        store.register(KEY, -1)
    # A key that went through a serializer as a list names the same source.
    store.register(KEY, 1)
    assert store.admit(list(KEY), "http://portal.example/")  # type: ignore[arg-type]
    assert store.count(KEY) == 1


def test_the_setting_chooses_the_store():
    class Shared(MemoryBudgetStore):
        pass

    store = BudgetStore.from_crawler(get_crawler(settings_dict={}))
    assert type(store) is MemoryBudgetStore
    assert isinstance(BudgetStore.from_crawler(get_crawler(settings_dict={"GOVEVIDENCE_BUDGET_STORE": Shared})), Shared)
    for bad in ("builtins.dict", "crawler.budgets.BudgetStore", "crawler.budgets.NoSuchStore"):
        with pytest.raises(ValueError, match="GOVEVIDENCE_BUDGET_STORE"):
            BudgetStore.from_crawler(get_crawler(settings_dict={"GOVEVIDENCE_BUDGET_STORE": bad}))


# --- requests are picklable: a crawl through a pickling disk queue -------------------
def _crawl(registry: Path, folder: Path, **extra: str) -> tuple[dict, list[tuple[str, int, bool, str | None]], str]:
    env = {"GOVEVIDENCE_DATA_DIR": str(folder), "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}"}
    result = scrapy_crawl("province_portals", args={"registry": str(registry), "targets": "910000"},
                          settings={**SETTINGS, **extra}, env=env, capture=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    engine = get_engine(env["DATABASE_URL"])
    with Session(engine) as session:
        run = session.scalars(select(CrawlRun)).one()
        pages = [(p.requested_url, p.depth, bool(p.rendered), p.render_reason)
                 for p in session.scalars(select(PageCapture).where(PageCapture.run_id == run.id))]
        stats = dict(run.stats or {})
    engine.dispose()
    return stats, sorted(pages), result.stderr


def test_every_request_pickles_and_the_crawl_takes_the_same_pages(sandbox_registry, tmp_path):
    plain_stats, plain_pages, _ = _crawl(sandbox_registry, tmp_path / "plain")
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
    assert any(rendered for _, _, rendered, _ in disk_pages)


def test_a_request_meta_holds_plain_data_only(sandbox_registry):
    """What the spider puts in meta pickles on its own (no spider object, no store)."""
    from spiders.base import SourceConfig
    from spiders.province_portals import ProvincePortalsSpider

    spider = ProvincePortalsSpider(targets="910000", registry=str(sandbox_registry))
    source = SourceConfig("910000", "portal", "http://portal.example/", max_depth=2, max_pages=60)
    request = spider.page_request(source, "http://portal.example/a", depth=1,
                                  referer="http://portal.example/", render_reason="script_shell")
    meta = pickle.loads(pickle.dumps(request.meta))
    assert meta["source"] == source.key and meta["depth_in_source"] == 1
    assert meta["render"] is True and meta["render_reason"] == "script_shell"
    assert all(isinstance(v, (str, int, bool, tuple, type(None))) for v in meta.values())
