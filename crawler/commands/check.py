"""``scrapy check``: Scrapy's own command, recording nothing."""

from scrapy.commands.check import Command as ScrapyCheck

from crawler.commands import NOT_RECORDING


class Command(ScrapyCheck):
    default_settings = {**ScrapyCheck.default_settings, **NOT_RECORDING}
