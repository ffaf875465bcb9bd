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
from collections import Counter
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
# A run of what ``normalize_space`` collapses.
WHITESPACE = _WS
_DIGITS = re.compile(r"\d+")
# ``http(s)://host[:port]`` followed by the path, query, fragment or the end: an ASCII host without
# user information or brackets, which ``urlsplit(url).hostname`` returns as it is (lower-cased).
_PLAIN_HOST = re.compile(r"https?://([A-Za-z0-9.\-_~%]*)(?::[0-9]*)?(?=[/?#]|$)")
# Link targets ``Page.absolute`` can resolve without ``urljoin`` (see ``Page._plain_join``).
_PLAIN_HREF = re.compile(
    r"(?P<origin>https?://[A-Za-z0-9.\-_~%:@]+(?=[/?#]|$))?"
    r"(?P<path>[^\x00-\x20\x7f\s?#;\\]*)(?:\?[^\x00-\x20\x7f\s#]+)?(?:#[^\x00-\x20\x7f\s]+)?"
)
# The first characters of the pseudo link targets ``Page.absolute`` resolves to None.
_PSEUDO_FIRST = frozenset("jJmMtTdD#")
# Elements whose end separates their text from what follows (``raw_text`` puts a space there).
_BLOCK_TAGS = frozenset({"br", "p", "div", "li", "tr", "td", "th", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6"})
_SIMPLE_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_STATE_CLASSES = frozenset({"on", "active", "cur", "current", "hover", "show", "hide", "hidden", "dn", "selected", "sel"})
# A hover menu's trigger is a short label: a nav item, not a paragraph.
_TRIGGER_MAX_CHARS = 12
# An icon without text (magnifier, QR, menu) also opens a panel when it is styled as a control.
_NAV_CLASS = re.compile(r"nav|menu|drop|tab|has-sub|sub", re.I)
_ICON_TRIGGER = re.compile(r"search|icon|btn|ewm|qr|code|wx|wb|menu|drop|toggle", re.I)
# Every ``id`` attribute value of a document, as plain strings.
_ID_VALUES = etree.XPath("//@id", smart_strings=False)


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
    _visibility: dict | None = field(default=None, repr=False)
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
        return cls(url=url, kind=kind, encoding=encoding, text=text, tree=tree)

    def _table(self, name: str) -> dict:
        """A per-page cache table (created on first use)."""
        table = self._cache.get(name)
        if table is None:
            table = self._cache[name] = {}
        return table

    # ------------------------------------------------------------------ visibility
    @property
    def _hidden(self) -> dict:
        """Element → whether a visitor cannot see it, for every element; worked out on first
        use: what the crawl asks of a page (its status, its links) needs only the tree."""
        if self._visibility is None:
            self._compute_visibility()
        return self._visibility

    def _compute_visibility(self) -> None:
        hidden = self._visibility = {}
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

    def _text_model(self) -> "_TextModel":
        """The document's visible text, normalized, with every visible element's span in it
        (built once per page, in one walk over the tree)."""
        model = self._cache.get("textmodel")
        if model is None:
            model = self._cache["textmodel"] = _TextModel(self.tree, self._hidden, self.body)
        return model

    def longer_than(self, limit: int) -> set:
        """Visible body elements whose visible text is longer than ``limit`` characters.

        Read from the spans of the text model: a span at most ``limit`` long is short, one
        more than two characters longer is long (normalizing strips at most a space at each
        end); only the spans in between are looked at.
        """
        key = ("long", limit)
        found = self._cache.get(key)
        if found is not None:
            return found
        model = self._text_model()
        spans = model.spans
        normalized = model.text
        found = set()
        for el in self.visible_elements():
            span = spans[el]
            start, end = span >> _SHIFT, span & _MASK
            size = end - start
            if size <= limit:
                continue
            if size > limit + 2 or len(normalized[start:end].strip()) > limit:
                found.add(el)
        self._cache[key] = found
        return found

    def visible_text(self, el) -> str:
        """``normalize_space(raw_text(el))``: the element's visible text, whitespace collapsed."""
        cache = self._cache.get("ntext")
        if cache is None:
            cache = self._cache["ntext"] = {}
        text = cache.get(el)
        if text is None:
            model = self._text_model()
            span = model.spans.get(el)
            if span is not None:
                text = model.text[span >> _SHIFT:span & _MASK].strip()
            else:
                text = normalize_space(self.raw_text(el))
            cache[el] = text
        return text

    def visible_texts(self, elements) -> list[str]:
        """``[visible_text(el) for el in elements]``, read from the text model in one loop."""
        model = self._text_model()
        spans, normalized = model.spans, model.text
        visible_text = self.visible_text
        out = []
        for el in elements:
            span = spans.get(el)
            out.append(normalized[span >> _SHIFT:span & _MASK].strip() if span is not None else visible_text(el))
        return out

    def label_of(self, el) -> str:
        """What a visitor reads for a link or control: its text, else image alt/title, else its title."""
        cache = self._cache.get("labels")
        if cache is None:
            cache = self._cache["labels"] = {}
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
        model = self._text_model()
        if not tags:
            return iter(model.body_elements)
        if len(tags) == 1:
            return iter(model.by_tag().get(tags[0], ()))
        wanted = frozenset(tags)
        return (el for el, tag in zip(model.body_elements, model.tags()) if tag in wanted)

    def own_text(self, el) -> str:
        """Text directly inside the element (its text and its children's tails), not the children's."""
        cache = self._table("own")
        text = cache.get(el)
        if text is None:
            text = cache[el] = (el.text or "") + "".join(child.tail or "" for child in el)
        return text

    def links(self) -> list:
        """Visible ``<a>``/``<area>`` elements in document order (script links included: a
        ``javascript:`` link is still an entry a visitor clicks; its ``href`` resolves to None)."""
        if "links" not in self._cache:
            by_tag = self._text_model().by_tag()
            anchors, areas = by_tag.get("a", []), by_tag.get("area", [])
            if areas:
                self._cache["links"] = list(self.visible_elements("a", "area"))
            else:
                self._cache["links"] = list(anchors)
        return self._cache["links"]

    def controls(self) -> list:
        """Everything a visitor can click: visible links plus buttons and script-driven controls."""
        if "controls" not in self._cache:
            links = self.links()
            seen = set(links)
            out = list(links)
            for el in self._text_model().clickable():
                if el not in seen and not any(a in seen for a in el.iterancestors("a")):
                    out.append(el)
            self._cache["controls"] = out
        return self._cache["controls"]

    def absolute(self, href: str | None) -> str | None:
        """Absolute URL for a link target; ``None`` for script/mailto pseudo links."""
        if not href:
            return None
        cache = self._cache.get("hrefs")
        if cache is None:
            cache = self._cache["hrefs"] = {}
        if href in cache:
            return cache[href]
        target = href.strip()
        if target[:1] in _PSEUDO_FIRST and target.lower().startswith(("javascript:", "mailto:", "tel:", "#", "data:")):
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
        relative one (``a/b.html``, no ``:``, also as ``./a/b.html``) without ``.``/``..`` (or,
        relative, empty) segments is appended to the base's origin or directory (after leading
        ``../`` segments, to the directory ``urljoin`` goes up to). Everything else goes through
        ``urljoin``.
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
        if segments[0] == "." and len(segments) > 1:  # "./a/b.html" is "a/b.html"
            segments = segments[1:]
            target = target[2:]
        if path.startswith("/"):
            if path.startswith("//") or "." in segments or ".." in segments:
                return None
            return origin + target
        if ":" in path:
            return None
        up = 0
        while up < len(segments) - 1 and segments[up] == "..":  # "../../a.html": from a directory above
            up += 1
        if up:
            segments = segments[up:]
            target = target[3 * up:]
            if not segments[0]:
                return None
            directory = self._directory_above(up)
            if directory is None:
                return None
        if any(seg in ("", ".", "..") for seg in segments[:-1]) or segments[-1] in (".", ".."):
            return None
        return directory + target

    def _directory_above(self, levels: int) -> str | None:
        """What ``urljoin`` resolves ``"../" * levels`` against the base URL to (as a prefix)."""
        cache = self._table("above")
        if levels not in cache:
            try:
                probe = urljoin(self.base_url, "../" * levels + "x")
            except ValueError:
                probe = ""
            cache[levels] = probe[:-1] if probe.endswith("x") else None
        return cache[levels]

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
        cache = self._table("locators")
        found = cache.get(el)
        if found is not None:
            return found
        chain = []
        node = el
        while node is not None and node not in cache:
            chain.append(node)
            ident = node.get("id")
            if ident and _SIMPLE_IDENT.match(ident) and self._ids().get(ident) == 1:
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
        if ident and _SIMPLE_IDENT.match(ident) and self._ids().get(ident) == 1:
            return f"#{ident}"
        parent = node.getparent()
        tag = node.tag.lower()
        if parent is None:
            return tag if _SIMPLE_IDENT.match(tag) else "*"
        if tag in ("body", "head") and parent.getparent() is None:
            step = tag
        elif _SIMPLE_IDENT.match(tag):
            step = f"{tag}:nth-of-type({self._sibling_position(node, node.tag)})"
        else:
            step = f"*:nth-child({self._sibling_position(node, etree.Element)})"
        return f"{cache[parent]} > {step}"

    @staticmethod
    def _sibling_position(node, kind) -> int:
        """1-based position of the node among its siblings of a tag (``etree.Element``: among
        its element siblings), counted over the siblings before it."""
        return sum(1 for _ in node.itersiblings(kind, preceding=True)) + 1

    def _ids(self) -> dict:
        """id value -> how many elements of the document carry it."""
        if "ids" not in self._cache:
            self._cache["ids"] = Counter(_ID_VALUES(self.tree))
        return self._cache["ids"]


# A span of the text model: start << SPAN_SHIFT | end.
SPAN_SHIFT = _SHIFT = 32
SPAN_MASK = _MASK = (1 << _SHIFT) - 1


class _TextModel:
    """Visible text of a document in one string, normalized as ``normalize_space`` does.

    Built in one walk over the visible elements: the text of an element, then each child's
    text (block children followed by a space, as ``Page.raw_text`` puts them), each child's
    tail. Every piece has its whitespace runs collapsed to one space, and a space is dropped
    where the text so far already ends with one, so ``text`` is the whole visible text with
    every whitespace run collapsed. ``spans[el]`` is the (start, end) of a visible element's
    text in it, as ``start << _SHIFT | end``: ``text[start:end].strip()`` equals
    ``normalize_space(page.raw_text(el))`` (a run cut at either end is only a space there,
    which the strip removes). ``owns[el]`` is the element's own text (its text and its
    children's tails, as ``Page.own_text``) with the whitespace runs of each of these pieces
    collapsed to a space, stripped: it holds exactly the keywords without whitespace that the own
    text holds, and every date the own text holds (``index.PageIndex.own_scan``). ``shown`` holds
    the elements whose own text is not only whitespace.
    ``body_elements`` lists the visible elements of ``body`` (itself included) in document order.
    """

    __slots__ = ("text", "spans", "owns", "shown", "body_elements", "_by_tag", "_tags", "_clickable")

    def __init__(self, root, hidden: dict, body):
        spans: dict = {}
        owns: dict = {}
        order: list = []
        out: list[str] = []
        append = out.append
        visit = order.append
        sub = _WS.sub
        blocks = _BLOCK_TAGS
        body_range = [0, 0]
        shown: set = set()
        shown_add = shown.add

        def walk(el, pos: int, space: bool) -> tuple[int, bool]:
            """Add the element's text; ``pos`` is the length of the text so far, ``space``
            whether it ends with a space. Returns both after the element."""
            start = pos
            visit(el)
            text = el.text
            if text:
                if text.isspace():
                    own = piece = " "
                else:  # printable text has no whitespace but spaces: only double spaces collapse
                    own = piece = text if text.isprintable() and "  " not in text else sub(" ", text)
                    shown_add(el)
                if space and piece[0] == " ":
                    piece = piece[1:]
                if piece:
                    append(piece)
                    pos += len(piece)
                    space = piece[-1] == " "
            else:
                own = ""
            for child in el:
                if not hidden.get(child, True):
                    if child is body:
                        body_range[0] = len(order)
                        pos, space = walk(child, pos, space)
                        body_range[1] = len(order)
                    else:
                        pos, space = walk(child, pos, space)
                if not space and child.tag in blocks:
                    append(" ")
                    pos += 1
                    space = True
                tail = child.tail
                if tail:
                    if tail.isspace():
                        piece = " "
                    else:
                        piece = tail if tail.isprintable() and "  " not in tail else sub(" ", tail)
                        shown_add(el)
                    own += piece
                    if space and piece[0] == " ":
                        piece = piece[1:]
                    if piece:
                        append(piece)
                        pos += len(piece)
                        space = piece[-1] == " "
            spans[el] = start << _SHIFT | pos
            owns[el] = own.strip()
            return pos, space

        if root.tag.__class__ is str and not hidden.get(root, True):
            if root is body:
                walk(root, 0, True)
                body_range[1] = len(order)
            else:
                walk(root, 0, True)
        self.text = "".join(out)
        self.spans = spans
        self.owns = owns
        self.shown = shown
        self.body_elements = order[body_range[0]:body_range[1]]
        self._by_tag: dict | None = None
        self._tags: list[str] | None = None
        self._clickable: list | None = None

    def by_tag(self) -> dict:
        """tag -> the visible body elements of that tag, in document order."""
        if self._by_tag is None:
            self._group()
        return self._by_tag

    def tags(self) -> list[str]:
        """The tag of every element of ``body_elements``."""
        if self._tags is None:
            self._group()
        return self._tags

    def clickable(self) -> list:
        """The visible body elements other than links that are clickable (``Page.controls``), in
        document order."""
        if self._clickable is None:
            self._group()
        return self._clickable

    def _group(self) -> None:
        """One pass over the visible body elements: by tag, their tags, the clickable ones."""
        groups: dict = {}
        tags: list[str] = []
        clickable: list = []
        add_tag = tags.append
        for el in self.body_elements:
            tag = el.tag
            add_tag(tag)
            group = groups.get(tag)
            if group is None:
                groups[tag] = [el]
            else:
                group.append(el)
            if tag == "button":
                clickable.append(el)
                continue
            if tag == "a" or tag == "area":  # a link, a control of its own
                continue
            attrib = el.attrib
            if not attrib:  # no type, onclick or role: not clickable
                continue
            if (
                (tag == "input" and (attrib.get("type") or "").lower() in ("button", "submit", "image"))
                or attrib.get("onclick") is not None
                or attrib.get("role") in ("button", "link", "tab", "menuitem")
            ):
                clickable.append(el)
        self._by_tag, self._tags, self._clickable = groups, tags, clickable
