"""The indicator catalogue: loaded from ``catalogue.yaml`` and validated on load.

Each entry names a detector from the registry (``evidence.detectors.DETECTORS``) and gives
that detector its rules. A new indicator of an existing evidence type is a YAML entry only.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vocabulary import SOURCE_KINDS

CATALOGUE_PATH = Path(__file__).with_name("catalogue.yaml")


class CatalogueError(ValueError):
    """The catalogue file is malformed; the message names the entry and the problem."""


def _check_regex(patterns: list[str], where: str) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"bad regex in {where}: {pattern!r} ({exc})") from None
    return patterns


class Rules(BaseModel):
    """Detection rules. All patterns are Python regexes, searched case-insensitively."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    link_texts: list[str] = Field(default_factory=list, description="match a link's visible text / alt / title")
    url_patterns: list[str] = Field(default_factory=list, description="match a link's absolute target")
    text_patterns: list[str] = Field(default_factory=list, description="match short non-link text (captions, headings, tabs)")
    exclude_texts: list[str] = Field(default_factory=list, description="a matching label disqualifies the element")
    exclude_urls: list[str] = Field(default_factory=list, description="a matching target disqualifies the link")
    exclude_contexts: list[str] = Field(
        default_factory=list, description="a matching id/class on an ancestor disqualifies (share widgets, ...)"
    )
    exclude_context_texts: list[str] = Field(
        default_factory=list, description="the nearest ancestors' text matching one disqualifies (分享到 ...)"
    )
    context_texts: list[str] = Field(
        default_factory=list, description="the nearest ancestors' text must match one (e.g. a rating next to a reply)"
    )
    labels: list[str] = Field(default_factory=list, description="keywords that introduce a value or a block")
    value_regex: str | None = Field(default=None, description="regex reading the value; group 'value' if present")
    max_text_len: int = Field(default=16, ge=1, description="longer labels are headlines, not entries")
    allow_dated: bool = Field(default=False, description="accept links inside dated list items")
    message_form: bool = Field(
        default=False, description="a visible form with a text area and a submit control counts as evidence"
    )
    same_site: bool = Field(default=True, description="for source discovery: accept links to the page's own host")
    min_items: int = Field(default=1, ge=1, description="list/count detectors: minimum items for present")
    source_kind: str | None = Field(default=None, description="kind of evaluation source this entry links to")

    @field_validator(
        "link_texts", "url_patterns", "text_patterns", "exclude_texts", "exclude_urls",
        "exclude_contexts", "exclude_context_texts", "context_texts", "labels",
    )
    @classmethod
    def _regexes(cls, value: list[str], info) -> list[str]:
        return _check_regex(value, info.field_name)

    @field_validator("value_regex")
    @classmethod
    def _value_regex(cls, value: str | None) -> str | None:
        if value is not None:
            _check_regex([value], "value_regex")
        return value

    @field_validator("source_kind")
    @classmethod
    def _source_kind(cls, value: str | None) -> str | None:
        if value is not None and value not in SOURCE_KINDS:
            raise ValueError(f"unknown source_kind {value!r}; expected one of {', '.join(SOURCE_KINDS)}")
        return value


class Indicator(BaseModel):
    """One catalogue entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z]+\.[a-z_]+$")
    name: str
    definition: str = Field(min_length=20)
    kinds: tuple[str, ...]
    evidence: Literal["presence", "value", "date", "count", "list"]
    detector: str
    version: int = Field(ge=1)
    crawler_only: bool = False
    rules: Rules = Field(default_factory=Rules)

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in value if k not in SOURCE_KINDS]
        if unknown:
            raise ValueError(f"unknown source kind(s) {unknown}; expected {', '.join(SOURCE_KINDS)}")
        if not value:
            raise ValueError("kinds must not be empty")
        return value

    @model_validator(mode="after")
    def _detector_known(self) -> "Indicator":
        from .detectors import DETECTORS

        if self.detector not in DETECTORS:
            raise ValueError(f"unknown detector {self.detector!r}; registered: {', '.join(sorted(DETECTORS))}")
        if self.crawler_only != (self.detector == "crawler"):
            raise ValueError("crawler_only: true goes with detector: crawler (and only with it)")
        return self


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    indicators: tuple[Indicator, ...]

    def get(self, indicator_id: str) -> Indicator:
        for indicator in self.indicators:
            if indicator.id == indicator_id:
                return indicator
        raise KeyError(indicator_id)

    def for_kind(self, kind: str) -> list[Indicator]:
        if kind not in SOURCE_KINDS:
            raise ValueError(f"unknown source kind {kind!r}; expected one of {', '.join(SOURCE_KINDS)}")
        return [i for i in self.indicators if kind in i.kinds]


def parse_catalogue(data: object, *, origin: str = "<catalogue>") -> Catalogue:
    """Validate catalogue data (as loaded from YAML); raise CatalogueError with a clear message."""
    if not isinstance(data, dict) or "indicators" not in data:
        raise CatalogueError(f"{origin}: expected a mapping with 'version' and 'indicators'")
    entries = data.get("indicators") or []
    seen: set[str] = set()
    for position, entry in enumerate(entries):
        ident = entry.get("id") if isinstance(entry, dict) else None
        if ident in seen:
            raise CatalogueError(f"{origin}: duplicate indicator id {ident!r} (entry #{position + 1})")
        seen.add(ident)
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = err["loc"]
            label = ".".join(str(p) for p in loc)
            if len(loc) >= 2 and loc[0] == "indicators" and isinstance(loc[1], int) and loc[1] < len(entries):
                entry = entries[loc[1]]
                ident = entry.get("id") if isinstance(entry, dict) else None
                label = f"indicator {ident!r}: " + ".".join(str(p) for p in loc[2:])
            problems.append(f"{label}: {err['msg']}")
        raise CatalogueError(f"{origin}: invalid catalogue:\n  " + "\n  ".join(problems)) from None


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Load and validate a catalogue file (default: the packaged ``catalogue.yaml``)."""
    if path is None:
        return _default_catalogue()
    return _load(Path(path))


def _load(path: Path) -> Catalogue:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path.name}: not valid YAML: {exc}") from None
    return parse_catalogue(data, origin=path.name)


@lru_cache(maxsize=1)
def _default_catalogue() -> Catalogue:
    return _load(CATALOGUE_PATH)


def indicators_for(kind: str) -> list[Indicator]:
    """Catalogue entries that apply to a source kind."""
    return load_catalogue().for_kind(kind)
