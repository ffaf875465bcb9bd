"""The spreadsheets of an evidence pack: column headings and CSV that Excel opens as text."""

from __future__ import annotations

import csv
import io
from typing import Any

FINDINGS_COLUMNS = [
    "编号", "范围", "依据的页面发现编号", "评估对象代码", "评估对象名称", "来源类型", "来源网址", "指标代码", "指标名称", "结论", "值",
    "页面网址", "链接目标", "元素定位", "证据摘录", "已检查内容", "详情", "检测器版本", "页面截图", "证据截图",
    "页面采集编号", "抓取时间（UTC）", "HTTP 状态", "抓取状态", "页面 SHA-256", "WARC 文件", "WARC 记录 ID",
    "WARC 偏移", "载荷 SHA-256",
]
RECORDS_COLUMNS = [
    "发现编号", "指标代码", "记录角色", "原 WARC 文件", "记录 ID", "偏移", "长度", "记录类型", "目标 URI",
    "WARC 日期", "载荷 SHA-256", "引用的原始记录 ID",
]


def excel_cell(value: Any) -> Any:
    """A cell Excel shows as text: page text starting like a formula gets a leading apostrophe.

    Text comes from the crawled sites; ``=HYPERLINK(...)`` in a snippet must not become a live
    formula in a reviewer's spreadsheet. findings.json keeps every value unchanged.
    """
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def csv_bytes(columns: list[str], rows: list[list[Any]]) -> bytes:
    """UTF-8 CSV with a BOM (so Excel reads it as UTF-8), every cell through ``excel_cell``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([excel_cell(v) for v in row])
    return buffer.getvalue().encode("utf-8-sig")
