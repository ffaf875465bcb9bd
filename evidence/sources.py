"""Discovery of other evaluation sources (service platform, open data, ...) linked from a page."""

from __future__ import annotations

from .catalogue import load_catalogue
from .detectors import department_links, iter_link_matches, plan_for
from .entries import cached_host
from .finding import DiscoveredSource
from .page import Page, host_of


def discover_sources(page: Page) -> list[DiscoveredSource]:
    """Links on this page to other evaluation sources of the government.

    The catalogue's portal entry indicators say which links lead where (``rules.source_kind``).
    Links to the page's own host are kept only when the rule allows it (``same_site``: an
    interaction section usually lives on the portal itself). One entry per (kind, url).
    """
    catalogue = load_catalogue()
    plan = plan_for(catalogue)
    own_host = host_of(page.url)
    found: list[DiscoveredSource] = []
    seen: set[tuple[str, str]] = set()
    for indicator in catalogue.indicators:
        rules = indicator.rules
        kind = rules.source_kind
        if kind is None:
            continue
        if kind == "department":
            how, items = department_links(page, rules)
            matches = items if how else []
        else:
            matches = iter_link_matches(page, rules, plan=plan)
        for el, label, href in matches:
            if not href or not href.startswith(("http://", "https://")):
                continue
            if not rules.same_site and cached_host(page, href) == own_host:
                continue
            key = (kind, href)
            if key in seen:
                continue
            seen.add(key)
            found.append(DiscoveredSource(kind=kind, url=href, anchor_text=page.label_of(el), locator=page.locator(el)))
    return found

