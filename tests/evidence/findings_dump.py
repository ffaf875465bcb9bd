#!/usr/bin/env python
"""Dump every finding of ``detect`` and every ``discover_sources`` result over a set of pages.

Proves that a change to the detectors leaves their findings unchanged: dump before, dump after,
compare. Pages: the project corpus (``tests/evidence/corpus``), the sandbox web
(``sandbox/sites/**/*.html``, placeholders left as they are) and, when present, the shared real
pages (``../shared/realpages``; never copied anywhere, only read).

Usage::

    python tests/evidence/findings_dump.py dump OUT.json           # all kinds, two dates
    python tests/evidence/findings_dump.py compare BEFORE.json AFTER.json
    python tests/evidence/findings_dump.py golden                  # check golden_findings.json
    python tests/evidence/findings_dump.py golden --write [--from-dump BEFORE.json]

The golden file holds, per corpus and sandbox page, digests of all findings (detected with kind
``portal``, to which every detectable indicator applies, and a fixed date) and of the discovered
sources, and the verdict letters; ``test_findings_golden.py`` compares it with what the detectors
give now. When findings change on purpose (and ``DETECTOR_VERSION`` is bumped), rewrite it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from evidence import SOURCE_KINDS, Page, detect, discover_sources, load_catalogue  # noqa: E402

CORPUS = HERE / "corpus"
SANDBOX = ROOT / "sandbox" / "sites"
REALPAGES = ROOT.parent / "shared" / "realpages"
GOLDEN = HERE / "golden_findings.json"
PAGE_KINDS = {"A": "portal", "B": "service", "C": "opendata", "D": "interaction", "E": "department"}
NOW = dt.date(2026, 11, 26)
EARLY_NOW = dt.date(2019, 6, 30)  # exercises the "not after now" bound of the date detector


def _sandbox_kind(site_dir: str) -> str:
    for kind in ("service", "opendata", "interaction", "newmedia"):
        if site_dir.endswith(kind):
            return kind
    return "department" if "-dept-" in site_dir else "portal"


def labelled_pages(corpus: Path, prefix: str) -> Iterator[tuple[str, str, bytes, str]]:
    entries = json.loads((corpus / "labels.json").read_text(encoding="utf-8"))
    for entry in entries:
        body = (corpus / entry["file"]).read_bytes()
        yield f"{prefix}/{entry['file']}", entry.get("source_url") or "http://localhost/", body, PAGE_KINDS[entry["page_kind"]]


def sandbox_pages() -> Iterator[tuple[str, str, bytes, str]]:
    for path in sorted(SANDBOX.rglob("*.html")):
        rel = path.relative_to(SANDBOX)
        site_dir = rel.parts[0]
        url = f"http://{site_dir}.sandbox.test/{'/'.join(rel.parts[1:])}"
        yield f"sandbox/{rel.as_posix()}", url, path.read_bytes(), _sandbox_kind(site_dir)


def all_pages(*, real: bool = True) -> Iterator[tuple[str, str, bytes, str]]:
    yield from labelled_pages(CORPUS, "corpus")
    yield from sandbox_pages()
    if real and (REALPAGES / "labels.json").is_file():
        yield from labelled_pages(REALPAGES, "realpages")


def _findings(page: Page, now: dt.date) -> list[dict]:
    return [f.to_dict() for f in detect(page, now=now)]


def dump_page(url: str, body: bytes, kind: str) -> dict:
    """Findings under the page's own kind and under every other kind, sources, an early date."""
    page = Page.from_bytes(url, body, kind=kind)
    out: dict = {"url": url, "kind": kind, "encoding": page.encoding, "page": hashlib.sha256(body).hexdigest()[:16], "by_kind": {}}
    for k in SOURCE_KINDS:
        page.kind = k
        out["by_kind"][k] = _findings(page, NOW)
    page.kind = "portal"
    out["early"] = _findings(page, EARLY_NOW)
    out["sources"] = [s.to_dict() for s in discover_sources(page)]
    return out


def dump(pages) -> dict:
    return {name: dump_page(url, body, kind) for name, url, body, kind in pages}


def _digest(obj, chars: int) -> str:
    data = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:chars]


def indicator_order() -> list[str]:
    return [i.id for i in load_catalogue().for_kind("portal") if not i.crawler_only]


_VERDICT_LETTERS = {"present": "P", "absent": "A"}


def golden_of(body: bytes, findings: list[dict], sources: list[dict]) -> dict:
    """One page's golden entry: digests of the page bytes, of every finding (all fields) and of
    the discovered sources, and the verdicts as letters in catalogue order (P present, A absent,
    - none)."""
    by_id = {f["indicator"]: f for f in findings}
    return {
        "page": hashlib.sha256(body).hexdigest()[:16],
        "findings": _digest(findings, 16),
        "sources": _digest(sources, 12),
        "verdicts": "".join(_VERDICT_LETTERS.get((by_id.get(i) or {}).get("verdict"), "-") for i in indicator_order()),
    }


def golden_entry(url: str, body: bytes, kind: str) -> dict:
    """Golden entry of a page detected with kind ``portal`` (every detectable indicator runs)."""
    page = Page.from_bytes(url, body, kind="portal")
    return golden_of(body, [f.to_dict() for f in detect(page, now=NOW)], [s.to_dict() for s in discover_sources(page)])


def golden_now() -> dict:
    return {
        "indicators": indicator_order(),
        "pages": {name: golden_entry(url, body, kind) for name, url, body, kind in all_pages(real=False)},
    }


def golden_from_dump(data: dict) -> dict:
    """The golden entries of the corpus and sandbox pages of a full dump (``dump`` command) made
    from the page files as they are now."""
    pages = {}
    for name, _url, body, _kind in all_pages(real=False):
        entry = data.get(name)
        if entry is not None and entry.get("page", hashlib.sha256(body).hexdigest()[:16]) == hashlib.sha256(body).hexdigest()[:16]:
            pages[name] = golden_of(body, entry["by_kind"]["portal"], entry["sources"])
    return {"indicators": indicator_order(), "pages": pages}


def compare(before: dict, after: dict, limit: int = 40) -> list[str]:
    """Human-readable differences (empty list: identical)."""
    diffs: list[str] = []
    for name in sorted(set(before) | set(after)):
        if name not in before or name not in after:
            diffs.append(f"{name}: only in {'after' if name in after else 'before'}")
            continue
        a, b = before[name], after[name]
        for key in ("url", "kind", "encoding", "sources"):
            if a.get(key) != b.get(key):
                diffs.append(f"{name}: {key} differs:\n  before {a.get(key)}\n  after  {b.get(key)}")
        sections = [(f"kind {k}", a["by_kind"].get(k), b["by_kind"].get(k)) for k in sorted(set(a["by_kind"]) | set(b["by_kind"]))]
        sections.append(("early date", a.get("early"), b.get("early")))
        for label, fa, fb in sections:
            if fa == fb:
                continue
            ia = {f["indicator"]: f for f in fa or []}
            ib = {f["indicator"]: f for f in fb or []}
            if list(ia) != list(ib):
                diffs.append(f"{name} [{label}]: indicator list differs: {list(ia)} vs {list(ib)}")
            for ident in ia.keys() & ib.keys():
                if ia[ident] != ib[ident]:
                    fields = [k for k in ia[ident] if ia[ident][k] != ib[ident].get(k)]
                    diffs.append(
                        f"{name} [{label}] {ident}: " + "; ".join(f"{k}: {ia[ident][k]!r} -> {ib[ident].get(k)!r}" for k in fields)
                    )
    return diffs[:limit] + ([f"... and {len(diffs) - limit} more"] if len(diffs) > limit else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_dump = sub.add_parser("dump", help="write every finding of every page to a JSON file")
    p_dump.add_argument("out", type=Path)
    p_dump.add_argument("--no-real", action="store_true", help="leave out the shared real pages")
    p_cmp = sub.add_parser("compare", help="compare two dumps")
    p_cmp.add_argument("before", type=Path)
    p_cmp.add_argument("after", type=Path)
    p_gold = sub.add_parser("golden", help="check (or --write) the golden digests of corpus and sandbox pages")
    p_gold.add_argument("--write", action="store_true")
    p_gold.add_argument("--from-dump", type=Path, help="with --write: take the findings from a full dump (e.g. of an earlier commit)")
    args = parser.parse_args(argv)
    if args.command == "dump":
        data = dump(all_pages(real=not args.no_real))
        args.out.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
        n = sum(len(v["by_kind"][k]) for v in data.values() for k in v["by_kind"])
        print(f"{len(data)} pages, {n} findings, {sum(len(v['sources']) for v in data.values())} sources -> {args.out}")
        return 0
    if args.command == "compare":
        before = json.loads(args.before.read_text(encoding="utf-8"))
        after = json.loads(args.after.read_text(encoding="utf-8"))
        diffs = compare(before, after)
        print("\n".join(diffs) if diffs else f"identical: {len(before)} pages")
        return 1 if diffs else 0
    if args.write and args.from_dump:
        current = golden_from_dump(json.loads(args.from_dump.read_text(encoding="utf-8")))
    else:
        current = golden_now()
    if args.write:
        GOLDEN.write_text(json.dumps(current, ensure_ascii=False, indent=0, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {GOLDEN} ({len(current['pages'])} pages)")
        return 0
    differing, changed = check_golden(json.loads(GOLDEN.read_text(encoding="utf-8")), current)
    for name in changed:
        print(f"{name}: page bytes changed since the golden file was written (not compared)")
    for name in differing:
        print(f"{name}: findings differ (verdicts now {current['pages'][name]['verdicts']})")
    print(f"{len(differing)} page(s) with different findings" if differing else f"golden digests match: {len(current['pages']) - len(changed)} pages")
    return 1 if differing else 0


def check_golden(stored: dict, current: dict) -> tuple[list[str], list[str]]:
    """(pages whose findings differ, pages whose bytes changed or that are new or gone)."""
    differing, changed = [], []
    for name in sorted(set(stored["pages"]) | set(current["pages"])):
        old, new = stored["pages"].get(name), current["pages"].get(name)
        if old is None or new is None or old["page"] != new["page"]:
            changed.append(name)
        elif old != new:
            differing.append(name)
    return differing, changed


if __name__ == "__main__":
    raise SystemExit(main())
