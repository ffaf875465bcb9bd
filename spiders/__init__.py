"""Spiders of GovEvidence; the shared crawl logic is in ``spiders.base``."""
