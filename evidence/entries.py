"""Entry detectors: a visible link, control or caption that offers a feature.

``entry`` is driven by catalogue rules only; ``search_box``, ``department_links`` and
``status_list`` are the special entry-like ones. Candidates come from the page index
(``evidence.index``): each link label, target and caption is matched against all rule lists at
once, and only the candidates of an indicator go through the structural tests (headlines, share
widgets, nearby text).
"""

from __future__ import annotations

import re
from functools import lru_cache

from .common import (
    Context, absent, element_has_date, in_context, is_headline, item_container, near_text, present, register,
)
from .finding import Finding
from .index import page_index, short_captions, spaceless
from .page import Page, host_of
from .patterns import PatternBank, any_match, any_of, literal_alternatives, rx

__all__ = [
    "cached_host", "department_links", "detect_entry", "iter_caption_matches", "iter_link_matches", "short_captions",
]


def _describe(rules) -> str:
    parts = []
    if rules.link_texts:
        parts.append(f"{len(rules.link_texts)} link-text rule(s)")
    if rules.url_patterns:
        parts.append(f"{len(rules.url_patterns)} URL rule(s)")
    if rules.text_patterns:
        parts.append(f"{len(rules.text_patterns)} caption rule(s)")
    return ", ".join(parts) or "no rules"


def _innermost(page: Page, el, text: str):
    """Descend to the deepest element that still carries the same visible text."""
    while True:
        for child in el:
            if isinstance(child.tag, str) and page.is_visible(child) and page.visible_text(child) == text:
                el = child
                break
        else:
            return el


SENTENCE_MIN_CHARS = 10
SENTENCE_TAIL_CHARS = 5
_QUOTES = re.compile(r"[“”\"'「」『』《》()（）\s]")
_ENTRY_SUFFIX = re.compile(r"(专区|专栏|专题|入口|平台|系统|服务|中心|网)+$")


def _sentence_after_keyword(label: str, patterns: list[str]) -> bool:
    """``市政务服务中心延长周末服务时间``: the keyword opens a longer sentence — a news title.

    Entry labels end at (or just after) their keyword: ``浙江政务服务网``, ``一件事一次办专区``.
    """
    if len(label) < SENTENCE_MIN_CHARS:
        return False
    for pattern in patterns:
        m = rx(pattern).search(label)
        if m is None:
            continue
        tail = _ENTRY_SUFFIX.sub("", _QUOTES.sub("", label[m.end():]))
        if len(tail) < SENTENCE_TAIL_CHARS:
            return False
    return True


def _structural_ok(page: Page, rules, el, label: str, href: str | None) -> bool:
    """The tests after the label/target matched: share widgets, nearby text, headlines."""
    if in_context(el, rules.exclude_contexts):
        return False
    if rules.exclude_context_texts and near_text(page, el, rules.exclude_context_texts, levels=2):
        return False
    if not rules.allow_dated and is_headline(page, el, label, href):
        return False
    if rules.context_texts and not near_text(page, el, rules.context_texts):
        return False
    return True


def _accept(page: Page, rules, el, info, text_hit: bool, url_hit: bool) -> tuple[str, str | None] | None:
    """(label, href) when a link matches the rules and is not a headline, once it is known
    whether the rule lists match its label / its target. Attachments (``.xls``, ``.pdf`` …) are
    documents, never entries; a "更多" link stands for its block's heading."""
    if info is None:
        return None
    label, href = info
    if any_match(rules.exclude_texts, label) or (href and any_match(rules.exclude_urls, href)):
        return None
    text_ok = bool(label) and len(label) <= rules.max_text_len and text_hit
    if text_ok and _sentence_after_keyword(label, rules.link_texts):
        text_ok = False
    url_ok = bool(href) and url_hit and len(label) <= 2 * rules.max_text_len
    if not (text_ok or url_ok):
        return None
    if not _structural_ok(page, rules, el, label, href):
        return None
    return label, href


def iter_link_matches(page: Page, rules, *, controls: bool = False, plan=None):
    """(element, label, href) of every link (or control) that matches the rules, in page order."""
    index = page_index(page)
    text_hits = index.label_hits(tuple(rules.link_texts), plan, rules.max_text_len) if rules.link_texts else []
    url_hits = index.url_hits(tuple(rules.url_patterns), plan, 2 * rules.max_text_len) if rules.url_patterns else []
    if not text_hits and not url_hits:
        return
    text_set, url_set = set(text_hits), set(url_hits)
    limit = len(index.controls) if controls else index.n_links
    entry = index.accepted.get(id(rules))
    if entry is None or entry[0] is not rules:
        entry = index.accepted[id(rules)] = (rules, {})
    accepted = entry[1]
    for position in sorted(text_set | url_set):
        if position >= limit:
            break
        el = index.controls[position]
        if position in accepted:
            hit = accepted[position]
        else:
            hit = accepted[position] = _accept(page, rules, el, index.info(position), position in text_set, position in url_set)
        if hit is not None:
            yield el, hit[0], hit[1]


def iter_caption_matches(page: Page, rules, plan=None):
    if not rules.text_patterns:
        return
    index = page_index(page)
    for position in index.caption_hits(tuple(rules.text_patterns), plan, rules.max_text_len):
        el, text = index.caption_elements[position], index.caption_texts[position]
        if any_match(rules.exclude_texts, text):
            continue
        if in_context(el, rules.exclude_contexts):
            continue
        if rules.exclude_context_texts and near_text(page, el, rules.exclude_context_texts, levels=2):
            continue
        if rules.context_texts and not near_text(page, el, rules.context_texts):
            continue
        if el.tag != "img":
            el = _innermost(page, el, text)
        container = item_container(page, el)
        if not rules.allow_dated and container is not None and element_has_date(page, container):
            continue
        yield el, text


# ---------------------------------------------------------------------------- generic detectors
@register("crawler")
def detect_crawler(page: Page, indicator, ctx: Context) -> Finding | None:
    """Indicators that need crawl context; produced by the crawler, not from one page."""
    return None


@register("entry")
def detect_entry(page: Page, indicator, ctx: Context) -> Finding:
    rules = indicator.rules
    for el, label, href in iter_link_matches(page, rules, controls=True, plan=ctx.plan):
        shown = page.label_of(el)
        details = {"section": label} if label != shown else None  # a "更多" link under its heading
        return present(page, indicator, ctx, el, href=href, snippet=shown, details=details)
    for el, text in iter_caption_matches(page, rules, ctx.plan):
        return present(page, indicator, ctx, el, snippet=text)
    if rules.message_form:
        form = _message_form(page)
        if form is not None:
            return present(page, indicator, ctx, form, href=page.absolute(form.get("action")))
    n_controls = len(page.controls())
    return absent(page, indicator, ctx, f"{_describe(rules)} over {n_controls} visible link(s)/control(s) and short captions; no match")


def _message_form(page: Page):
    """A visible form where a visitor writes free text (a text area) and submits it."""
    for form in page.visible_elements("form"):
        has_area = any(page.is_visible(t) for t in form.iter("textarea"))
        has_submit = any(
            page.is_visible(b) and (b.tag == "button" or (b.get("type") or "").lower() in ("submit", "image", "button"))
            for b in form.iter("button", "input")
        )
        has_password = any((i.get("type") or "").lower() == "password" for i in form.iter("input"))
        if has_area and has_submit and not has_password:
            return form
    return None


# ---------------------------------------------------------------------------- search box
_SEARCH_INPUT_TYPES = {"", "text", "search"}


@register("search_box")
def detect_search_box(page: Page, indicator, ctx: Context) -> Finding:
    """A visible text input that is a site search (hints in form/input/button), not a login box."""
    rules = indicator.rules
    hints = rules.labels
    inputs = [
        el
        for el in page.visible_elements("input")
        if (el.get("type") or "").lower().strip() in _SEARCH_INPUT_TYPES
    ]
    for el in inputs:
        form = next((a for a in el.iterancestors("form")), None)
        scope = form if form is not None else el.getparent()
        if form is not None and any((i.get("type") or "").lower() == "password" for i in form.iter("input")):
            continue
        markers = [el.get(k) or "" for k in ("name", "id", "class", "placeholder", "title", "aria-label", "value")]
        if form is not None:
            markers += [form.get(k) or "" for k in ("action", "name", "id", "class")]
        if scope is not None:
            for button in scope.iter("button", "input", "a", "img", "span", "label"):
                if button is el or not page.is_visible(button):
                    continue
                markers += [page.label_of(button)[:12], button.get("value") or "", button.get("alt") or "", button.get("class") or ""]
        marker = " ".join(m for m in markers if m)
        if any_match(rules.exclude_texts, marker):
            continue
        if any_match(hints, marker):
            evidence = form if form is not None else el
            action = page.absolute(form.get("action")) if form is not None else None
            return present(page, indicator, ctx, evidence, href=action)
    return absent(page, indicator, ctx, f"{len(inputs)} visible text input(s) checked for search hints; none found")


# ---------------------------------------------------------------------------- department sites
# Schools, universities and companies are not government departments, whatever their names.
_NON_GOV_HOST = re.compile(r"\.(edu|ac|com|net|org)(\.cn)?$")


def cached_host(page: Page, url: str) -> str:
    """``host_of(url)``, cached per page."""
    cache = page._table("hosts")
    host = cache.get(url)
    if host is None:
        host = cache[url] = host_of(url)
    return host


def department_links(page: Page, rules):
    """Department-site evidence.

    Returns ``("directory", [(el, label, href)])`` for a link to a directory of department sites,
    ``("group", items)`` for the largest group of links (or select options) to other government
    hosts named like departments, else ``(None, largest_group)``. Computed once per page and rules.
    """
    key = ("departments", tuple(rules.link_texts), tuple(rules.text_patterns), tuple(rules.exclude_texts),
           rules.max_text_len, rules.min_items)
    cached = page._cache.get(key)
    if cached is None:
        cached = page._cache[key] = _department_links(page, rules)
    return cached[0], list(cached[1])


_EXCLUDED, _DIRECTORY, _DEPARTMENT = 1, 2, 4


def _department_links(page: Page, rules):
    own_host = host_of(page.url)
    groups: dict = {}
    elements = list(page.links()) + list(page.visible_elements("option"))
    max_len = rules.max_text_len
    labels = [page.label_of(el) for el in elements]
    # Labels no list matches are passed over: the three label tests of every link are one
    # search over all labels, then one regex call per distinct label that may match.
    bank, bits_of = _label_bank(tuple(rules.exclude_texts), tuple(rules.link_texts), tuple(rules.text_patterns))
    texts = [label if label and len(label) <= max_len else None for label in labels]
    masks: dict[str, int] = {}
    for position in bank.candidates(texts):
        label = texts[position]
        if not label:
            continue
        el = elements[position]
        href = page.absolute(el.get("value") if el.tag == "option" else el.get("href"))
        if href is None:
            continue
        bits = masks.get(label)
        if bits is None:
            bits = masks[label] = bits_of(label)
        if bits & _EXCLUDED:
            continue
        if bits & _DIRECTORY and not is_headline(page, el, label, href):
            return "directory", [(el, label, href)]
        if not bits & _DEPARTMENT:
            continue
        host = cached_host(page, href)
        if not host or host == own_host or _NON_GOV_HOST.search(host):
            continue
        parent = el.getparent()
        group = parent.getparent() if parent is not None and parent.tag in ("li", "td", "dd", "span") else parent
        groups.setdefault(group, []).append((el, label, href))
    best = max(groups.items(), key=lambda kv: len(kv[1]), default=None)
    if best is not None and len(best[1]) >= rules.min_items:
        return "group", best[1]
    return None, (best[1] if best else [])


@lru_cache(maxsize=64)
def _label_bank(excluded: tuple[str, ...], directory: tuple[str, ...], department: tuple[str, ...]):
    """(bank, label -> bits (_EXCLUDED, _DIRECTORY, _DEPARTMENT) of the lists that match it)."""
    bank = PatternBank([excluded, directory, department])
    order = [bank.index.get(lst) for lst in (excluded, directory, department)]
    flags = (_EXCLUDED, _DIRECTORY, _DEPARTMENT)
    # bank mask -> bits, for every mask of the bank's lists
    table = [sum(flag for flag, i in zip(flags, order) if i is not None and mask >> i & 1) for mask in range(1 << len(bank.lists))]

    def bits(label: str) -> int:  # for the bank's candidates
        return table[bank.mask(label, candidate=True)]

    return bank, bits


@register("department_links")
def detect_department_links(page: Page, indicator, ctx: Context) -> Finding:
    """Links to the sites of government departments (other hosts, department-like names), or a
    link to a directory of such sites."""
    rules = indicator.rules
    how, items = department_links(page, rules)
    if how == "directory":
        el, label, href = items[0]
        return present(page, indicator, ctx, el, href=href, snippet=label)
    if how == "group":
        ancestors = [set(el.iterancestors()) for el, _, _ in items]
        container = items[0][0].getparent()
        while container is not None and not all(container in chain for chain in ancestors):
            container = container.getparent()
        return present(
            page, indicator, ctx, container if container is not None else items[0][0], href=items[0][2],
            value=str(len(items)),
            details={"links": [{"text": label, "href": href} for _, label, href in items]},
        )
    return absent(
        page, indicator, ctx,
        f"directory link texts and links to other government hosts with department names; "
        f"largest group has {len(items)} link(s), need {rules.min_items}",
    )


# ---------------------------------------------------------------------------- message replies
@register("status_list")
def detect_status_list(page: Page, indicator, ctx: Context) -> Finding:
    """Items of a message list that show a public reply (status label or reply block)."""
    rules = indicator.rules
    hits: list = []
    index = page_index(page)
    elements = index.elements()
    # A status shown as an icon with alt text counts as the icon's text.
    icons = {}
    for i in index.positions_of("img"):
        el = elements[i]
        icons[i] = el.get("alt") or el.get("title") or ""
    # texts shown (not only whitespace): the own texts', the icons' in place of theirs
    shown = page._text_model().shown
    checked = len(shown.intersection(elements))
    checked += sum(1 for text in icons.values() if text.strip()) - sum(1 for i in icons if elements[i] in shown)

    def text_at(i: int) -> str:
        return icons[i] if i in icons else page.own_text(elements[i])

    literals = literal_alternatives(rules.text_patterns)
    if literals is not None and spaceless(literals):
        candidates = index.own_scan("|".join(re.escape(lit) for lit in literals), icons)
    else:
        texts = [text_at(i) for i in range(len(elements))]
        if literals is not None:
            candidates = index.scan("status", texts, "|".join(re.escape(lit) for lit in literals), spaceless=spaceless(literals))
        else:
            candidates = [i for i, text in enumerate(texts) if text and any_of(tuple(rules.text_patterns), text)]
    for position in candidates:
        own, el = text_at(position), elements[position]
        if not own.strip():
            continue
        item = el if el.tag in ("li", "tr", "dd", "dl") else item_container(page, el, levels=3)
        item = item if item is not None else el
        if rules.context_texts and not near_text(page, item, rules.context_texts):
            continue  # 已办结 in a service-case list is not a reply to the public
        if item not in hits and len(page.visible_text(item)) <= 300:
            hits.append(item)
    if len(hits) >= rules.min_items:
        return present(page, indicator, ctx, hits[0], details={"items": len(hits)})
    if rules.labels:
        block_rules = type(rules)(text_patterns=rules.labels, max_text_len=rules.max_text_len, allow_dated=True)
        for el, _text in iter_caption_matches(page, block_rules, ctx.plan):
            container = el.getparent()
            if container is not None and len(page.visible_text(container)) > len(page.visible_text(el)) + 10:
                return present(page, indicator, ctx, el, details={"items": 0})
    return absent(page, indicator, ctx, f"{checked} text element(s) checked for reply status or reply blocks; {len(hits)} found")
