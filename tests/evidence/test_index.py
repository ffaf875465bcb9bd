"""The page index and the compiled pattern banks give exactly what the rules say one by one."""

from __future__ import annotations

import datetime as dt
import random
import re
from urllib.parse import urljoin

import pytest

import findings_dump
from evidence import Page, load_catalogue
from evidence.detectors import DETECTORS, Context, plan_for
from evidence.index import page_index, value_triggers
from evidence.patterns import PatternBank, Prefilter, split_alternatives

NOW = dt.date(2026, 11, 26)


def _pages(real: bool = False):
    pages = findings_dump.labelled_pages(findings_dump.REALPAGES, "realpages") if real else findings_dump.all_pages(real=False)
    return [(name, Page.from_bytes(url, body, kind="portal")) for name, url, body, _kind in pages]


@pytest.fixture(scope="module")
def pages():
    return _pages()


# ---------------------------------------------------------------------------- URLs
BASES = [
    "http://www.a.gov.cn/", "https://a.gov.cn/x/y/z.html", "http://a.gov.cn:8080/a//b/./c/../d.shtml?q=1#f",
    "http://a.gov.cn/a/b;jsessionid=1?x", "http://a.gov.cn", "https://u@a.gov.cn/dir/", "http://a.gov.cn/../../x",
    "HTTP://A.gov.cn/Q/", "http://a.gov.cn/a/b/..", "http://a.gov.cn/a/.", "ftp://x/y", "http://localhost/", "about:blank",
]
HREFS = [
    "a.html", "a/b/c.html", "a//b", "./a", "../a", "a/./b", "a/../b", "a/", "/", "/a", "/a/b/", "//h/x", "/a//b", "/./a",
    "/a/..", "?x=1", "?", "a?", "a#", "a?b#c", "a?b?c#d#e", "http://h.cn", "http://h.cn/", "https://h.cn?x", "http://h.cn#f",
    "HTTP://h.cn/", "http://[::1]/", "http://[x/", "http://h.cn:80/a;p", "a;p", "x:y", "a:b/c", "中文/页面.html", "/中文?q=值",
    "http://中文.cn/", "a b", "a\tb", "a\nb", ".", "..", "a/.", "a/..", "/.", "/..", "http:x", "http:/x", "https:", "\\a",
    "a\\b", "http://h.cn/a/../b", "http://user:pw@h.cn:81/x?y#z", "index.html?", "/x?#", "%41/b", "~u/", " /a ", "\u3000a",
]


def _expected(page: Page, href: str):
    target = href.strip()
    if not href or target.lower().startswith(("javascript:", "mailto:", "tel:", "#", "data:")):
        return None
    try:
        return urljoin(page.base_url, target)
    except ValueError:
        return None


def test_absolute_equals_urljoin_on_tricky_targets():
    rng = random.Random(7)
    hrefs = HREFS + ["".join(rng.choice("ab/.?#;:%中 ") for _ in range(rng.randint(1, 8))) for _ in range(3000)]
    for base in BASES:
        page = Page.from_text(base, "<html><body></body></html>")
        for href in hrefs:
            assert page.absolute(href) == _expected(page, href), (base, href)


def test_absolute_equals_urljoin_on_every_page_link(pages):
    checked = 0
    for name, page in pages:
        fresh = Page.from_text(page.url, page.text)
        for el in page.tree.iter("a", "area", "option"):
            href = el.get("value") if el.tag == "option" else el.get("href")
            if href:
                checked += 1
                assert fresh.absolute(href) == _expected(fresh, href), (name, href)
    assert checked > 1500


# ---------------------------------------------------------------------------- pattern banks
def test_split_alternatives():
    assert split_alternatives("a|b(c|d)") == ["a", "b(c|d)"]
    assert split_alternatives(r"a\|b|c") == [r"a\|b", "c"]
    assert split_alternatives("[|]|x") == ["[|]", "x"]
    assert split_alternatives("[]|]|y") == ["[]|]", "y"]
    assert split_alternatives("[^]|]|z") == ["[^]|]", "z"]
    assert split_alternatives("(?#x|y)q|w") == ["(?#x|y)q", "w"]
    assert split_alternatives("^(个人|企业)(办事|服务)$|全程网办|^服务$") == ["^(个人|企业)(办事|服务)$", "全程网办", "^服务$"]
    assert split_alternatives("(a|b") == ["(a|b"]


ODD_LISTS = [
    ("(a)\\1",), ("(?P<v>x)y", "(?P<v>z)"), ("(?P<v>q)",), ("(?m)^b",), ("^x", "(?<![A-Za-z])API"), ("(?x) a | b # c",),
    ("^$",), ("\\bkey\\b",), ("[\u4e00-\u9fa5]ICP", "^(?:服务)$|指南$"),
]


def _matches(patterns, text: str) -> bool:
    """The rule: any of the regexes, each on its own, searched case-insensitively."""
    return bool(text) and any(re.search(p, text, re.I) for p in patterns)


def _texts(page: Page) -> list[str]:
    index = page_index(page)
    return [t for t in index.labels + index.hrefs + index.caption_texts + index.value_texts()[1] if t]


def test_bank_masks_equal_each_list(pages):
    plan = plan_for(load_catalogue())
    odd = PatternBank(ODD_LISTS)
    texts = {t for _name, page in pages for t in _texts(page)}
    texts |= {"a a", "xy", "zq", "\nb", "API", "xAPI", "", " ", "key", "keys", "京ICP备1号", "服务", "办事指南", "\u3000"}
    assert len(texts) > 3000
    for lists in (plan.labels.lists, plan.captions.lists):  # the lists can also be searched as one regex each
        for key in lists:
            assert all(bool(re.compile("|".join(f"(?:{p})" for p in key), re.I).search(t)) == _matches(key, t) for t in texts if t)
    for bank in (plan.labels, plan.urls, plan.captions, plan.triggers, odd):
        prefilter = Prefilter([p for key in bank.lists for p in key])
        for text in texts:
            expected = sum(1 << i for i, key in enumerate(bank.lists) if _matches(key, text))
            assert bank.mask(text) == expected, (bank.lists, text)
            assert bank.mask(text, candidate=True) == expected, (bank.lists, text)
            assert prefilter.test(text) == bool(expected) or not text, text


def test_plan_and_rule_by_rule_give_the_same_findings(pages):
    """With the compiled plan, and with every rule list searched on its own (no plan)."""
    _compare_plan_and_direct(pages)


def test_plan_and_rule_by_rule_on_shared_real_pages():
    if not (findings_dump.REALPAGES / "labels.json").is_file():
        pytest.skip("../shared/realpages (real pages for measurement) is not present next to the checkout")
    _compare_plan_and_direct(_pages(real=True))


def _compare_plan_and_direct(pages):
    catalogue = load_catalogue()
    plan = plan_for(catalogue)
    for name, page in pages:
        direct = Page.from_text(page.url, page.text, kind="portal")
        for indicator in catalogue.for_kind("portal"):
            if indicator.crawler_only:
                continue
            a = DETECTORS[indicator.detector](page, indicator, Context(now=NOW, version="v", plan=plan))
            b = DETECTORS[indicator.detector](direct, indicator, Context(now=NOW, version="v"))
            assert a == b, (name, indicator.id)


def test_value_triggers_fall_back_to_the_value_regex():
    rules = load_catalogue().get("site.id_code").rules
    assert value_triggers(rules) == tuple(rules.labels)
    assert value_triggers(type(rules)(value_regex="x\\d+")) == ("x\\d+",)
    assert value_triggers(type(rules)()) == (".+",)


# ---------------------------------------------------------------------------- page helpers
def test_locator_selects_exactly_its_element(pages):
    checked = 0
    for name, page in pages[:12]:
        for el in page.visible_elements():
            matched = page.tree.cssselect(page.locator(el))
            assert matched == [el], (name, page.locator(el))
            checked += 1
    assert checked > 500


def test_longer_than_equals_visible_text_length(pages):
    for name, page in pages:
        fresh = Page.from_text(page.url, page.text)
        for limit in (12, 40):
            long = fresh.longer_than(limit)
            for el in fresh.visible_elements():
                assert (el in long) == (len(fresh.visible_text(el)) > limit), (name, limit)


def test_host_of_equals_urlsplit_hostname():
    from urllib.parse import urlsplit

    from evidence.page import host_of

    def reference(url):
        host = (urlsplit(url).hostname or "").lower()
        return host[4:] if host.startswith("www.") else host

    rng = random.Random(3)
    urls = ["http://WWW.A.gov.cn/x", "https://a.gov.cn", "http://a.gov.cn:80", "http://a.gov.cn:/", "http://:80/", "http:///x",
            "http://a@b/", "http://[::1]:80/", "http://a.b.c?x", "http://a#f", "http://a b/", "http://中文.cn/", "HTTP://A/",
            "http://a.gov.cn:8x/", "https://www./", "http://%41/"]
    urls += ["http" + rng.choice(["", "s"]) + "://" + "".join(rng.choice("aW.:@[]/?#%-_~ 中9") for _ in range(rng.randint(0, 10)))
             for _ in range(5000)]
    for url in urls:
        try:
            expected = reference(url)
        except ValueError:
            with pytest.raises(ValueError):
                host_of(url)
            continue
        assert host_of(url) == expected, url


# ---------------------------------------------------------------------------- text model
TRICKY_HTML = [
    "<html><body>  a <b> b </b>\n\t<div>c<p>d</p> e</div><!-- x --> f<br>g<span style='display:none'> h </span>i</body></html>",
    "<html><body><p>\u00a0\u3000x\u200by\ufeff</p><p></p><p> </p><div><div></div></div>end\u2028</body></html>",
    "<html><head><title>t</title></head><body style='display:none'><p>hidden</p></body></html>",
    "<p>no body tag <b>bold</b> tail</p>",
    "<html><body><ul><li>1</li><li> 2 <script>x()</script> 3</li></ul><table><tr><td>a</td><td>b</td></tr></table></body></html>",
    "",
]


def _raw_text(page: Page, el) -> str:
    """The visible text of an element put together as ``Page.raw_text`` does, without caches."""
    if not page.is_visible(el):
        return ""
    parts = [el.text or ""]
    for child in el:
        if isinstance(child.tag, str):
            parts.append(_raw_text(page, child))
            if child.tag in ("br", "p", "div", "li", "tr", "td", "th", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6"):
                parts.append(" ")
        parts.append(child.tail or "")
    return "".join(parts)


def _text_pages(pages):
    return pages + [(f"tricky/{i}", Page.from_text("http://a.gov.cn/", html)) for i, html in enumerate(TRICKY_HTML)]


def test_text_model_equals_the_text_put_together_per_element(pages):
    from evidence.page import normalize_space

    checked = 0
    for name, page in _text_pages(pages):
        fresh = Page.from_text(page.url, page.text)
        for el in fresh.tree.iter():
            if not isinstance(el.tag, str):
                continue
            assert fresh.visible_text(el) == normalize_space(_raw_text(fresh, el)), (name, fresh.locator(el))
            assert fresh.own_text(el) == (el.text or "") + "".join(child.tail or "" for child in el), name
            checked += 1
    assert checked > 5000


def test_visible_elements_links_controls_and_captions_equal_their_definitions(pages):
    from evidence.index import CAPTION_MAX, TEXT_TAGS, short_captions
    from evidence.page import normalize_space

    for name, page in _text_pages(pages):
        fresh = Page.from_text(page.url, page.text)
        body = fresh.tree.find("body")
        body = body if body is not None else fresh.tree
        visible = [el for el in body.iter() if isinstance(el.tag, str) and fresh.is_visible(el)]
        assert list(fresh.visible_elements()) == visible, name
        for tags in (("a", "area"), ("option",), ("input",), ("li", "td")):
            assert list(fresh.visible_elements(*tags)) == [el for el in visible if el.tag in tags], (name, tags)
        links = [el for el in visible if el.tag in ("a", "area")]
        assert fresh.links() == links, name
        controls = list(links)
        for el in visible:
            kind = (el.get("type") or "").lower()
            clickable = (
                el.tag == "button" or (el.tag == "input" and kind in ("button", "submit", "image"))
                or el.get("onclick") is not None or el.get("role") in ("button", "link", "tab", "menuitem")
            )
            if el not in links and clickable and not any(a in links for a in el.iterancestors("a")):
                controls.append(el)
        assert fresh.controls() == controls, name
        captions = []
        for el in visible:
            if el.tag not in TEXT_TAGS:
                continue
            text = normalize_space(el.get("alt") or el.get("title") or "") if el.tag == "img" else fresh.visible_text(el)
            if text and len(text) <= CAPTION_MAX:
                captions.append((el, text))
        assert [(fresh.locator(el), text) for el, text in short_captions(fresh)] == [
            (fresh.locator(el), text) for el, text in captions
        ], name


# ---------------------------------------------------------------------------- joined scans
def test_joinable_pieces():
    from evidence.patterns import joinable

    for piece in ("^服务$", "(?<![A-Za-z])API(?![A-Za-z])", "a.*b", "x\\s*y$", "\\bkey\\b", "(?=ab)a", "[^/]*(/|$)", "(?s:a.b)"):
        assert joinable(piece), piece
    for piece in ("\\Aa", "a\\Z", "(a)\\1", "(?>a+)b", "a++", "(?<!\\s)x", "x(?!\\n)", "(?s)x(?!.)", "(?x) a",
                  "(?(1)a|b)", "(?-m:^a)", "(?<![^a])b"):
        assert not joinable(piece), piece


ODD_SCAN_LISTS = ODD_LISTS + [
    ("\\Aa", "b\\Z"), ("(?<!\\s)q",), ("x(?!\\s)",), ("(?>ab|a)b",), ("^$",), ("\\s+",), ("[^x]*z$",), ("(?s:.)",),
]


def test_scanner_candidates_hold_every_matching_text(pages):
    """``PatternBank.candidates`` over joined texts holds every text a list matches on its own."""
    from evidence.patterns import join_lines

    plan = plan_for(load_catalogue())
    banks = [plan.labels, plan.urls, plan.captions, plan.triggers, PatternBank(ODD_SCAN_LISTS)]
    extra = ["a a", "xy", "zq", "API", "xAPI", "", " ", "key", "keys", "京ICP备1号", "服务", "办事指南", "\u3000", "a", "b",
             " q", "q", "x ", "x", "ab", "abb", "z", "yz", "\t", "x y z"]
    lists_of_texts = [_texts(page) + extra for _name, page in pages]
    lists_of_texts += [extra[::-1], extra[:1], [], ["a\nb", "b"], [None, "API", None]]
    for bank in banks:
        for texts in lists_of_texts:
            found = bank.candidates(texts)
            assert found == sorted(set(found))
            expected = [i for i, text in enumerate(texts) if text and bank.mask(text)]
            assert set(expected) <= set(found), (bank.lists, [texts[i] for i in set(expected) - set(found)])
            assert bank.candidates(texts, join_lines(texts)) == found


def test_spaceless_scan_equals_the_scan_of_the_texts_as_they_are(pages):
    from evidence.common import DIGIT
    from evidence.patterns import positions_containing

    for name, page in pages[:40]:
        index = page_index(page)
        _elements, texts = index.value_texts()
        for regex in ("标识码|识别码", "ICP", "公网安备", DIGIT.pattern, "已回复|已办结"):
            assert index.scan(f"test-{regex}", texts, regex, spaceless=True) == positions_containing(texts, regex), (name, regex)


def test_own_scan_equals_the_scan_of_the_own_texts(pages):
    """Keywords without spaces are found in the same own texts, dates in at least the same."""
    from evidence.dates import _ANY_DATE
    from evidence.patterns import positions_containing

    extra = [(f"tricky/{i}", Page.from_text("http://a.gov.cn/", html)) for i, html in enumerate([
        "<html><body><p>网站标识码\u200b：1</p><p>IC<b> </b> P</p><p>I<i></i>CP</p><p>2020\u200b年1月2日</p>"
        "<p> 2020 - 1 - 2 </p><span>\ufeff</span><span>\u200b</span><a href='/x'>ICP备</a><p>1-2<b>x</b>3</p></body></html>",
        "<html><body><p>\u0131cp</p><p>icP</p><p>\u212a</p><a href='/y'>Icp</a></body></html>",
        "<html><body><p>\u0130CP</p><p>ICP</p><p>\u017f</p></body></html>",
    ])]
    for name, page in pages + extra:
        index = page_index(page)
        elements, owns = index.element_texts()
        model = page._text_model()
        assert {el for el in elements if el in model.shown} == {el for el, own in zip(elements, owns) if own.strip()}, name
        links = {i: owns[i] + " " + page.label_of(elements[i]) for i in index.positions_of("a")}
        texts = [links.get(i, own) for i, own in enumerate(owns)]
        for regex in ("标识码|识别码", "ICP", "公网安备", "已回复|已办结", "数据集"):
            assert index.own_scan(regex, {i: index.scan_texts()[i] + " " + page.label_of(elements[i]) for i in links}) == (
                positions_containing(texts, regex)), (name, regex)
            assert index.own_scan(regex, {i: page.label_of(elements[i]) for i in links}, added=True) == (
                positions_containing(texts, regex)), (name, regex)
            assert index.own_scan(regex, {}) == positions_containing(owns, regex), (name, regex)
        fresh = page_index(Page.from_text(page.url, page.text))  # nothing searched yet
        assert fresh.own_scan("ICP", {}, folded="icp") == positions_containing(owns, "ICP"), name
        assert fresh.own_scan("ICP", links, folded="icp") == positions_containing(texts, "ICP"), name
        dated = set(index.own_scan(_ANY_DATE, {}))
        assert dated >= set(positions_containing(owns, _ANY_DATE)), name
        assert set(positions_containing(owns, _ANY_DATE)) == {
            i for i, own in enumerate(owns) if re.search(_ANY_DATE, own)
        }, name


def test_absolute_equals_urljoin_on_dot_segment_targets():
    rng = random.Random(5)
    prefixes = ["./", "../", "../../", "../../../", "./../", "../" * 6, "..", "../.", "../..", ".././", "././"]
    hrefs = [rng.choice(prefixes) + "".join(rng.choice("ab/.?#;:%中 ") for _ in range(rng.randint(0, 7))) for _ in range(4000)]
    hrefs += ["../", "../../", "../x", "../../x/", "../a?b", "../#f", "../?q", "..//x", "../a//b", "../" * 9 + "x", "../:x"]
    bases = BASES + ["http://h/a/b/c/d.html", "http://h/a//b/", "https://h/a/b/c/?x=1#y", "http://h/a/./b/"]
    for base in bases:
        page = Page.from_text(base, "<html><body></body></html>")
        for href in hrefs:
            assert page.absolute(href) == _expected(page, href), (base, href)
