"""Nightly crawls: one APScheduler process that starts each spider as its own subprocess.

    python scheduler.py                 # province_portals at 01:00, city_portals at 03:00 (Asia/Shanghai)
    python scheduler.py --run-now       # run both once, now, and exit

A Twisted reactor cannot be restarted, so every crawl is a ``scrapy crawl`` subprocess;
job callables are top-level functions with plain arguments, so a persistent job store
can pickle them.
"""

from __future__ import annotations

import argparse
import logging
import sys

from govevidence.crawl import scrapy_crawl

logger = logging.getLogger("govevidence.scheduler")

NIGHTLY = (("province_portals", 1), ("city_portals", 3))
TIMEZONE = "Asia/Shanghai"


def run_spider(spider: str) -> int:
    """Job body: one crawl; a failed crawl is logged, the scheduler keeps going."""
    logger.info("starting %s", spider)
    result = scrapy_crawl(spider)
    (logger.info if result.returncode == 0 else logger.error)("%s exited with %s", spider, result.returncode)
    return result.returncode


def build_scheduler():
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    scheduler = BlockingScheduler(timezone=TIMEZONE)
    for spider, hour in NIGHTLY:
        scheduler.add_job(
            run_spider, CronTrigger(hour=hour, minute=0, timezone=TIMEZONE), args=[spider],
            id=f"nightly-{spider}", replace_existing=True,
            coalesce=True, max_instances=1, misfire_grace_time=3600,
        )
    return scheduler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GovEvidence nightly crawls")
    parser.add_argument("--run-now", action="store_true", help="run every nightly crawl once and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.run_now:
        return max(run_spider(spider) for spider, _ in NIGHTLY)
    scheduler = build_scheduler()
    for job in scheduler.get_jobs():
        logger.info("scheduled %s: %s", job.id, job.trigger)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
