"""The target registry: evaluated governments and their public channels, as data.

The registry is a YAML file (``govevidence/targets.yaml`` by default) validated
against a strict schema on load; errors name the offending entry.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_REGISTRY = Path(__file__).resolve().parent / "targets.yaml"

SourceKind = Literal["portal", "service", "opendata", "interaction", "department", "newmedia"]
SOURCE_KINDS: tuple[str, ...] = SourceKind.__args__  # type: ignore[attr-defined]
Level = Literal["province", "city"]

# 兵团 is evaluated alongside the provinces under this code.
BINGTUAN_CODE = "660000"


class RegistryError(ValueError):
    """The registry file is missing, unreadable or does not match the schema."""


class SourceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: SourceKind
    url: str
    name: str | None = None
    verified: bool = True
    render: bool = False
    obey_robots: bool = True
    note: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {value!r}")
        if not parts.path:
            raise ValueError(f"URL needs a path (at least '/'): {value!r}")
        return value


class TargetEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^\d{6}$")
    name: str = Field(min_length=2)
    level: Level
    parent: str | None = Field(default=None, pattern=r"^\d{6}$")
    sources: tuple[SourceEntry, ...]
    note: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "TargetEntry":
        if self.level == "province" and not self.code.endswith("0000"):
            raise ValueError(f"province-level code must end in 0000: {self.code}")
        if self.level == "city":
            if not self.code.endswith("00") or self.code.endswith("0000"):
                raise ValueError(f"city code must end in 00 but not 0000: {self.code}")
            if self.parent and self.parent[:2] != self.code[:2]:
                raise ValueError(f"parent {self.parent} is not the province of {self.code}")
        kinds = [s.kind for s in self.sources]
        if kinds.count("portal") != 1:
            raise ValueError(f"needs exactly one portal source, has {kinds.count('portal')}")
        urls = Counter(s.url for s in self.sources)
        repeated = [u for u, n in urls.items() if n > 1]
        if repeated:
            raise ValueError(f"repeated source URL {repeated[0]}")
        return self

    @property
    def portal(self) -> SourceEntry:
        return next(s for s in self.sources if s.kind == "portal")


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    targets: tuple[TargetEntry, ...]

    @model_validator(mode="after")
    def _unique_codes(self) -> "Registry":
        seen: set[str] = set()
        for index, target in enumerate(self.targets):
            if target.code in seen:
                raise ValueError(f"targets[{index}] ({target.code} {target.name}): duplicate code")
            seen.add(target.code)
        return self

    def select(self, codes: list[str] | None = None, level: str | None = None) -> list[TargetEntry]:
        """Targets filtered by division codes and/or level, in registry order."""
        wanted = set(codes or [])
        unknown = wanted - {t.code for t in self.targets}
        if unknown:
            raise RegistryError(f"unknown target code(s): {', '.join(sorted(unknown))}")
        return [
            t
            for t in self.targets
            if (not wanted or t.code in wanted) and (level is None or t.level == level)
        ]


def _describe(data: object, loc: tuple) -> str:
    """Turn a pydantic location into 'targets[3] (330100 杭州市): sources[0].url'."""
    parts: list[str] = []
    node = data
    for step in loc:
        if isinstance(step, int):
            parts[-1] = f"{parts[-1]}[{step}]" if parts else f"[{step}]"
            if isinstance(node, list) and 0 <= step < len(node):
                node = node[step]
                if isinstance(node, dict) and "code" in node and len(parts) == 1:
                    parts[-1] += f" ({node.get('code')} {node.get('name', '')})".rstrip()
            continue
        parts.append(str(step))
        node = node.get(step) if isinstance(node, dict) else None
    return ".".join(parts) or "registry"


def parse_registry(data: object, origin: str = "registry") -> Registry:
    try:
        return Registry.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = _describe(data, tuple(error["loc"]))
            message = re.sub(r"^Value error, ", "", error["msg"])
            lines.append(f"{where}: {message}")
        raise RegistryError(f"{origin} is not a valid registry:\n  " + "\n  ".join(lines)) from None


def load_registry(path: str | Path | None = None) -> Registry:
    """Load and validate a registry file (the bundled one by default)."""
    file = Path(path) if path else DEFAULT_REGISTRY
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"cannot read registry {file}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegistryError(f"{file} is not valid YAML: {exc}") from None
    return parse_registry(data, origin=str(file))
