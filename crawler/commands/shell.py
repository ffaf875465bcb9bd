"""``scrapy shell``: Scrapy's own command, recording nothing."""

from scrapy.commands.shell import Command as ScrapyShell

from crawler.commands import NOT_RECORDING


class Command(ScrapyShell):
    default_settings = {**ScrapyShell.default_settings, **NOT_RECORDING}
