"""Shared page builders for the evidence tests."""

from __future__ import annotations

import datetime as dt

from evidence import Page, detect

NOW = dt.date(2026, 11, 26)


def page_of(
    html: str, *, kind: str = "portal", url: str = "https://www.example-city.gov.cn/index.html", encoding: str = "utf-8"
) -> Page:
    return Page.from_bytes(url, html.encode(encoding), kind=kind)


def findings_of(html: str, **kwargs) -> dict:
    """Findings of a page by indicator id, with dates bounded by a fixed ``now``."""
    page = page_of(html, **kwargs)
    return {f.indicator: f for f in detect(page, now=NOW)}
