"""Exports of a crawl run: a WACZ web archive for replay, and a zip evidence pack per target.

``export_wacz`` packages the run's WARC files (plus whatever holds the originals of its
revisit records) with a page list, so ReplayWeb.page or pywb can open it. ``export_pack``
gathers what a reviewer needs to check one target's findings without the database. Both open
archived records by the pointers the database keeps. The code lives in ``govevidence.exports``;
this module keeps the names callers import.
"""

from __future__ import annotations

from govevidence.exports import ExportError, export_pack, export_wacz
from govevidence.exports.pack import SCOPE_ORDER
from govevidence.exports.sheets import FINDINGS_COLUMNS, RECORDS_COLUMNS
from govevidence.labels import KIND_NAMES, ROLE_NAMES, SCOPE_NAMES, STATUS_NAMES, VERDICT_NAMES

__all__ = [
    "ExportError", "FINDINGS_COLUMNS", "KIND_NAMES", "RECORDS_COLUMNS", "ROLE_NAMES", "SCOPE_NAMES", "SCOPE_ORDER",
    "STATUS_NAMES", "VERDICT_NAMES", "export_pack", "export_wacz",
]
