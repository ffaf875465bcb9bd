"""The README (in Chinese) of an evidence pack: what each file is, what the verdicts mean, how
to check the hashes and open the WARC."""

from __future__ import annotations

import datetime as dt
import unicodedata

import govevidence
from db.models import CrawlRun, Target
from govevidence.exports.records import iso
from govevidence.labels import SCOPE_NAMES, VERDICT_NAMES


def _padded(text: str, width: int) -> str:
    """``text`` followed by spaces up to ``width`` columns of a fixed-width font (CJK: two each)."""
    used = sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)
    return text + " " * max(2, width - used)


def pack_readme(run: CrawlRun, target: Target, n_findings: int, n_records: int, has_manifest: bool,
                missing: list[str], exported_at: dt.datetime) -> str:
    """README.txt of a pack; ``missing`` names the pictures that could not be put in it."""
    lines = [
        f"GovEvidence 证据包：{target.name}（{target.code}），抓取运行 {run.id}",
        "=" * 40,
        "",
        f"抓取运行：{run.id}（爬虫 {run.spider}），开始于 {iso(run.started_at)}，结束于 {iso(run.finished_at) or '（未结束）'}",
        f"导出时间：{exported_at.isoformat()}，GovEvidence {govevidence.__version__}",
        "（本包中的时间均为协调世界时 UTC，北京时间 = UTC + 8 小时。）",
        f"本包含有 {n_findings} 条发现，引用 {n_records} 条 WARC 记录。",
        "",
        "一、文件说明",
        "  README.txt        本说明。",
        "  SHA256SUMS        本包内其他每个文件的 SHA-256 哈希值（SHA256SUMS 本身除外）。",
        "  findings.csv      全部发现（对象汇总、来源汇总、页面），UTF-8 编码（带 BOM），可直接用 Excel 打开。"
        "以 = + - @ 开头的网页文字前加了一个英文单引号，防止被 Excel 当作公式；原文以 findings.json 为准。",
        "  findings.json     同样的发现，含页面抓取信息和每条发现引用的 WARC 记录，便于程序处理。",
        "  records.csv       每条发现引用的 WARC 记录在原始 WARC 文件中的位置：文件、记录 ID、偏移、长度、载荷 SHA-256。",
        "  evidence.warc.gz  上述记录的 WARC 文件（WARC/1.1，gzip 压缩）。每条记录是从原始 WARC 文件中按偏移和长度"
        "逐字节复制的 gzip 成员，未作任何改动；文件开头是本包的 warcinfo 记录和原始文件各自的 warcinfo 记录。",
        "  screenshots/      发现引用的截图：整页截图，以及用红框标出证据元素的局部截图（PNG）。"
        "每张截图也以 urn:screenshot: 开头的 resource 记录存于 evidence.warc.gz，记录的载荷 SHA-256 与截图文件的"
        " SHA-256 相同（文件名即该哈希的前 32 位）。",
    ]
    if has_manifest:
        lines.append("  manifest.json     本次抓取运行结束时写下的清单：运行中全部 WARC 文件、截图和发现文件的路径、大小和 SHA-256。"
                     "本包中截图的路径与清单中的路径一致，可据此与清单核对。")
    lines += [
        "",
        "二、结论的含义",
        f"  {_padded(VERDICT_NAMES['present'], 10)}在页面上找到了该指标要求的内容；“值”“证据摘录”“元素定位”给出"
        "找到的内容和位置，截图中以红框标出。",
        f"  {_padded(VERDICT_NAMES['absent'], 10)}页面可以访问并已检查，但没有找到该内容；“已检查内容”说明查找了"
        "哪些页面和内容。",
        f"  {_padded(VERDICT_NAMES['unknown'], 10)}未能查看该内容（网站无法访问、超时、被拒绝访问或 robots.txt "
        "禁止抓取等），不表示网站没有该内容。",
        f"  范围：“{SCOPE_NAMES['page']}”是单个页面上的结论；“{SCOPE_NAMES['source']}”是一个网站（门户网站、"
        f"政务服务平台等）上各页面结论的汇总；“{SCOPE_NAMES['target']}”是该评估对象全部来源的汇总，沿用所依据页面的证据。",
        "  汇总结论的“依据的页面发现编号”是它所依据的那条页面发现：“有”是找到该内容的页面，“无”是已检查的"
        "页面之一；汇总结论引用的 WARC 记录和截图即该页面发现的记录和截图。",
        "",
        "三、核对文件完整性",
        "  解压后进入本文件夹，核对每个文件的 SHA-256 与 SHA256SUMS 中的值一致：",
        "  Linux / macOS：",
        "      sha256sum -c SHA256SUMS",
        "    （macOS 也可用 shasum -a 256 -c SHA256SUMS）每个文件显示“OK”（中文环境为“成功”）即一致。",
        "  Windows（命令提示符，逐个文件）：",
        "      certutil -hashfile findings.csv SHA256",
        f"      certutil -hashfile screenshots\\run-{run.id:05d}\\（文件名）.png SHA256",
        "    将输出的哈希值与 SHA256SUMS 中对应的一行比较（不区分大小写；SHA256SUMS 中的路径用“/”分隔，"
        "在命令提示符中请改为“\\”）。",
        "  Windows（PowerShell，一次核对全部文件）：",
        "      Get-Content SHA256SUMS | ForEach-Object { $h, $f = $_ -split '  ', 2; "
        "if ((Get-FileHash -Algorithm SHA256 -LiteralPath $f).Hash -eq $h) { \"一致  $f\" } else { \"不一致  $f\" } }",
        "  在 WARC 文件内部，每条记录的 WARC-Payload-Digest / WARC-Block-Digest 也是 SHA-256（Base32 编码），"
        "records.csv 和 findings.json 中的“载荷 SHA-256”是同一哈希的十六进制形式。",
        "",
        "四、查看网页存档（WARC）",
        "  1. 用浏览器打开 https://replayweb.page/ ，选择“Choose File...”，选中 evidence.warc.gz；"
        "文件只在本机浏览器中读取，不会上传。",
        "  2. 在“URLs”列表中可以看到页面记录；页面网址即 findings.csv 中的“页面网址”，"
        "浏览器渲染后的页面以 urn:rendered: 开头，截图以 urn:screenshot: 开头。",
        "  3. 同一内容在此前已存档时，页面记录是“revisit”（重复内容引用）记录，本包同时包含它引用的原始记录。",
        "  也可以用 pywb、warcio（warcio index / warcio check evidence.warc.gz）等工具读取。",
        "  要浏览本次运行抓取的全部网页，请使用同一运行导出的 WACZ 文件（govevidence export wacz）。",
    ]
    if missing:
        lines += ["", "五、缺失的文件", "  以下截图在导出时已找不到，未能放入本包：",
                  *(f"    {m}" for m in missing)]
    lines.append("")
    return "\n".join(lines)
