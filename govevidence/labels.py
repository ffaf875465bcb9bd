"""The Chinese names users read for the project's terms (``vocabulary``), in one place.

Every table is keyed by a tuple of ``vocabulary``; a test checks that each term has its
label. ``label`` falls back to the term itself, so a value stored before a term was named
still shows.
"""

from __future__ import annotations

from collections.abc import Mapping

LEVEL_NAMES = {"province": "省级", "city": "重点城市"}

KIND_NAMES = {
    "portal": "门户网站",
    "service": "政务服务平台",
    "opendata": "公共数据开放平台",
    "interaction": "互动交流平台",
    "department": "部门网站",
    "newmedia": "政务新媒体",
}

ORIGIN_NAMES = {"registry": "名录登记", "discovered": "页面发现"}

VERDICT_NAMES = {"present": "有", "absent": "无", "unknown": "无法判断"}

SCOPE_NAMES = {"page": "页面", "source": "来源汇总", "target": "对象汇总"}

DECISION_NAMES = {"confirmed": "确认", "rejected": "驳回", "needs_review": "待复核"}

RUN_STATUS_NAMES = {"running": "进行中", "finished": "已完成", "failed": "失败", "interrupted": "已中断"}

JUDGEMENT_STATUS_NAMES = {"running": "进行中", "finished": "已完成", "failed": "失败"}

# Capture statuses (``page_captures.error_status``).
STATUS_NAMES = {
    "ok": "正常",
    "blocked": "访问被拒绝",
    "http_error": "HTTP 错误",
    "server_error": "服务器错误",
    "not_html": "不是网页",
    "empty": "无内容",
    "not_modified": "未请求的 304 未修改",
    "refused_redirect": "未跟随的重定向",
    "unreadable": "内容无法读取",
    "truncated": "内容不完整",
    "challenge": "反爬虫验证",
    "timeout": "超时",
    "unreachable": "无法连接",
    "dns_error": "域名解析失败",
    "blocked_by_robots": "robots.txt 禁止抓取",
    "redirect_loop": "重定向循环",
    "too_large": "页面过大",
    "private_address": "内网地址，已拒绝",
    "browser_unavailable": "浏览器不可用",
    "error": "其他错误",
    "not_archived": "未存档",
    "archive_error": "存档无法读取",
    "judge_error": "判定出错",
}

RENDER_REASON_NAMES = {
    "source_marked": "来源标记为需浏览器渲染",
    "script_shell": "页面仅为脚本框架",
    "challenge": "反爬虫验证",
    "screenshot": "整页截图",
}

# What a WARC record cited by a finding is to it (evidence packs, records.csv).
ROLE_NAMES = {
    "capture": "页面记录",
    "revisit_original": "重复内容的原始记录",
    "request": "请求记录",
    "screenshot": "整页截图",
    "evidence_image": "证据截图",
}


def label(names: Mapping[str, str], term: str | None) -> str:
    """The Chinese name of a term, the term itself when it has none, "" for None."""
    if term is None:
        return ""
    return names.get(term, term)
