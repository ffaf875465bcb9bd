"""``scrapy parse``: Scrapy's own command, recording nothing."""

from scrapy.commands.parse import Command as ScrapyParse

from crawler.commands import NOT_RECORDING


class Command(ScrapyParse):
    default_settings = {**ScrapyParse.default_settings, **NOT_RECORDING}
