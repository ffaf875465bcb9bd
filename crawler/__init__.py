"""Scrapy plumbing of GovEvidence: settings, middlewares, pipelines, extensions.

Nothing here knows what an indicator is; detection lives in ``evidence``.
"""
