"""``scrapy fetch``: Scrapy's own command, recording nothing."""

from scrapy.commands.fetch import Command as ScrapyFetch

from crawler.commands import NOT_RECORDING


class Command(ScrapyFetch):
    default_settings = {**ScrapyFetch.default_settings, **NOT_RECORDING}
