"""``scrapy runspider``: Scrapy's own command, recording nothing."""

from scrapy.commands.runspider import Command as ScrapyRunspider

from crawler.commands import NOT_RECORDING


class Command(ScrapyRunspider):
    default_settings = {**ScrapyRunspider.default_settings, **NOT_RECORDING}
