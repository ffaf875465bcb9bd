"""Detectors: pure functions ``(page, indicator, context) -> Finding``.

Most indicators use one of the generic detectors, driven entirely by catalogue rules:

* ``entry``     — a visible link/control/caption whose label or target matches the rules,
                  excluding headlines (dated list items, long or newsy labels);
* ``value``     — a value read by ``value_regex`` from visible text near a label keyword
                  (works across tags: ``网站标识码：<span>9200</span><span>000001</span>``);
* ``search_box``, ``latest_date``, ``department_links``, ``status_list``, ``format_list``,
  ``count_value``, ``review_stats`` — the special ones, still configured by rules.

The detectors live in ``entries`` (entry, search box, department sites, reply lists), ``values``
(site identifiers and other values, formats, counts, 好差评 figures) and ``dates`` (latest date);
the structural tests they share are in ``common``. They read the page through ``Page`` (visible
text, links, controls, locators) and its index (``evidence.index``): every link label, target,
caption and text element is listed once per page and tested once against the compiled rule lists
of the whole catalogue, so the cost of a page no longer grows with the number of indicators.

``crawler`` marks indicators the crawler produces itself (reachability, broken links).
A new special detector is a function registered with ``@register("name")``.
"""

from __future__ import annotations

from . import dates, entries, values  # noqa: F401  (registers the detectors)
from .common import (  # noqa: F401
    ARTICLE_URL, DETECTORS, FULL_DATE, HEADLINE, SHORT_DATE, URL_DATE, Context, Detector, absent, element_has_date,
    has_date, in_context, is_headline, item_container, near_text, present, register,
)
from .entries import department_links, detect_entry, iter_caption_matches, iter_link_matches  # noqa: F401
from .index import MatchPlan, plan_for, short_captions  # noqa: F401
from .values import detect_value  # noqa: F401

# Re-exported: the detector modules (imported for their registrations) and their building blocks.
__all__ = [
    "ARTICLE_URL", "DETECTORS", "FULL_DATE", "HEADLINE", "SHORT_DATE", "URL_DATE", "Context", "Detector", "MatchPlan",
    "absent", "dates", "department_links", "detect_entry", "detect_value", "element_has_date", "entries", "has_date",
    "in_context", "is_headline", "item_container", "iter_caption_matches", "iter_link_matches", "near_text", "plan_for",
    "present", "register", "short_captions", "values",
]
