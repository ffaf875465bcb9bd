"""Run spiders as ``scrapy crawl`` subprocesses (a Twisted reactor cannot be restarted)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

# Settings for crawling the loopback sandbox: no politeness delays against our own
# server, short timeouts so the slow host is recorded as a timeout quickly.
SANDBOX_SETTINGS: dict[str, str] = {
    "DOWNLOAD_DELAY": "0",
    "AUTOTHROTTLE_ENABLED": "False",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "4",
    "DOWNLOAD_TIMEOUT": "4",
    "RETRY_TIMES": "1",
    "LOG_LEVEL": "WARNING",
    "GOVEVIDENCE_ALLOWED_NETWORKS": "127.0.0.0/8",
}


def scrapy_command(spider: str, *, args: Mapping[str, str] | None = None,
                   settings: Mapping[str, str] | None = None,
                   env: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """argv and environment of ``scrapy crawl SPIDER -a … -s …`` with this project's settings."""
    command: list[str] = [sys.executable, "-m", "scrapy", "crawl", spider]
    for key, value in (args or {}).items():
        command += ["-a", f"{key}={value}"]
    for key, value in (settings or {}).items():
        command += ["-s", f"{key}={value}"]
    environment = {**os.environ, "SCRAPY_SETTINGS_MODULE": "crawler.settings", **(env or {})}
    return command, environment


def scrapy_crawl(spider: str, *, args: Mapping[str, str] | None = None,
                 settings: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None,
                 capture: bool = False, timeout: float | None = None) -> subprocess.CompletedProcess:
    command, environment = scrapy_command(spider, args=args, settings=settings, env=env)
    return subprocess.run(command, env=environment, capture_output=capture, text=True, timeout=timeout, check=False)


def spiders_for(levels: Sequence[str]) -> list[str]:
    return [{"province": "province_portals", "city": "city_portals"}[level] for level in levels]
