"""``scrapy bench``: Scrapy's own command, recording nothing."""

from scrapy.commands.bench import Command as ScrapyBench

from crawler.commands import NOT_RECORDING


class Command(ScrapyBench):
    default_settings = {**ScrapyBench.default_settings, **NOT_RECORDING}
