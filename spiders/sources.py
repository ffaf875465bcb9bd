"""How one source is crawled within a run: its key, depth, budget, rendering and scope.

Requests name their source only by its key (plain data, picklable to a disk queue or shared
with other workers); the spider keeps the ``SourceConfig`` of each source it has met, and the
crawl's ``BudgetStore`` keeps the shared part (``SourceConfig.shared``) for the other processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from crawler.budgets import SourceKey, site_of


@dataclass
class SourceConfig:
    """How one source is crawled within one run. Its budget and seen URLs are in the
    crawl's ``BudgetStore``, under ``key``."""

    target_code: str
    kind: str
    url: str
    max_depth: int
    max_pages: int
    render: bool = False
    obey_robots: bool = True
    # Origins whose links are followed: the registered one and where the home page landed.
    scope: set[str] = field(default_factory=set)
    landing: str | None = None

    # What every process crawling the run must agree on (kept in the BudgetStore).
    SHARED: ClassVar[tuple[str, ...]] = ("target_code", "kind", "url", "max_depth", "max_pages", "render",
                                         "obey_robots")

    def __post_init__(self) -> None:
        self.scope.add(self.site)

    @classmethod
    def from_shared(cls, config: dict[str, Any]) -> "SourceConfig":
        """The config of a source another process registered."""
        return cls(**{name: config[name] for name in cls.SHARED if name in config})

    def shared(self) -> dict[str, Any]:
        """The plain dict stored with the source's budget."""
        return {name: getattr(self, name) for name in self.SHARED}

    @property
    def key(self) -> SourceKey:
        return (self.target_code, self.kind, self.url)

    @property
    def site(self) -> str:
        return site_of(self.url)

    def in_scope(self, url: str) -> bool:
        return site_of(url) in self.scope
