"""A fetched page, decoded and parsed once, with a visibility model shared by all detectors.

Detectors never re-parse: they ask the page for visible text, visible links and locators.
What a visitor can see is decided here, in one place:

* text inside ``script``/``style``/``noscript``/``template`` and comments is never visible;
* elements hidden inline (``display:none``, ``visibility:hidden``, the ``hidden`` attribute,
  ``input type=hidden``, AngularJS ``ng-hide``) are not visible, *unless* a visible control
  reveals them: a tab panel whose sibling panel is shown, or a hover sub-menu right after a
  visible navigation item. Such panels are what a visitor sees after a click or a hover.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree
from w3lib.encoding import html_body_declared_encoding, html_to_unicode, http_content_type_encoding, resolve_encoding

# ``iframe`` content is another document (its inline fallback is not shown).
NEVER_VISIBLE_TAGS = frozenset(
    {"script", "style", "noscript", "noframes", "template", "head", "title", "meta", "link", "iframe", "object", "embed"}
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_EARLY_CLOSE = re.compile(r"</(?:html|body)\s*>", re.I)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_REFRESH_URL = re.compile(r"url\s*=\s*(\S+)", re.I)
_SCRIPT_REDIRECT = re.compile(
    r"(?:window\.|top\.|self\.|document\.)*location(?:\.href)?\s*(?:=|\.replace\(|\.assign\()\s*['\"]([^'\"]+)['\"]"
)
STUB_MAX_CHARS = 30
_QUOTED_ID = re.compile(r"['\"]#?([A-Za-z][\w-]*)['\"]")
_WS = re.compile(r"[\s\u00a0\u3000\u200b\ufeff]+")
# Joins texts for one regex call over all of them: no text of a parsed page holds it (XML has no NUL).
_SEPARATOR = "\x00"
_DIGITS = re.compile(r"\d+")
# ``http(s)://host[:port]`` followed by the path, query, fragment or the end: an ASCII host without
# user information or brackets, which ``urlsplit(url).hostname`` returns as it is (lower-cased).
_PLAIN_HOST = re.compile(r"https?://([A-Za-z0-9.\-_~%]*)(?::[0-9]*)?(?=[/?#]|$)")
# Link targets ``Page.absolute`` can resolve without ``urljoin`` (see ``Page._plain_join``).
_PLAIN_HREF = re.compile(
    r"(?P<origin>https?://[A-Za-z0-9.\-_~%:@]+(?=[/?#]|$))?"
    r"(?P<path>[^\x00-\x20\x7f\s?#;\\]*)(?:\?[^\x00-\x20\x7f\s#]+)?(?:#[^\x00-\x20\x7f\s]+)?"
)
# Elements whose end separates their text from what follows (``raw_text`` puts a space there).
_BLOCK_TAGS = frozenset({"br", "p", "div", "li", "tr", "td", "th", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6"})
_SIMPLE_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]+\Z")
_STATE_CLASSES = frozenset({"on", "active", "cur", "current", "hover", "show", "hide", "hidden", "dn", "selected", "sel"})
# A hover menu's trigger is a short label: a nav item, not a paragraph.
_TRIGGER_MAX_CHARS = 12
# An icon without text (magnifier, QR, menu) also opens a panel when it is styled as a control.
_NAV_CLASS = re.compile(r"nav|menu|drop|tab|has-sub|sub", re.I)
_ICON_TRIGGER = re.compile(r"search|icon|btn|ewm|qr|code|wx|wb|menu|drop|toggle", re.I)

# What the visibility model looks at, found by lxml in C: the attributes that can hide an
# element, those that name an element a control opens, and the candidates of a control.
# (``//*/@name`` reads attributes without visiting text nodes: faster than ``//@name``.)
_NG_HIDE = etree.XPath("//*/@class[contains(., 'ng-hide')]")
_INLINE_HIDING = etree.XPath("//*/@hidden/.. | //*/@style/..")
_HANDLER_ATTRS = etree.XPath("//*/@*[starts-with(name(), 'on')]")
_TARGET_ATTRS = etree.XPath("//*/@aria-controls | //*/@data-target | //*/@data-bs-target | //*/@href[starts-with(., '#')]")
_ID_ATTRS = etree.XPath("//*/@id")
# An element whose class, id or role holds "tab" in any case (``lower()`` makes no other letters
# t, a or b), or that switches something on hover.
_TAB_CONTROL = etree.XPath(
    "boolean(descendant-or-self::*[contains(translate(@class, 'TAB', 'tab'), 'tab') or contains(translate(@id, 'TAB', 'tab'), 'tab')"
    " or contains(translate(@role, 'TAB', 'tab'), 'tab') or @onmouseover != '' or @onmouseenter != ''])"
)
_STATIC_TEXT = etree.XPath(".//text()[not(ancestor::script) and not(ancestor::style)]")
_CONTROL_CANDIDATES = etree.XPath(".//button | .//input | .//@onclick/.. | .//@role/..")


def normalize_space(text: str) -> str:
    """Collapse every run of whitespace (including NBSP and ideographic space) to one space."""
    return _WS.sub(" ", text).strip()


def host_of(url: str) -> str:
    """Lower-case host without a leading ``www.`` and without port."""
    m = _PLAIN_HOST.match(url)  # the common shape, read without urlsplit (same result)
    host = m.group(1).lower() if m else (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def _decode(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Decode page bytes: BOM, HTTP header, ``<meta>``, then a statistical guess.

    A declaration is only trusted when the bytes decode cleanly with it; a page that
    declares UTF-8 but is GBK (or declares nothing) falls back to charset-normalizer.
    """
    declared = None
    if content_type:
        declared = http_content_type_encoding(content_type if "charset" in content_type.lower() else None)
    if declared is None:
        declared = html_body_declared_encoding(body)
    if declared is not None:
        declared = resolve_encoding(declared)
    if body.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        encoding, text = html_to_unicode(content_type, body)
        return encoding, text
    if declared and declared != "utf-8" and not body.isascii():
        # Multi-byte text that is valid UTF-8 is UTF-8 whatever a stale template declares:
        # GBK text practically never forms valid UTF-8 sequences.
        try:
            return "utf-8", body.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if declared:
        try:
            return declared, body.decode(declared)
        except (UnicodeDecodeError, LookupError):
            pass

    def guess(data: bytes) -> str | None:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        return best.encoding if best is not None else None

    for candidate in ("utf-8",):
        try:
            return candidate, body.decode(candidate)
        except UnicodeDecodeError:
            pass
    guessed = guess(body)
    if guessed:
        guessed = resolve_encoding(guessed) or guessed
        # Chinese pages guessed as a GB family member decode best with the superset.
        if guessed.replace("_", "").lower() in {"gb2312", "gbk", "gb18030", "hz"}:
            guessed = "gb18030"
        try:
            return guessed, body.decode(guessed)
        except (UnicodeDecodeError, LookupError):
            pass
    encoding, text = html_to_unicode(content_type, body, auto_detect_fun=guess)
    return encoding, text


@dataclass
class Page:
    """One captured page: URL, source kind, decoded text and the lxml tree (parsed once).

    Everything else is computed when first asked for and kept: the visibility model
    (``is_visible``), the visible text of the body (``raw_text``, ``own_text``), the visible
    links and controls, resolved targets and locators. A caller that only needs the tree (the
    crawl's link extraction, the status checks) pays for the parse alone.
    """

    url: str
    kind: str
    encoding: str
    text: str
    tree: lxml.html.HtmlElement
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_bytes(cls, url: str, body: bytes, *, content_type: str | None = None, kind: str = "portal") -> "Page":
        encoding, text = _decode(body, content_type)
        return cls.from_text(url, text, kind=kind, encoding=encoding)

    @classmethod
    def from_text(cls, url: str, text: str, *, kind: str = "portal", encoding: str = "utf-8") -> "Page":
        cleaned = text.lstrip("\ufeff")
        if not cleaned.strip():
            cleaned = "<html><body></body></html>"
        # Encoding declarations inside a str confuse lxml; the text is already decoded.
        cleaned = _XML_DECLARATION.sub("", cleaned)
        # libxml2 stops at a stray </html> or </body>; browsers keep rendering what follows.
        cleaned = _EARLY_CLOSE.sub("", cleaned)
        try:
            tree = lxml.html.document_fromstring(cleaned)
        except (etree.ParserError, ValueError):
            tree = lxml.html.document_fromstring("<html><body></body></html>")
        return cls(url=url, kind=kind, encoding=encoding, text=text, tree=tree)

    # ------------------------------------------------------------------ visibility
    def hidden_elements(self) -> set:
        """Every node a visitor does not see: the hidden elements and all their descendants."""
        hidden = self._cache.get("hidden")
        if hidden is None:
            hidden = self._cache["hidden"] = self._compute_visibility()
        return hidden

    def _compute_visibility(self) -> set:
        """The hidden subtrees, from the few elements that can hide anything.

        An element is hidden when it or an ancestor hides itself (``_self_hides``), so only
        elements with a never-visible tag, a ``type``, ``class="ng-hide"``, ``hidden`` or
        ``style`` attribute are looked at (lxml finds them); each hiding one adds its subtree.
        """
        tree = self.tree
        hidden: set = set()
        for el in tree.iter(*NEVER_VISIBLE_TAGS):
            if el not in hidden:
                hidden.update(el.iter())
        for el in tree.iter("input"):
            if el not in hidden and (el.get("type") or "").lower() == "hidden":
                hidden.update(el.iter())
        if "ng-hide" in self.text or self._has_char_references():
            for value in _NG_HIDE(tree):
                el = value.getparent()
                if el not in hidden and "ng-hide" in value.split():
                    hidden.update(el.iter())
        for el in _INLINE_HIDING(tree):  # document order: an ancestor is decided before its descendants
            if el in hidden or not (el.get("hidden") is not None or _HIDDEN_STYLE.search(el.get("style") or "")):
                continue
            ident = el.get("id")
            if ident and self._is_referenced(ident):
                continue  # a control elsewhere opens it (onmouseover="showMenu('m3')", aria-controls, #tab2)
            if not (self._is_tab_panel(el) or self._is_hover_menu(el)):
                hidden.update(el.iter())
        return hidden

    def _has_char_references(self) -> bool:
        """Whether the source writes a character as ``&#…;`` (the only way an attribute value gets
        an ASCII letter, digit, ``_`` or ``-`` that the source does not show as it is)."""
        found = self._cache.get("char_refs")
        if found is None:
            found = self._cache["char_refs"] = "&#" in self.text
        return found

    def _is_referenced(self, ident: str) -> bool:
        """Whether a control names the id (``_referenced_ids``). An id of plain characters that the
        source shows only once (its own ``id`` attribute) is named by nothing: that is known
        without reading every attribute of the page."""
        if _PLAIN_ID.match(ident) and not self._has_char_references() and self.text.count(ident) < 2:
            return False
        return ident in self._referenced_ids()

    def _referenced_ids(self) -> frozenset[str]:
        """Ids that controls name in event handlers, ``aria-controls``, ``data-target`` or ``href="#id"``.

        Controls that are themselves hidden inline are ignored (they open nothing a visitor sees).
        """
        found = self._cache.get("triggered")
        if found is not None:
            return found
        ids: set[str] = set()

        def opens(el) -> bool:
            return el.tag not in NEVER_VISIBLE_TAGS and not (
                el.get("hidden") is not None or _HIDDEN_STYLE.search(el.get("style") or ""))

        for value in _HANDLER_ATTRS(self.tree):
            if opens(value.getparent()):
                ids.update(_QUOTED_ID.findall(value))
        for value in _TARGET_ATTRS(self.tree):
            if opens(value.getparent()):
                ids.update(v.lstrip("#") for v in value.split())
        found = self._cache["triggered"] = frozenset(ids)
        return found

    @staticmethod
    def _shape(el) -> tuple[str, str, frozenset]:
        ident = _DIGITS.sub("#", el.get("id") or "")
        classes = frozenset(c for c in (el.get("class") or "").split() if c.lower() not in _STATE_CLASSES)
        return el.tag, ident, classes

    def _is_tab_panel(self, el) -> bool:
        """A hidden panel with a shown sibling panel of the same shape (tab group)."""
        parent = el.getparent()
        if parent is None:
            return False
        tag, ident, classes = self._shape(el)
        if not ident and not classes:
            return False
        for sib in parent:
            if sib is el or not isinstance(sib.tag, str) or sib.tag != tag:
                continue
            s_tag, s_ident, s_classes = self._shape(sib)
            same_id_family = bool(ident) and s_ident == ident and "#" in ident
            same_class = not ident and bool(classes) and s_classes == classes and self._has_tab_control(parent)
            if same_id_family or same_class:
                style = sib.get("style") or ""
                if sib.get("hidden") is None and not _HIDDEN_STYLE.search(style):
                    return True
        return False

    def _has_tab_control(self, container) -> bool:
        """A tab header near a panel group: an element marked as tab or switching on hover/click
        (in the container or its parent, once per container)."""
        cache = self._cache.setdefault("tab_control", {})
        found = cache.get(container)
        if found is None:
            parent = container.getparent()
            found = cache[container] = bool(_TAB_CONTROL(parent if parent is not None else container))
        return found

    def _is_hover_menu(self, el) -> bool:
        """A hidden sub-menu directly after a visible, short navigation label."""
        prev = el.getprevious()
        while prev is not None and not isinstance(prev.tag, str):
            prev = prev.getprevious()
        if prev is None:
            return False
        if prev.tag not in {"a", "button", "span", "h2", "h3", "h4", "em", "strong", "b", "p", "div", "dt", "i"}:
            return False
        parent = el.getparent()
        is_control = (
            prev.tag in ("a", "button")
            or any(name.startswith("on") for name in prev.attrib)
            or _NAV_CLASS.search(f"{prev.get('class') or ''} {parent.get('class') or '' if parent is not None else ''}")
        )
        if not is_control:
            return False
        style = prev.get("style") or ""
        if prev.get("hidden") is not None or _HIDDEN_STYLE.search(style):
            return False
        label = self._static_text(prev)
        if len(label) > _TRIGGER_MAX_CHARS:
            return False
        if not label and not (
            prev.get("onclick") or prev.get("onmouseover") or _ICON_TRIGGER.search(prev.get("class") or "")
        ):
            return False
        return parent is not None and parent.tag in {"li", "dd", "dl", "div", "td", "span"}

    @property
    def redirect_url(self) -> str | None:
        """Target of a meta refresh or a script redirect (``location.href = '...'``), absolute."""
        if "redirect" not in self._cache:
            target = None
            for meta in self.tree.iter("meta"):
                if (meta.get("http-equiv") or "").lower() == "refresh":
                    m = _REFRESH_URL.search(meta.get("content") or "")
                    if m:
                        target = m.group(1).strip("'\" ")
                        break
            if target is None:
                for script in self.tree.iter("script"):
                    m = _SCRIPT_REDIRECT.search(script.text or "")
                    if m:
                        target = m.group(1)
                        break
            self._cache["redirect"] = self.absolute(target) if target else None
        return self._cache["redirect"]

    @property
    def is_stub(self) -> bool:
        """Almost nothing visible (a redirect or script shell): absent findings say little."""
        if "stub" not in self._cache:
            self._cache["stub"] = len(self.links()) < 3 and len(self.visible_text(self.body)) < STUB_MAX_CHARS
        return self._cache["stub"]

    @staticmethod
    def _static_text(el) -> str:
        """Text of an element without script/style content (visibility is not known yet here)."""
        return normalize_space("".join(_STATIC_TEXT(el)))

    def is_visible(self, el) -> bool:
        return el.tag.__class__ is str and el not in self.hidden_elements()

    # ------------------------------------------------------------------ text
    def text_walk(self) -> tuple[str, dict]:
        """The visible text of the body in one walk: (stream, {element: (start, end, own text)}).

        ``stream[start:end]`` is an element's ``raw_text``; every visible body element has an
        entry. Built once per page, when a detector needs the text of many elements.
        """
        walk = self._cache.get("walk")
        if walk is not None:
            return walk
        hidden = self.hidden_elements()
        pieces: list[str] = []
        emit = pieces.append
        spans: dict = {}
        block = _BLOCK_TAGS

        def visit(el, n: int) -> int:
            start = n
            text = el.text
            if text:
                emit(text)
                n += len(text)
                own = [text]
            else:
                own = []
            for child in el:
                tag = child.tag
                if tag.__class__ is str:
                    if child not in hidden:
                        n = visit(child, n)
                    if tag in block:  # even when hidden: the block still ends there
                        emit(" ")
                        n += 1
                tail = child.tail
                if tail:
                    emit(tail)
                    n += len(tail)
                    own.append(tail)
            spans[el] = (start, n, "".join(own))
            return n

        body = self.body
        if body not in hidden:
            visit(body, 0)
        walk = self._cache["walk"] = ("".join(pieces), spans)
        return walk

    def raw_text(self, el) -> str:
        """Visible text of an element with original spacing (tags joined without spaces)."""
        walk = self._cache.get("walk")
        if walk is not None:
            span = walk[1].get(el)
            if span is not None:
                return walk[0][span[0]:span[1]]
        raw = self._cache.setdefault("raw", {})
        cached = raw.get(el)
        if cached is not None:
            return cached
        if not self.is_visible(el):
            raw[el] = ""
            return ""
        parts: list[str] = [el.text or ""]
        for child in el:
            if isinstance(child.tag, str):
                parts.append(self.raw_text(child))
                if child.tag in _BLOCK_TAGS:
                    parts.append(" ")
            parts.append(child.tail or "")
        text = raw[el] = "".join(parts)
        return text

    def longer_than(self, limit: int) -> set:
        """Visible body elements whose visible text is longer than ``limit`` characters.

        Bottom-up: an element with a long child is long (its text contains the child's), and an
        element whose raw text is short is short, so only the others' text is normalised.
        """
        key = ("long", limit)
        found = self._cache.get(key)
        if found is not None:
            return found
        found = set()
        spans = self.text_walk()[1]
        visible_text = self.visible_text
        for el in reversed(self.visible_list()):  # descendants before their ancestors
            start, end, _own = spans[el]
            if end - start <= limit:
                continue
            for child in el:
                if child in found:
                    found.add(el)
                    break
            else:
                if len(visible_text(el)) > limit:
                    found.add(el)
        self._cache[key] = found
        return found

    def visible_text(self, el) -> str:
        cache = self._cache.setdefault("ntext", {})
        text = cache.get(el)
        if text is None:
            text = cache[el] = normalize_space(self.raw_text(el))
        return text

    def label_of(self, el) -> str:
        """What a visitor reads for a link or control: its text, else image alt/title, else its title."""
        cache = self._cache.setdefault("labels", {})
        label = cache.get(el)
        if label is None:
            label = cache[el] = self._label_of(el)
        return label

    def labels_of(self, elements: list) -> list[str]:
        """``label_of`` of many elements; the text of those without child nodes is normalised
        in one regex call for all of them."""
        labels = self._cache.setdefault("labels", {})
        plain = [el for el in elements if el not in labels and not len(el)]
        if plain:
            ntext = self._cache.setdefault("ntext", {})
            hidden = self.hidden_elements()
            raws = ["" if el in hidden else el.text or "" for el in plain]  # raw_text of a childless element
            for el, text in zip(plain, _WS.sub(" ", _SEPARATOR.join(raws)).split(_SEPARATOR)):
                text = ntext[el] = text.strip()
                if text:
                    labels[el] = text
        label_of = self.label_of
        return [labels.get(el) or label_of(el) for el in elements]

    def _label_of(self, el) -> str:
        text = self.visible_text(el)
        if text:
            return text
        for img in el.iter("img", "input"):
            if self.is_visible(img):
                alt = normalize_space(
                    img.get("alt") or img.get("title") or img.get("placeholder") or img.get("value") or ""
                )
                if alt:
                    return alt
        return normalize_space(el.get("title") or el.get("alt") or el.get("aria-label") or "")

    @property
    def body(self):
        body = self.tree.find("body")
        return body if body is not None else self.tree

    # ------------------------------------------------------------------ elements
    def visible_list(self) -> list:
        """Visible elements of the body in document order (built once per page)."""
        every = self._cache.get("visible")
        if every is None:
            hidden = self.hidden_elements()
            every = self._cache["visible"] = [el for el in self.body.iter(etree.Element) if el not in hidden]
        return every

    def visible_elements(self, *tags: str) -> Iterator:
        """Visible elements of the body in document order, optionally only those of some tags."""
        if not tags:
            return iter(self.visible_list())
        every = self._cache.get("visible")
        if every is not None:
            wanted = frozenset(tags)
            return (el for el in every if el.tag in wanted)
        hidden = self.hidden_elements()
        return (el for el in self.body.iter(*tags) if el not in hidden)

    def own_text(self, el) -> str:
        """Text directly inside the element (its text and its children's tails), not the children's."""
        walk = self._cache.get("walk")
        if walk is not None:
            span = walk[1].get(el)
            if span is not None:
                return span[2]
        cache = self._cache.setdefault("own", {})
        text = cache.get(el)
        if text is None:
            text = cache[el] = (el.text or "") + "".join(child.tail or "" for child in el)
        return text

    def links(self) -> list:
        """Visible ``<a>``/``<area>`` elements in document order (script links included: a
        ``javascript:`` link is still an entry a visitor clicks; its ``href`` resolves to None)."""
        if "links" not in self._cache:
            self._cache["links"] = list(self.visible_elements("a", "area"))
        return self._cache["links"]

    def controls(self) -> list:
        """Everything a visitor can click: visible links plus buttons and script-driven controls."""
        if "controls" not in self._cache:
            self._cache["controls"] = self.links() + self.other_controls()
        return self._cache["controls"]

    def other_controls(self) -> list:
        """The controls that are not links (buttons, inputs, ``onclick`` / ``role`` elements), in
        document order, leaving out those inside a visible link."""
        if "other_controls" not in self._cache:
            links = set(self.links())
            hidden = self.hidden_elements()
            out = []
            for el in _CONTROL_CANDIDATES(self.body):
                if el in hidden or el in links:
                    continue
                tag = el.tag
                kind = (el.get("type") or "").lower()
                clickable = (
                    tag == "button"
                    or (tag == "input" and kind in ("button", "submit", "image"))
                    or el.get("onclick") is not None
                    or el.get("role") in ("button", "link", "tab", "menuitem")
                )
                if clickable and not any(a in links for a in el.iterancestors("a")):
                    out.append(el)
            self._cache["other_controls"] = out
        return self._cache["other_controls"]

    def absolute(self, href: str | None) -> str | None:
        """Absolute URL for a link target; ``None`` for script/mailto pseudo links."""
        if not href:
            return None
        cache = self._cache.setdefault("hrefs", {})
        if href in cache:
            return cache[href]
        target = href.strip()
        low = target.lower()
        if low.startswith(("javascript:", "mailto:", "tel:", "#", "data:")):
            resolved = None
        else:
            resolved = self._plain_join(target)
            if resolved is None:
                try:
                    resolved = urljoin(self.base_url, target)
                except ValueError:
                    resolved = None
        cache[href] = resolved
        return resolved

    def _plain_join(self, target: str) -> str | None:
        """``urljoin(base_url, target)`` for the plain shapes where it is a concatenation, else None.

        Plain: no whitespace, control characters, ``;`` parameters or empty ``?`` / ``#``; an
        ``http(s)://`` URL with an ASCII host stays as it is; a rooted path (``/a/b.html``) or a
        relative one (``a/b.html``, no ``:``) without ``.``/``..`` (or, relative, empty) segments
        is appended to the base's origin or directory. Everything else goes through ``urljoin``.
        """
        m = _PLAIN_HREF.fullmatch(target)
        if m is None:
            return None
        if m.group("origin"):
            return target
        joins = self._cache.get("joins")
        if joins is None:
            joins = self._cache["joins"] = self._join_prefixes()
        if joins is None:
            return None
        origin, directory = joins
        path = m.group("path")
        if not path:
            return None  # "?page=2" keeps the base's own path
        segments = path.split("/")
        if path.startswith("/"):
            if path.startswith("//") or "." in segments or ".." in segments:
                return None
            return origin + target
        if ":" in path or any(seg in ("", ".", "..") for seg in segments[:-1]) or segments[-1] in (".", ".."):
            return None
        return directory + target

    def _join_prefixes(self) -> tuple[str, str] | None:
        """(origin, directory) of the base URL as ``urljoin`` resolves against them."""
        try:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                return None
            probe = urljoin(self.base_url, "x")
        except ValueError:
            return None
        if not probe.endswith("x"):
            return None
        return f"{parts.scheme}://{parts.netloc}", probe[:-1]

    @property
    def base_url(self) -> str:
        if "base" not in self._cache:
            base = self.tree.find(".//base[@href]")
            self._cache["base"] = urljoin(self.url, base.get("href").strip()) if base is not None else self.url
        return self._cache["base"]

    def locator(self, el) -> str:
        """A CSS selector matching exactly this element (unique id, else a nth-of-type path).

        The path of an element is its parent's locator plus one step, so paths are built once
        per ancestor and the sibling positions once per parent.
        """
        if not isinstance(el.tag, str):
            return ""
        cache = self._cache.setdefault("locators", {})
        found = cache.get(el)
        if found is not None:
            return found
        chain = []
        node = el
        while node is not None and node not in cache:
            chain.append(node)
            ident = node.get("id")
            if ident and _SIMPLE_IDENT.match(ident) and len(self._ids().get(ident, ())) == 1:
                break  # "#id" needs no parent
            node = node.getparent()
        for node in reversed(chain):
            cache[node] = self._locator_step(node, cache)
        found = cache[el]
        if found.startswith("html:nth-of-type"):
            head, sep, rest = found.partition(" > ")
            found = "html" + sep + rest
        return found

    def _locator_step(self, node, cache: dict) -> str:
        ident = node.get("id")
        if ident and _SIMPLE_IDENT.match(ident) and len(self._ids().get(ident, ())) == 1:
            return f"#{ident}"
        parent = node.getparent()
        tag = node.tag.lower()
        if parent is None:
            return tag if _SIMPLE_IDENT.match(tag) else "*"
        if tag in ("body", "head") and parent.getparent() is None:
            step = tag
        elif _SIMPLE_IDENT.match(tag):
            step = f"{tag}:nth-of-type({self._sibling_positions(parent)[node][0]})"
        else:
            step = f"*:nth-child({self._sibling_positions(parent)[node][1]})"
        return f"{cache[parent]} > {step}"

    def _sibling_positions(self, parent) -> dict:
        """child -> (position among siblings of its tag, position among element siblings), 1-based."""
        cache = self._cache.setdefault("siblings", {})
        positions = cache.get(parent)
        if positions is None:
            positions = cache[parent] = {}
            by_tag: dict = {}
            elements = 0
            for child in parent:
                by_tag[child.tag] = by_tag.get(child.tag, 0) + 1
                if isinstance(child.tag, str):
                    elements += 1
                positions[child] = (by_tag[child.tag], elements)
        return positions

    def _ids(self) -> dict:
        if "ids" not in self._cache:
            ids: dict[str, list] = {}
            for value in _ID_ATTRS(self.tree):  # document order, like iterating the tree
                if value:
                    ids.setdefault(str(value), []).append(value.getparent())
            self._cache["ids"] = ids
        return self._cache["ids"]
