"""Value detectors: a value read from visible text near a label keyword (site identifiers such as
网站标识码 / ICP备案号 / 公网安备, dataset counts, 好评率), and the list of download formats.

Candidates come from the page index: every visible element's own text is tested once against the
trigger keywords of all value indicators together; each indicator then reads its value from its
own candidates only.
"""

from __future__ import annotations

import re

from .common import Context, absent, element_has_date, item_container, present, register
from .entries import detect_entry
from .finding import PRESENT, Finding
from .index import caption_lists, page_index, value_triggers
from .page import SPAN_MASK, SPAN_SHIFT, Page, normalize_space
from .patterns import rx, scanner_for


def _value_of(match: re.Match) -> str:
    """The first matched group named ``value*`` (alternatives may each have one), else the match."""
    for name, text in match.groupdict().items():
        if name.startswith("value") and text is not None:
            return normalize_space(text)
    return normalize_space(match.group(0))


@register("value")
def detect_value(page: Page, indicator, ctx: Context, *, max_len: int | None = None) -> Finding:
    """Read a value near a label keyword in visible text; the value may span several tags.

    ``max_len`` skips long blocks (prose): a count stated in a sentence is not a statistic.
    """
    rules = indicator.rules
    regex = rx(rules.value_regex or ".+")
    candidates = 0
    seen = set()
    index = page_index(page)
    elements = index.elements()  # the elements of ``value_texts()``
    for position in index.value_hits(value_triggers(rules), ctx.plan):
        el = elements[position]
        if max_len is not None and _in_headline_link(page, el):
            continue
        node = el
        for _ in range(4):
            if node is None or node in seen:
                break
            seen.add(node)
            candidates += 1
            text = page.visible_text(node)
            if max_len is not None and len(text) > max_len:
                break
            match = regex.search(text)
            if match:
                value = _value_of(match)
                # A long block (a whole footer) is still one element; the snippet is its start.
                return present(page, indicator, ctx, node, value=value, href=_link_href(page, node), snippet=text)
            node = node.getparent()
    return absent(
        page,
        indicator,
        ctx,
        f"value regex {rules.value_regex!r} near label(s) {rules.labels} in visible text: "
        f"{candidates} candidate element(s), no match",
    )


def _in_headline_link(page: Page, el) -> bool:
    """Text inside a link of a dated list item: a news title quoting a figure, not the figure."""
    link = el if el.tag == "a" else next(el.iterancestors("a"), None)
    if link is None:
        return False
    container = item_container(page, link)
    return container is not None and element_has_date(page, container)


def _link_href(page: Page, el) -> str | None:
    if el.tag == "a":
        return page.absolute(el.get("href"))
    return None


# ---------------------------------------------------------------------------- formats
_FORMAT_TOKEN = re.compile(r"(?<![A-Za-z])(CSV|XLSX|XLS|JSON|XML|RDF|TXT|SHP|GEOJSON)(?![A-Za-z])", re.I)
_FORMAT_SEQUENCE = re.compile(
    r"^\s*(?:CSV|XLSX|XLS|JSON|XML|RDF|TXT|SHP|GEOJSON)(?:\s*[/、,，|;；]\s*(?:CSV|XLSX|XLS|JSON|XML|RDF|TXT|SHP|GEOJSON))+\s*$",
    re.I,
)
_FORMAT_TAGS = ("a", "span", "button", "label", "li", "em", "i", "b", "td", "dd")


@register("format_list")
def detect_format_list(page: Page, indicator, ctx: Context) -> Finding:
    """File formats offered for download (links, buttons or filter labels), as a sorted list."""
    rules = indicator.rules
    token = rx(rules.value_regex or r"^(CSV|XLSX?|JSON|XML|RDF|TXT|PDF|ZIP)$")
    found: dict[str, object] = {}
    model = page._text_model()
    spans, normalized = model.spans, model.text
    elements, texts = [], []
    for el in page.visible_elements(*_FORMAT_TAGS):
        if el.tag == "a":
            text = page.label_of(el)
        else:
            span = spans[el]
            start, end = span >> SPAN_SHIFT, span & SPAN_MASK
            if end - start > 42:  # a visible text longer than 40 (``Page.longer_than``)
                continue
            text = normalized[start:end].strip()
        if not text or len(text) > 40:
            continue
        elements.append(el)
        texts.append(text)
    candidates = len(texts)
    # Only the labels where the token or a sequence of formats may match are read (one search
    # over all labels for each).
    shorts = [text if len(text) <= 12 else None for text in texts]
    maybe = set(scanner_for((token.pattern,)).positions(shorts)) | set(scanner_for((_FORMAT_SEQUENCE.pattern,)).positions(texts))
    for position in sorted(maybe):
        el, text = elements[position], texts[position]
        m = token.search(text.strip()) if len(text) <= 12 else None
        if m:
            found.setdefault(_value_of(m).upper(), el)
        elif _FORMAT_SEQUENCE.match(text):  # a cell "CSV / XLSX / JSON"
            for t in _FORMAT_TOKEN.finditer(text):
                found.setdefault(t.group(0).upper(), el)
    if not found:
        for el, text in zip(*caption_lists(page)):
            if "格式" not in text or el.tag == "a":
                continue
            for m in _FORMAT_TOKEN.finditer(text.split("格式", 1)[1]):
                found.setdefault(m.group(0).upper(), el)
            if found:
                break
    if len(found) >= rules.min_items:
        formats = sorted(found)
        first = next(iter(found.values()))
        return present(page, indicator, ctx, first, value=",".join(formats), details={"formats": formats})
    return absent(page, indicator, ctx, f"{candidates} short label(s) checked for format names; {len(found)} found")


# ---------------------------------------------------------------------------- counts and statistics
@register("count_value")
def detect_count_value(page: Page, indicator, ctx: Context) -> Finding:
    """An entry (link/caption) whose count, when shown next to the label, becomes the value."""
    rules = indicator.rules
    value_finding = detect_value(page, indicator, ctx, max_len=rules.max_text_len * 3) if rules.value_regex else None
    if value_finding is not None and value_finding.verdict == PRESENT:
        value = (value_finding.value or "").replace(",", "")
        return Finding(**{**value_finding.to_dict(), "value": value})
    entry = detect_entry(page, indicator, ctx)
    if entry.verdict == PRESENT:
        return entry
    return absent(page, indicator, ctx, f"{entry.checked}; {value_finding.checked if value_finding else ''}".strip("; "))


_REVIEW_COMPANIONS = {
    "bad_review_rectification_rate": re.compile(r"差评整改率\s*[:：]?\s*(\d{1,3}(?:\.\d+)?\s*%)"),
    "review_count": re.compile(r"评价(?:总量|总数|量|数|人次)\s*[:：]?\s*(\d[\d,]*)\s*(?:件|次|条|笔)?"),
    "bad_review_count": re.compile(r"差评(?:数|量|件数)\s*[:：]?\s*(\d[\d,]*)"),
}
_PERIOD = re.compile(
    r"(?:统计(?:周期|时间|区间)\s*[:：]?\s*)?"
    r"((?:19|20)\d{2}\s*年\s*(?:\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?|第?[一二三四1-4]\s*季度|上半年|下半年|全年)"
    r"(?:\s*[—\-–~至到]+\s*(?:(?:19|20)\d{2}\s*年)?\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?)?)"
)


@register("review_stats")
def detect_review_stats(page: Page, indicator, ctx: Context) -> Finding:
    """Published 好差评 figures: the 好评率 is the value; companions and the period go to details.

    The companions (差评整改率, 评价量) and the period are read from the smallest block around the
    好评率 that also carries them (up to four levels up).
    """
    finding = detect_value(page, indicator, ctx, max_len=indicator.rules.max_text_len * 4)
    if finding.verdict != PRESENT:
        return finding
    el = page.tree.cssselect(finding.locator)[0]
    details: dict = {"good_review_rate": finding.value}
    node = el
    for _ in range(4):
        parent = node.getparent()
        if parent is None:
            break
        node = parent
        text = page.visible_text(node)
        for key, companion in _REVIEW_COMPANIONS.items():
            if key not in details and (m := companion.search(text)):
                details[key] = normalize_space(m.group(1))
        if "period" not in details and (m := _PERIOD.search(text)):
            details["period"] = normalize_space(m.group(1))
        if len(details) >= 3 and "period" in details:
            break
    return Finding(**{**finding.to_dict(), "details": details})
