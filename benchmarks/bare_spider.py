"""The bare Scrapy crawler of the crawl benchmark, run with ``scrapy runspider`` outside the project.

It follows every same-site ``<a href>`` and does nothing else: no detectors, no items, no
pipeline, no archive — what Scrapy itself costs on a site. Like GovEvidence's spiders it makes a
request only for a URL it has not seen (pages of real portals repeat 100–300 links each: sending
every one through Scrapy's duplicate filter would make the baseline itself slow).
"""

from __future__ import annotations

from urllib.parse import urldefrag, urlsplit

import scrapy


class BareSameSiteSpider(scrapy.Spider):
    """Follows every same-site ``<a href>`` once."""

    name = "bare_same_site"

    def __init__(self, start: str = "", *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.start_url = start
        self.site = urlsplit(start).netloc
        self.seen = {start}

    async def start(self):
        # Filtered like every other request, so a link back to the home page is not fetched twice.
        yield scrapy.Request(self.start_url, callback=self.parse)

    def parse(self, response):
        for href in response.css("a::attr(href)").getall():
            href = href.strip()
            if not href or href.startswith(("javascript:", "mailto:", "tel:", "#")):
                continue
            url = urldefrag(response.urljoin(href))[0]
            if url not in self.seen and url.startswith(("http://", "https://")) and urlsplit(url).netloc == self.site:
                self.seen.add(url)
                yield scrapy.Request(url, callback=self.parse)
