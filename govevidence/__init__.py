"""GovEvidence: website-crawling evidence collector for digital-government evaluations."""

__version__ = "0.1.0"
