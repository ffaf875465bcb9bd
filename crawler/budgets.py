"""Per-source page budgets, seen URLs, configs and crawl scopes of a run, outside the requests.

A source is named by a plain key (target code, source kind, registered URL). Requests carry
only that key, so they can be pickled to a disk queue or shared with other processes; what the
source may still take lives here, in one store per crawl, which the spider reaches with
``crawler.get_extension(BudgetStore)``. Kept per source:

- its budget, the number of distinct URLs (canonicalized with ``w3lib.url.canonicalize_url``)
  it may see: ``admit`` reserves one for a new URL while the budget lasts, ``mark_seen``
  records one already fetched (where a redirect led) whether or not the budget lasts;
- its config, a plain dict (target code, kind, URL, depth, budget, rendering, robots.txt) from
  which a process that did not register the source rebuilds how to crawl it;
- its crawl scope beyond its registered origin: origins added where its home page landed.

The store is chosen by the ``GOVEVIDENCE_BUDGET_STORE`` setting (a dotted class name, a
subclass of ``BudgetStore``; ``MemoryBudgetStore`` by default). ``RedisBudgetStore`` is shared
by the workers of one run: per source a set of canonical URLs that ``admit`` checks against the
budget and adds to in one atomic step (``SISMEMBER``/``SCARD``/``SADD`` in one Lua script), and a
``register`` that is idempotent so every worker may call it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.utils.misc import load_object
from w3lib.url import canonicalize_url

logger = logging.getLogger(__name__)

# (target code, source kind, registered URL)
SourceKey = tuple[str, str, str]

DEFAULT_STORE = "crawler.budgets.MemoryBudgetStore"
DEFAULT_PREFIX = "govevidence"
DEFAULT_TTL_DAYS = 7.0


_UNSAFE = frozenset("\t\n\r \\")


def site_of(url: str) -> str:
    """The origin (``scheme://host[:port]``, lower case) a URL belongs to, as ``urlsplit`` gives
    it. Asked of every link of every page: an ``http(s)://`` URL without characters ``urlsplit``
    treats specially is cut at the end of its authority directly."""
    if url.startswith(("http://", "https://")) and _UNSAFE.isdisjoint(url):
        start = url.index("//") + 2
        end = len(url)
        for mark in "/?#":
            found = url.find(mark, start)
            if found != -1 and found < end:
                end = found
        return url[:end].lower()
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class BudgetStore(ABC):
    """Budgets, seen URLs, configs and scopes per source. The extension registered in
    ``EXTENSIONS`` is this class: building it builds the store ``GOVEVIDENCE_BUDGET_STORE`` names."""

    def __init__(self, crawler: Crawler | None = None) -> None:
        self.crawler = crawler
        # The URLs, as written in links, each source was already asked to admit. An answer
        # never turns to yes (an admitted URL is seen from then on; a seen URL stays seen; a
        # spent budget stays spent), so the links every page repeats (menus, footers) cost
        # one set look-up here, not a canonicalization and a look-up in the store (a round
        # trip to Redis when the store is shared).
        self._asked: dict[SourceKey, set[str]] = {}

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
    def register(self, key: SourceKey, max_pages: int, config: Mapping[str, Any] | None = None) -> bool:
        """Give a source its budget and config; True when the source was new (registering
        again keeps what it has, config included)."""

    def admit(self, key: SourceKey, url: str) -> bool:
        """Reserve a page of the source's budget for a URL it has not seen."""
        key = tuple(key)  # type: ignore[assignment]
        asked = self._asked.get(key)
        if asked is not None and url in asked:
            return False
        admitted = self.reserve(key, canonicalize_url(url))
        self._asked.setdefault(key, set()).add(url)
        return admitted

    @abstractmethod
    def reserve(self, key: SourceKey, canonical: str) -> bool:
        """``admit`` for a canonical URL the process has not asked about before."""

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

    @abstractmethod
    def config(self, key: SourceKey) -> dict[str, Any] | None:
        """The config the source was registered with ({} if none), None if not registered."""

    @abstractmethod
    def add_scope(self, key: SourceKey, origin: str) -> bool:
        """Add an origin to the source's crawl scope; True when it was not in it."""

    @abstractmethod
    def scope(self, key: SourceKey) -> set[str]:
        """Origins added to the source's crawl scope (its registered origin aside)."""

    @abstractmethod
    def target_sites(self, target_code: str) -> set[str]:
        """Origins the run crawls for a target: its sources' registered origins and the
        origins added to their scopes."""

    # --- derived ---------------------------------------------------------------------
    def remaining(self, key: SourceKey) -> int:
        return max(self.max_pages(key) - self.count(key), 0)

    def counts(self) -> dict[SourceKey, int]:
        return {key: self.count(key) for key in self.keys()}

    def limits(self) -> dict[SourceKey, int]:
        return {key: self.max_pages(key) for key in self.keys()}

    def spider_closed(self) -> None:
        stats = getattr(self.crawler, "stats", None)
        if stats is None:
            return
        counts, limits = self.counts(), self.limits()
        stats.set_value("govevidence/budget_sources", len(limits))
        stats.set_value("govevidence/budget_exhausted_sources",
                        sum(1 for key, limit in limits.items() if counts.get(key, 0) >= limit))


class MemoryBudgetStore(BudgetStore):
    """Budgets of one process, in dictionaries."""

    def __init__(self, crawler: Crawler | None = None) -> None:
        super().__init__(crawler)
        self._max: dict[SourceKey, int] = {}
        self._seen: dict[SourceKey, set[str]] = {}
        self._config: dict[SourceKey, dict[str, Any]] = {}
        self._scope: dict[SourceKey, set[str]] = {}
        self._sites: dict[str, set[str]] = {}

    def _check(self, key: Any) -> SourceKey:
        key = tuple(key)
        if key not in self._max:
            raise KeyError(f"source not registered: {key!r}")
        return key

    def register(self, key: SourceKey, max_pages: int, config: Mapping[str, Any] | None = None) -> bool:
        key = tuple(key)  # type: ignore[assignment]
        if key in self._max:
            return False
        if max_pages < 0:
            raise ValueError(f"negative page budget for {key!r}: {max_pages}")
        self._max[key] = int(max_pages)
        self._seen[key] = set()
        self._config[key] = dict(config or {})
        self._scope[key] = set()
        self._sites.setdefault(key[0], set()).add(site_of(key[2]))
        return True

    def reserve(self, key: SourceKey, canonical: str) -> bool:
        key = self._check(key)
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

    def config(self, key: SourceKey) -> dict[str, Any] | None:
        found = self._config.get(tuple(key))  # type: ignore[arg-type]
        return dict(found) if found is not None else None

    def add_scope(self, key: SourceKey, origin: str) -> bool:
        key = self._check(key)
        if origin in self._scope[key]:
            return False
        self._scope[key].add(origin)
        self._sites.setdefault(key[0], set()).add(origin)
        return True

    def scope(self, key: SourceKey) -> set[str]:
        return set(self._scope[self._check(key)])

    def target_sites(self, target_code: str) -> set[str]:
        return set(self._sites.get(target_code, ()))


# --- Redis: one store shared by the workers of a run --------------------------------------
# KEYS: budget hash, config hash, target's sites set. ARGV: source field, budget, config JSON,
# registered origin, TTL seconds.
_REGISTER = """
local new = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
if new == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  redis.call('SADD', KEYS[3], ARGV[4])
end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return new
"""
# KEYS: budget hash, seen set. ARGV: source field, canonical URL, TTL seconds, 1 to admit
# (within the budget only) or 0 to mark seen. -1: source not registered.
_ADMIT = """
local limit = redis.call('HGET', KEYS[1], ARGV[1])
if not limit then return -1 end
if ARGV[4] == '1' then
  if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return 0 end
  if redis.call('SCARD', KEYS[2]) >= tonumber(limit) then return 0 end
end
local added = redis.call('SADD', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return added
"""
# KEYS: budget hash, scope set, target's sites set. ARGV: source field, origin, TTL seconds.
_ADD_SCOPE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
local added = redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[3])
return added
"""


def redis_namespace(prefix: str, run_id: str | int) -> str:
    """The prefix of every Redis key of one run."""
    return f"{prefix or DEFAULT_PREFIX}:{run_id}"


def safe_redis_url(url: str) -> str:
    """A Redis URL with its password hidden, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.rsplit("@", 1)
        user = parts.username or ""
        return parts._replace(netloc=f"{user}:***@{netloc[-1]}").geturl()
    return url


def redis_client(url: str) -> Any:
    """A connected redis-py client, or a ValueError in one line (the message is for users)."""
    import redis

    try:
        client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5, socket_timeout=30,
                                      retry_on_timeout=True)
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise ValueError(f"GOVEVIDENCE_REDIS_URL：无法连接 Redis（{safe_redis_url(url)}）：{exc}") from None
    return client


class RedisBudgetStore(BudgetStore):
    """Budgets shared by several processes in Redis (redis-py).

    Keys live under ``<GOVEVIDENCE_REDIS_PREFIX>:<GOVEVIDENCE_RUN_ID>:`` and expire
    ``GOVEVIDENCE_REDIS_TTL_DAYS`` after their last write (every write sets the expiry again,
    and closing the spider does so for all of them), so a finished run leaves nothing behind
    for long. The Redis server is ``GOVEVIDENCE_REDIS_URL``."""

    def __init__(self, crawler: Crawler | None = None, *, url: str | None = None, run_id: str | int | None = None,
                 prefix: str | None = None, ttl_days: float | None = None, client: Any = None) -> None:
        super().__init__(crawler)
        settings = crawler.settings if crawler is not None else None
        if settings is not None:
            url = url or settings.get("GOVEVIDENCE_REDIS_URL") or settings.get("REDIS_URL")
            run_id = run_id if run_id not in (None, "") else settings.get("GOVEVIDENCE_RUN_ID")
            prefix = prefix or settings.get("GOVEVIDENCE_REDIS_PREFIX")
            if ttl_days is None and settings.get("GOVEVIDENCE_REDIS_TTL_DAYS") not in (None, ""):
                ttl_days = settings.getfloat("GOVEVIDENCE_REDIS_TTL_DAYS")
        if run_id in (None, ""):
            raise ValueError("GOVEVIDENCE_RUN_ID：共享的抓取预算需要运行编号（先运行 govevidence run open）")
        if client is None:
            if not url:
                raise ValueError("GOVEVIDENCE_REDIS_URL：共享的抓取预算需要 Redis 地址")
            client = redis_client(url)
        self.redis = client
        self.namespace = redis_namespace(prefix or DEFAULT_PREFIX, run_id)
        self.ttl = max(int((DEFAULT_TTL_DAYS if ttl_days is None else ttl_days) * 86400), 1)
        self._budget_key = f"{self.namespace}:budget"
        self._config_key = f"{self.namespace}:config"
        self._register = client.register_script(_REGISTER)
        self._admit = client.register_script(_ADMIT)
        self._add_scope = client.register_script(_ADD_SCOPE)
        self._known: dict[str, int] = {}  # source field -> budget (fixed once registered)

    # --- key layout ------------------------------------------------------------------------
    @staticmethod
    def _field(key: Any) -> str:
        return json.dumps([str(part) for part in key], ensure_ascii=False, separators=(",", ":"))

    def _per_source(self, kind: str, field: str) -> str:
        return f"{self.namespace}:{kind}:{hashlib.sha1(field.encode()).hexdigest()[:24]}"

    def _sites_key(self, target_code: str) -> str:
        return f"{self.namespace}:sites:{target_code}"

    def _check(self, key: Any) -> str:
        field = self._field(key)
        if field not in self._known:
            limit = self.redis.hget(self._budget_key, field)
            if limit is None:
                raise KeyError(f"source not registered: {tuple(key)!r}")
            self._known[field] = int(limit)
        return field

    # --- the interface -----------------------------------------------------------------------
    def register(self, key: SourceKey, max_pages: int, config: Mapping[str, Any] | None = None) -> bool:
        if max_pages < 0:
            raise ValueError(f"negative page budget for {tuple(key)!r}: {max_pages}")
        field = self._field(key)
        new = self._register(keys=[self._budget_key, self._config_key, self._sites_key(str(key[0]))],
                             args=[field, int(max_pages), json.dumps(dict(config or {}), ensure_ascii=False),
                                   site_of(key[2]), self.ttl])
        return bool(new)

    def _seen_script(self, key: SourceKey, canonical: str, admit: bool) -> int:
        field = self._field(key)
        result = self._admit(keys=[self._budget_key, self._per_source("seen", field)],
                             args=[field, canonical, self.ttl, "1" if admit else "0"])
        if result == -1:
            raise KeyError(f"source not registered: {tuple(key)!r}")
        return int(result)

    def reserve(self, key: SourceKey, canonical: str) -> bool:
        return self._seen_script(key, canonical, True) == 1

    def mark_seen(self, key: SourceKey, url: str) -> None:
        self._seen_script(key, canonicalize_url(url), False)

    def count(self, key: SourceKey) -> int:
        return int(self.redis.scard(self._per_source("seen", self._check(key))))

    def max_pages(self, key: SourceKey) -> int:
        return self._known[self._check(key)]

    def keys(self) -> list[SourceKey]:
        return [tuple(json.loads(field)) for field in self.redis.hkeys(self._budget_key)]  # type: ignore[misc]

    def limits(self) -> dict[SourceKey, int]:
        return {tuple(json.loads(field)): int(limit)  # type: ignore[misc]
                for field, limit in self.redis.hgetall(self._budget_key).items()}

    def counts(self) -> dict[SourceKey, int]:
        keys = self.keys()
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.scard(self._per_source("seen", self._field(key)))
        return {key: int(n) for key, n in zip(keys, pipe.execute())}

    def has_seen(self, key: SourceKey, url: str) -> bool:
        return bool(self.redis.sismember(self._per_source("seen", self._check(key)), canonicalize_url(url)))

    def config(self, key: SourceKey) -> dict[str, Any] | None:
        found = self.redis.hget(self._config_key, self._field(key))
        return json.loads(found) if found is not None else None

    def add_scope(self, key: SourceKey, origin: str) -> bool:
        field = self._field(key)
        added = self._add_scope(keys=[self._budget_key, self._per_source("scope", field),
                                      self._sites_key(str(key[0]))], args=[field, origin, self.ttl])
        if added == -1:
            raise KeyError(f"source not registered: {tuple(key)!r}")
        return added == 1

    def scope(self, key: SourceKey) -> set[str]:
        return set(self.redis.smembers(self._per_source("scope", self._check(key))))

    def target_sites(self, target_code: str) -> set[str]:
        return set(self.redis.smembers(self._sites_key(target_code)))

    # --- the end of the run --------------------------------------------------------------------
    def expire_all(self) -> None:
        """Set every key of the run to expire ``ttl`` seconds from now."""
        keys = self.keys()
        pipe = self.redis.pipeline(transaction=False)
        for name in (self._budget_key, self._config_key, *{self._sites_key(str(k[0])) for k in keys}):
            pipe.expire(name, self.ttl)
        for key in keys:
            field = self._field(key)
            pipe.expire(self._per_source("seen", field), self.ttl)
            pipe.expire(self._per_source("scope", field), self.ttl)
        pipe.execute()

    def spider_closed(self) -> None:
        super().spider_closed()
        self.expire_all()
