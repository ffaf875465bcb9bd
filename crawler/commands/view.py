"""``scrapy view``: Scrapy's own command, recording nothing."""

from scrapy.commands.view import Command as ScrapyView

from crawler.commands import NOT_RECORDING


class Command(ScrapyView):
    default_settings = {**ScrapyView.default_settings, **NOT_RECORDING}
