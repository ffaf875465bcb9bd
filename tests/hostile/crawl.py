"""The hostile corpus crawled once per test session: the loopback web and one ``scrapy crawl``
over it, shared by every test module that reads it (conftest imports these fixtures)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Finding, PageCapture, Source, Target
from db.session import get_engine
from evidence import indicators_for
from govevidence.crawl import SANDBOX_SETTINGS, scrapy_crawl
from tests.hostile.cases import CASES
from tests.hostile.server import HostileWeb

MAX_PAGES = 8
SETTINGS = {
    **SANDBOX_SETTINGS,
    "DOWNLOAD_TIMEOUT": "2",
    "DOWNLOAD_MAXSIZE": "4000000",
    "CONCURRENT_REQUESTS": "32",
    "GOVEVIDENCE_MAX_PAGES_PER_SOURCE": str(MAX_PAGES),
    "GOVEVIDENCE_SCREENSHOTS": "False",
    "GOVEVIDENCE_ALLOWED_NETWORKS": "127.0.0.0/8",
    "LOG_LEVEL": "INFO",
}
PAGE_INDICATORS = [i.id for i in indicators_for("portal") if i.id not in ("site.reachable", "site.broken_links")]


@pytest.fixture(scope="session")
def hostile_web():
    with HostileWeb(CASES) as web:
        yield web


@dataclass
class Crawl:
    web: HostileWeb
    url: str
    log: str

    def session(self) -> Session:
        return Session(get_engine(self.url))

    def captures(self, name: str) -> list[PageCapture]:
        with self.session() as session:
            return list(session.execute(
                select(PageCapture).join(Source, Source.id == PageCapture.source_id)
                .join(Target, Target.id == Source.target_id)
                .where(Target.code == self.web.code_of(name)).order_by(PageCapture.id)).scalars())

    def findings(self, name: str, scope: str) -> list[Finding]:
        with self.session() as session:
            return list(session.execute(
                select(Finding).join(Target, Target.id == Finding.target_id)
                .where(Target.code == self.web.code_of(name), Finding.scope == scope)).scalars())


@pytest.fixture(scope="session")
def hostile_crawl(hostile_web: HostileWeb, tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    folder: Path = tmp_path_factory.mktemp("hostile")
    registry = folder / "registry.yaml"
    hostile_web.write_registry(registry)
    url = f"sqlite:///{folder / 'hostile.sqlite3'}"
    result = scrapy_crawl("province_portals", args={"registry": str(registry)}, settings=SETTINGS,
                          env={"DATABASE_URL": url, "GOVEVIDENCE_DATA_DIR": str(folder)}, capture=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return Crawl(hostile_web, url, result.stderr)


