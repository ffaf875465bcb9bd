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
_REFRESH_URL = re.compile(r"url\s*=\s*(\S+)", re.I)
_SCRIPT_REDIRECT = re.compile(
    r"(?:window\.|top\.|self\.|document\.)*location(?:\.href)?\s*(?:=|\.replace\(|\.assign\()\s*['\"]([^'\"]+)['\"]"
)
STUB_MAX_CHARS = 30
_QUOTED_ID = re.compile(r"['\"]#?([A-Za-z][\w-]*)['\"]")
_WS = re.compile(r"[\s\u00a0\u3000\u200b\ufeff]+")
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
_STATE_CLASSES = frozenset({"on", "active", "cur", "current", "hover", "show", "hide", "hidden", "dn", "selected", "sel"})
# A hover menu's trigger is a short label: a nav item, not a paragraph.
_TRIGGER_MAX_CHARS = 12
# An icon without text (magnifier, QR, menu) also opens a panel when it is styled as a control.
_NAV_CLASS = re.compile(r"nav|menu|drop|tab|has-sub|sub", re.I)
_ICON_TRIGGER = re.compile(r"search|icon|btn|ewm|qr|code|wx|wb|menu|drop|toggle", re.I)


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
    """One captured page: URL, source kind, decoded text and the lxml tree (parsed once)."""

    url: str
    kind: str
    encoding: str
    text: str
    tree: lxml.html.HtmlElement
    _hidden: dict = field(default_factory=dict, repr=False)
    _vtext: dict = field(default_factory=dict, repr=False)
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
        cleaned = re.sub(r"^\s*<\?xml[^>]*\?>", "", cleaned)
        # libxml2 stops at a stray </html> or </body>; browsers keep rendering what follows.
        cleaned = _EARLY_CLOSE.sub("", cleaned)
        try:
            tree = lxml.html.document_fromstring(cleaned)
        except (etree.ParserError, ValueError):
            tree = lxml.html.document_fromstring("<html><body></body></html>")
        page = cls(url=url, kind=kind, encoding=encoding, text=text, tree=tree)
        page._compute_visibility()
        return page

    # ------------------------------------------------------------------ visibility
    def _compute_visibility(self) -> None:
        hidden = self._hidden
        self._triggered = self._referenced_ids()
        for el in self.tree.iter():
            if not isinstance(el.tag, str):
                continue
            parent = el.getparent()
            if parent is not None and hidden.get(parent, False):
                hidden[el] = True
                continue
            hidden[el] = self._self_hidden(el)

    def _self_hidden(self, el) -> bool:
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        if tag in NEVER_VISIBLE_TAGS:
            return True
        if tag == "input" and (el.get("type") or "").lower() == "hidden":
            return True
        classes = (el.get("class") or "").split()
        if "ng-hide" in classes:
            return True
        inline_hidden = el.get("hidden") is not None or bool(_HIDDEN_STYLE.search(el.get("style") or ""))
        if not inline_hidden:
            return False
        if el.get("id") and el.get("id") in self._triggered:
            return False  # a control elsewhere opens it (onmouseover="showMenu('m3')", aria-controls, #tab2)
        return not (self._is_tab_panel(el) or self._is_hover_menu(el))

    def _referenced_ids(self) -> frozenset[str]:
        """Ids that controls name in event handlers, ``aria-controls``, ``data-target`` or ``href="#id"``.

        Controls that are themselves hidden inline are ignored (they open nothing a visitor sees).
        """
        ids: set[str] = set()
        for el in self.tree.iter():
            if not isinstance(el.tag, str) or el.tag in NEVER_VISIBLE_TAGS:
                continue
            if el.get("hidden") is not None or _HIDDEN_STYLE.search(el.get("style") or ""):
                continue
            for name, value in el.attrib.items():
                if name.startswith("on"):
                    ids.update(_QUOTED_ID.findall(value))
                elif name in ("aria-controls", "data-target", "data-bs-target") or (name == "href" and value.startswith("#")):
                    ids.update(v.lstrip("#") for v in value.split())
        return frozenset(ids)

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

    @staticmethod
    def _has_tab_control(container) -> bool:
        """A tab header near a panel group: an element marked as tab or switching on hover/click."""
        for scope in (container, container.getparent()):
            if scope is None:
                continue
            for el in scope.iter():
                if not isinstance(el.tag, str):
                    continue
                marker = f"{el.get('class') or ''} {el.get('id') or ''} {el.get('role') or ''}".lower()
                if "tab" in marker or el.get("onmouseover") or el.get("onmouseenter"):
                    return True
        return False

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
        return normalize_space(
            "".join(el.xpath(".//text()[not(ancestor::script) and not(ancestor::style)]"))
        )

    def is_visible(self, el) -> bool:
        return not self._hidden.get(el, True)

    # ------------------------------------------------------------------ text
    def raw_text(self, el) -> str:
        """Visible text of an element with original spacing (tags joined without spaces)."""
        cached = self._vtext.get(el)
        if cached is not None:
            return cached
        if self._hidden.get(el, True):
            self._vtext[el] = ""
            return ""
        parts: list[str] = [el.text or ""]
        for child in el:
            if isinstance(child.tag, str):
                parts.append(self.raw_text(child))
                if child.tag in _BLOCK_TAGS:
                    parts.append(" ")
            parts.append(child.tail or "")
        text = "".join(parts)
        self._vtext[el] = text
        return text

    def longer_than(self, limit: int) -> set:
        """Visible body elements whose visible text is longer than ``limit`` characters.

        Built bottom-up: an element with a long child is long (its text contains the child's),
        so the text of large blocks is never put together just to learn that it is long. The
        raw text of every other element is cached on the way.
        """
        key = ("long", limit)
        found = self._cache.get(key)
        if found is not None:
            return found
        found = set()
        raw = self._vtext
        get = raw.get
        visible_text = self.visible_text
        for el in reversed(list(self.visible_elements())):  # descendants before their ancestors
            cached = get(el)
            if cached is None:
                parts = [el.text or ""]
                for child in el:
                    tag = child.tag
                    if tag.__class__ is str:
                        if child in found:
                            break
                        # every visible child was done before its parent; a hidden one shows nothing
                        parts.append(get(child, ""))
                        if tag in _BLOCK_TAGS:
                            parts.append(" ")
                    parts.append(child.tail or "")
                else:
                    cached = raw[el] = "".join(parts)
                if cached is None:
                    found.add(el)
                    continue
            if len(cached) > limit and len(visible_text(el)) > limit:
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
    def visible_elements(self, *tags: str) -> Iterator:
        """Visible elements of the body in document order (the list is built once per page)."""
        every = self._cache.get("visible")
        if every is None:
            every = self._cache["visible"] = [
                el for el in self.body.iter() if isinstance(el.tag, str) and not self._hidden.get(el, True)
            ]
        if not tags:
            return iter(every)
        wanted = frozenset(tags)
        return (el for el in every if el.tag in wanted)

    def own_text(self, el) -> str:
        """Text directly inside the element (its text and its children's tails), not the children's."""
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
            seen = set(self.links())
            out = list(self.links())
            for el in self.visible_elements():
                if el in seen:
                    continue
                tag = el.tag
                kind = (el.get("type") or "").lower()
                clickable = (
                    tag == "button"
                    or (tag == "input" and kind in ("button", "submit", "image"))
                    or el.get("onclick") is not None
                    or el.get("role") in ("button", "link", "tab", "menuitem")
                )
                if clickable and not any(a in seen for a in el.iterancestors("a")):
                    out.append(el)
            self._cache["controls"] = out
        return self._cache["controls"]

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
            for el in self.tree.xpath("//*[@id]"):  # document order, like iterating the tree
                ident = el.get("id")
                if ident:
                    ids.setdefault(ident, []).append(el)
            self._cache["ids"] = ids
        return self._cache["ids"]
