"""Result records: a per-indicator finding and a discovered evaluation source."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from vocabulary import ABSENT, PRESENT, UNKNOWN

# The verdicts are the vocabulary's (``vocabulary``); detectors never return UNKNOWN.
__all__ = ["ABSENT", "PRESENT", "UNKNOWN", "SNIPPET_MAX", "DiscoveredSource", "Finding", "clip"]

SNIPPET_MAX = 200


@dataclass(frozen=True)
class Finding:
    """What one detector concluded about one indicator on one page.

    ``present`` carries the evidence element (locator, snippet, href); ``absent`` carries
    ``checked``: which rules were tried over how many candidate elements.
    """

    indicator: str
    verdict: str
    value: str | None = None
    url: str | None = None
    href: str | None = None
    locator: str | None = None
    snippet: str | None = None
    checked: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    detector_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with every field (details deep-copied; ``asdict`` would walk every
        field for nested dataclasses there are none of, at thirty findings a page)."""
        return {name: copy.deepcopy(self.details) if name == "details" else getattr(self, name)
                for name in _FINDING_FIELDS}


_FINDING_FIELDS = tuple(f.name for f in fields(Finding))


@dataclass(frozen=True)
class DiscoveredSource:
    """A link on a page to another evaluation source of the same government."""

    kind: str
    url: str
    anchor_text: str
    locator: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clip(text: str | None, limit: int = SNIPPET_MAX) -> str | None:
    if text is None:
        return None
    return text[:limit]
