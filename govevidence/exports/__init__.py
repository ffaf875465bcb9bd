"""Exports of a crawl run, cut along their seams.

- ``records``: archived records opened by the pointers the database keeps, and copies of them;
- ``wacz``: the WACZ web archive of a run, for replay;
- ``pack``: the zip evidence pack of one target;
- ``sheets`` and ``readme``: the pack's spreadsheets and its README in Chinese.
"""

from govevidence.exports.pack import export_pack
from govevidence.exports.records import ExportError
from govevidence.exports.wacz import export_wacz

__all__ = ["ExportError", "export_pack", "export_wacz"]
