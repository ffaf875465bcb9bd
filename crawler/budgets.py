"""Per-source page budgets and seen-URL sets of a run, outside the requests.

A source is named by a plain key (target code, source kind, registered URL). Requests carry
only that key, so they can be pickled to a disk queue or shared with other processes; the
budget and the URLs already taken live here, in one store per crawl, which the spider reaches
with ``crawler.get_extension(BudgetStore)``.

A source's budget is the number of distinct URLs (canonicalized with
``w3lib.url.canonicalize_url``) it has seen: ``admit`` reserves one for a new URL while the
budget lasts, ``mark_seen`` records one already fetched (where a redirect led) whether or not
the budget lasts.

The store is chosen by the ``GOVEVIDENCE_BUDGET_STORE`` setting (a dotted class name, a
subclass of ``BudgetStore``; ``MemoryBudgetStore`` by default). A store shared by several
processes keeps, per source, a set of canonical URLs and a counter that ``admit`` checks and
increments in one atomic step (for Redis: ``SISMEMBER``/``SADD`` and ``INCR`` in one Lua
script), and makes ``register`` idempotent so every process may call it.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.utils.misc import load_object
from w3lib.url import canonicalize_url

logger = logging.getLogger(__name__)

# (target code, source kind, registered URL)
SourceKey = tuple[str, str, str]

DEFAULT_STORE = "crawler.budgets.MemoryBudgetStore"


class BudgetStore(ABC):
    """Page budgets and seen URLs per source. The extension registered in ``EXTENSIONS``
    is this class: building it builds the store ``GOVEVIDENCE_BUDGET_STORE`` names."""

    def __init__(self, crawler: Crawler | None = None) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "BudgetStore":
        if cls is BudgetStore:
            name = crawler.settings.get("GOVEVIDENCE_BUDGET_STORE") or DEFAULT_STORE
            try:
                impl = load_object(name)
            except (ImportError, NameError, ValueError, AttributeError) as exc:
                raise ValueError(f"GOVEVIDENCE_BUDGET_STORE: cannot load {name!r}: {exc}") from None
            if not (isinstance(impl, type) and issubclass(impl, BudgetStore)) or impl is BudgetStore:
                raise ValueError(f"GOVEVIDENCE_BUDGET_STORE: {name!r} is not a BudgetStore implementation")
            return impl.from_crawler(crawler)
        store = cls(crawler)
        crawler.signals.connect(store.spider_closed, signal=signals.spider_closed)
        return store

    # --- the interface ---------------------------------------------------------------
    @abstractmethod
    def register(self, key: SourceKey, max_pages: int) -> bool:
        """Give a source its budget; True when the source was new (registering again
        keeps what it has)."""

    @abstractmethod
    def admit(self, key: SourceKey, url: str) -> bool:
        """Reserve a page of the source's budget for a URL it has not seen."""

    @abstractmethod
    def mark_seen(self, key: SourceKey, url: str) -> None:
        """Record a URL the source has fetched (it counts against the budget)."""

    @abstractmethod
    def count(self, key: SourceKey) -> int:
        """Pages of the source's budget used (distinct URLs seen)."""

    @abstractmethod
    def max_pages(self, key: SourceKey) -> int:
        """The source's budget."""

    @abstractmethod
    def keys(self) -> list[SourceKey]:
        """Registered sources."""

    @abstractmethod
    def has_seen(self, key: SourceKey, url: str) -> bool:
        """Whether the source has seen the URL (canonicalized)."""

    # --- derived ---------------------------------------------------------------------
    def remaining(self, key: SourceKey) -> int:
        return max(self.max_pages(key) - self.count(key), 0)

    def counts(self) -> dict[SourceKey, int]:
        return {key: self.count(key) for key in self.keys()}

    def spider_closed(self) -> None:
        stats = getattr(self.crawler, "stats", None)
        if stats is None:
            return
        keys = self.keys()
        stats.set_value("govevidence/budget_sources", len(keys))
        stats.set_value("govevidence/budget_exhausted_sources", sum(1 for k in keys if self.remaining(k) == 0))


class MemoryBudgetStore(BudgetStore):
    """Budgets of one process, in dictionaries."""

    def __init__(self, crawler: Crawler | None = None) -> None:
        super().__init__(crawler)
        self._max: dict[SourceKey, int] = {}
        self._seen: dict[SourceKey, set[str]] = {}

    def _check(self, key: Any) -> SourceKey:
        key = tuple(key)
        if key not in self._max:
            raise KeyError(f"source not registered: {key!r}")
        return key

    def register(self, key: SourceKey, max_pages: int) -> bool:
        key = tuple(key)  # type: ignore[assignment]
        if key in self._max:
            return False
        if max_pages < 0:
            raise ValueError(f"negative page budget for {key!r}: {max_pages}")
        self._max[key] = int(max_pages)
        self._seen[key] = set()
        return True

    def admit(self, key: SourceKey, url: str) -> bool:
        key = self._check(key)
        canonical = canonicalize_url(url)
        seen = self._seen[key]
        if canonical in seen or len(seen) >= self._max[key]:
            return False
        seen.add(canonical)
        return True

    def mark_seen(self, key: SourceKey, url: str) -> None:
        self._seen[self._check(key)].add(canonicalize_url(url))

    def count(self, key: SourceKey) -> int:
        return len(self._seen[self._check(key)])

    def max_pages(self, key: SourceKey) -> int:
        return self._max[self._check(key)]

    def keys(self) -> list[SourceKey]:
        return list(self._max)

    def has_seen(self, key: SourceKey, url: str) -> bool:
        return canonicalize_url(url) in self._seen[self._check(key)]
