"""The ``govevidence`` command: everything that is not ``scrapy crawl``."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from govevidence.labels import LEVEL_NAMES, VERDICT_NAMES
from govevidence.tables import render_table
from vocabulary import LEVELS, SCOPES, SOURCE_KINDS


class CommandError(Exception):
    """A problem to report to the user as one line (exit code 2), not as a traceback."""


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


# --- targets -----------------------------------------------------------------------------
def cmd_targets(args: argparse.Namespace) -> int:
    from govevidence.registry import load_registry

    registry = load_registry(args.registry)
    targets = registry.select(args.code or None, level=args.level)
    if args.json:
        _print_json([t.model_dump(exclude_none=True) for t in targets])
        return 0
    rows = []
    for t in targets:
        kinds = sorted({s.kind for s in t.sources} - {"portal"})
        unverified = sum(1 for s in t.sources if not s.verified)
        rows.append([t.code, t.name, LEVEL_NAMES[t.level], t.portal.url, ",".join(kinds), unverified or ""])
    print(render_table(["代码", "名称", "级别", "门户网站", "其他来源", "待核实"], rows, max_width=60))
    print(f"\n共 {len(targets)} 个评估对象")
    return 0


# --- db ----------------------------------------------------------------------------------
def cmd_db(args: argparse.Namespace) -> int:
    from db.session import current_revision, get_engine, head_revision, upgrade

    engine = get_engine(args.url)
    if args.db_command == "upgrade":
        upgrade(engine)
        print(f"数据库已升级到 {current_revision(engine)}：{engine.url.render_as_string()}")
    else:
        print(f"当前版本 {current_revision(engine) or '（空库）'}，最新版本 {head_revision(engine)}")
    return 0


# --- sandbox -----------------------------------------------------------------------------
def cmd_sandbox(args: argparse.Namespace) -> int:
    from sandbox import Sandbox

    sandbox = Sandbox(port=args.port, slow_seconds=args.slow_seconds)
    try:
        sandbox.start()
    except OSError as exc:  # most often: the port is taken
        raise CommandError(f"沙盒网站无法在端口 {args.port} 上启动（端口已被占用？换一个：--port N，0 为任选）：{exc}") from None
    registry = Path(args.write_registry or Path(tempfile.gettempdir()) / "govevidence-sandbox-registry.yaml")
    sandbox.write_registry(registry)
    print(f"沙盒网站已启动（仅 127.0.0.0/8）。评估对象注册表：{registry}")
    for target in sandbox.registry()["targets"]:
        for source in target["sources"]:
            print(f"  {target['code']} {target['name']:<6} {source['kind']:<12} {source['url']}")
    print(f"\n抓取：scrapy crawl province_portals -a registry={registry}")
    print("按 Ctrl-C 停止。")
    try:
        import threading

        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


# --- runs / findings ---------------------------------------------------------------------
def cmd_runs(args: argparse.Namespace) -> int:
    from db.session import get_engine, require_schema, session_factory
    from govevidence import reports

    require_schema(get_engine())  # reading never migrates
    with session_factory()() as session:
        rows = reports.runs(session, limit=args.limit)
    if args.json:
        _print_json(rows)
        return 0
    print(render_table(
        ["运行", "爬虫", "状态", "结束原因", "开始时间 (UTC)", "页面", "失败", "发现"],
        [[r["id"], r["spider"], r["status"], r["finish_reason"], r["started_at"][:19], r["pages"], r["failed_pages"], r["findings"]] for r in rows],
    ))
    return 0


def cmd_findings(args: argparse.Namespace) -> int:
    from db.session import get_engine, require_schema, session_factory
    from govevidence import reports

    require_schema(get_engine())  # reading never migrates
    with session_factory()() as session:
        rows = reports.findings(session, args.run, scope=args.scope, target_code=args.target, indicator=args.indicator,
                                judgement=args.judgement)
    if args.json:
        _print_json(rows)
        return 0
    print(render_table(
        ["对象", "名称", "来源", "指标", "结论", "值", "证据 / 已检查"],
        [[r["target"], r["target_name"], r["source_kind"] or "", r["indicator"], VERDICT_NAMES[r["verdict"]],
          r["value"], r["snippet"] if r["verdict"] == "present" else r["checked"]] for r in rows],
        max_width=40,
    ))
    print(f"\n共 {len(rows)} 条（运行 {args.run}，范围 {args.scope}）")
    return 0


def cmd_sources(args: argparse.Namespace) -> int:
    from db.session import get_engine, require_schema, session_factory
    from govevidence import reports

    require_schema(get_engine())  # reading never migrates
    with session_factory()() as session:
        rows = reports.sources(session, target_code=args.target, discovered_only=args.discovered)
    if args.json:
        _print_json(rows)
        return 0
    print(render_table(
        ["对象", "名称", "类型", "网址", "来源", "链接文字", "发现页面"],
        [[r["target"], r["target_name"], r["kind"], r["url"], "门户发现" if r["origin"] == "discovered" else "注册表",
          r["anchor_text"], r["discovered_on"]] for r in rows],
        max_width=50,
    ))
    return 0


# --- indicators -----------------------------------------------------------------------
def cmd_indicators(args: argparse.Namespace) -> int:
    from evidence import load_catalogue

    catalogue = load_catalogue(args.catalogue) if args.catalogue else load_catalogue()
    indicators = [i for i in catalogue.indicators if not args.kind or args.kind in i.kinds]
    if args.json:
        _print_json([i.model_dump(mode="json") for i in indicators])
        return 0
    print(render_table(
        ["指标", "名称", "证据类型", "适用来源", "版本", "定义"],
        [[i.id, i.name, i.evidence, ",".join(i.kinds), i.version, i.definition] for i in indicators],
        max_width=36,
    ))
    print(f"\n共 {len(indicators)} 项指标")
    return 0


# --- detect ------------------------------------------------------------------------------
def cmd_detect(args: argparse.Namespace) -> int:
    from evidence import Page, detect

    body = Path(args.file).read_bytes()
    page = Page.from_bytes(args.url, body, content_type=args.content_type, kind=args.kind)
    findings = [f.to_dict() for f in detect(page)]
    if args.json:
        _print_json(findings)
        return 0
    print(render_table(
        ["指标", "结论", "值", "定位", "摘录"],
        [[f["indicator"], VERDICT_NAMES[f["verdict"]], f["value"], f["locator"], f["snippet"] or f["checked"]] for f in findings],
        max_width=40,
    ))
    return 0


# --- verify / export ------------------------------------------------------------------
def _archive_root(value: str | None) -> Path:
    from db.session import data_dir

    return Path(value) if value else data_dir()


def cmd_verify(args: argparse.Namespace) -> int:
    from db.session import get_engine, require_schema, session_factory
    from govevidence.manifest import verify_run

    require_schema(get_engine())  # reading never migrates
    with session_factory()() as session:
        problems = verify_run(session, args.run, _archive_root(args.archive_dir))
    if args.json:
        _print_json({"run": args.run, "ok": not problems, "problems": problems})
    elif problems:
        print(f"运行 {args.run} 的证据有 {len(problems)} 处问题：")
        for problem in problems:
            print(f"  ✗ {problem}")
    else:
        print(f"运行 {args.run}：所有文件、WARC 记录和数据库行均与记录的哈希一致。")
    return 1 if problems else 0


def cmd_export(args: argparse.Namespace) -> int:
    from db.session import get_engine, require_schema, session_factory
    from govevidence import export

    require_schema(get_engine())  # reading never migrates
    root = _archive_root(args.archive_dir)
    with session_factory()() as session:
        if args.export_kind == "wacz":
            out = Path(args.output or f"govevidence-run-{args.run:05d}.wacz")
            path = export.export_wacz(session, args.run, root, out, revisit_originals=args.revisit_originals)
        else:
            out = Path(args.output or f"govevidence-run-{args.run:05d}-{args.target}.zip")
            path = export.export_pack(session, args.run, args.target, root, out, judgement=args.judgement)
    print(f"已导出：{path}")
    return 0


# --- anchor (RFC 3161 time-stamp of a sealed run) -----------------------------------------
def cmd_anchor(args: argparse.Namespace) -> int:
    from db.session import ensure_schema, get_engine, session_factory
    from govevidence.anchor import AnchorError, seal_run, tsa_settings

    tsa_url, ca_file, timeout = tsa_settings()
    tsa_url, ca_file = args.tsa_url or tsa_url, args.ca_file or ca_file
    if not tsa_url:
        raise CommandError("未指定时间戳服务（--tsa-url 或环境变量 GOVEVIDENCE_TSA_URL）")
    ensure_schema(get_engine())
    try:
        with session_factory().begin() as session:
            anchor = seal_run(session, args.run, _archive_root(args.archive_dir), tsa_url, ca_file, timeout)
            where, when = anchor.token_file, anchor.gen_time
    except AnchorError as exc:
        print(f"运行 {args.run} 未能加盖时间戳：{exc}", file=sys.stderr)
        return 1
    print(f"运行 {args.run} 已加盖 RFC 3161 时间戳（{when}）：{where}")
    return 0


# --- seal (roll-ups, manifest and time-stamp of a run whose crawl ended without them) -----
def cmd_seal(args: argparse.Namespace) -> int:
    from db.session import ensure_schema, get_engine, session_factory
    from govevidence.seal import SealError, seal_unsealed

    ensure_schema(get_engine())
    root = _archive_root(args.archive_dir)
    try:
        result = seal_unsealed(session_factory(), args.run, root)
    except SealError as exc:
        raise CommandError(str(exc)) from None
    manifest = result.manifest.relative_to(root) if result.manifest.is_relative_to(root) else result.manifest
    if result.already_sealed:
        print(f"运行 {args.run} 已封存（清单 {manifest}），无需再封存。")
        return 0
    if result.rolled_up:
        rollups = (f"来源结论 {result.counts.get('govevidence/source_findings', 0)} 条、"
                   f"对象结论 {result.counts.get('govevidence/target_findings', 0)} 条")
    else:
        rollups = "汇总结论已存在"
    reason = f"（{result.finish_reason}）" if result.finish_reason else ""
    print(f"运行 {args.run} 已封存：{rollups}，清单 {manifest}；状态 {result.status}{reason}")
    if result.recovered_dead_run:
        print("  抓取进程已不存在：运行已标记为 interrupted（killed），WARC 文件中的记录已重新编入索引")
    if result.counts.get("govevidence/judged_at_seal"):
        print(f"  抓取时未及判定的 {result.counts['govevidence/judged_at_seal']} 个页面已先判定"
              f"（页面结论 {result.counts.get('govevidence/judged_at_seal_findings', 0)} 条）")
    for problem in result.torn:
        print(f"  ✗ {problem}")
    if result.anchor:
        print(f"  时间戳：{result.anchor}")
    return 0


# --- judge (the detectors again over a run's archived bytes) ---------------------------------
def cmd_judge(args: argparse.Namespace) -> int:
    from db.session import ensure_schema, get_engine, session_factory
    from govevidence.judge import JudgeError, judge_run

    ensure_schema(get_engine())
    try:
        result = judge_run(session_factory(), args.run, _archive_root(args.archive_dir), catalogue_path=args.catalogue)
    except JudgeError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        _print_json({"run": result.run_id, "judgement": result.judgement_id, "captures": result.captures,
                     "from_archive": result.from_archive, "page_findings": result.page_findings,
                     "statuses": result.statuses, "status_changed": result.changed, **result.counts})
        return 0
    statuses = "、".join(f"{name} {count}" for name, count in sorted(result.statuses.items()))
    print(f"运行 {result.run_id} 已重新判定（判定 {result.judgement_id}）：{result.captures} 个页面采集"
          f"（{result.from_archive} 个从 WARC 读回；{statuses}），页面结论 {result.page_findings} 条，"
          f"来源结论 {result.counts.get('govevidence/source_findings', 0)} 条，"
          f"对象结论 {result.counts.get('govevidence/target_findings', 0)} 条")
    for change in result.changed[:20]:
        print(f"  ≠ 采集 {change['capture']} {change['url']}：抓取时 {change['crawl']}，现为 {change['judged']}")
    return 0


# --- run (a run several crawl workers share) ------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from scrapy.spiderloader import SpiderLoader
    from scrapy.utils.project import get_project_settings

    from crawler.run import RunError, create_run
    from db.session import ensure_schema, get_engine, session_factory

    settings = get_project_settings()
    for pair in args.set or []:
        name, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"-s 需要 NAME=VALUE，而不是 {pair!r}")
        settings.set(name, value, priority="cmdline")
    if args.spider not in SpiderLoader.from_settings(settings).list():
        raise CommandError(f"没有名为 {args.spider} 的爬虫")
    ensure_schema(get_engine(settings.get("DATABASE_URL") or None))
    try:
        with session_factory(settings.get("DATABASE_URL") or None).begin() as session:
            run = create_run(session, args.spider, settings, workers=args.workers, actor="govevidence run open",
                             registry_file=args.registry or "", stats={"opened_by": "govevidence run open"})
            run_id = run.id
    except RunError as exc:
        raise CommandError(str(exc)) from None
    print(f"运行 {run_id} 已创建（爬虫 {args.spider}，{args.workers} 个抓取进程共享）；"
          f"每个进程：scrapy crawl {args.spider} -s GOVEVIDENCE_RUN_ID={run_id}", file=sys.stderr)
    print(run_id)
    return 0


# --- demo --------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from db.session import data_dir, database_url, ensure_schema, get_engine, session_factory
    from govevidence import reports
    from govevidence.crawl import SANDBOX_SETTINGS, scrapy_crawl
    from sandbox import Sandbox

    ensure_schema(get_engine())
    with Sandbox(port=args.port, slow_seconds=args.slow_seconds) as sandbox, tempfile.TemporaryDirectory() as tmp:
        registry = Path(tmp) / "sandbox-registry.yaml"
        sandbox.write_registry(registry)
        print(f"沙盒网站已启动，共 {len(sandbox.registry()['targets'])} 个虚构评估对象。")
        for spider in ("province_portals", "city_portals"):
            print(f"正在抓取：scrapy crawl {spider} …", flush=True)
            log = data_dir() / "logs" / f"demo-{spider}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            result = scrapy_crawl(spider, args={"registry": str(registry)},
                                  settings={**SANDBOX_SETTINGS, "LOG_FILE": str(log), "LOG_LEVEL": "INFO"})
            if result.returncode != 0:
                print(f"{spider} 失败（退出码 {result.returncode}），日志：{log}", file=sys.stderr)
                return result.returncode
    with session_factory()() as session:
        latest = reports.runs(session, limit=2)
        run_ids = [r["id"] for r in latest]
        summary = reports.target_summary(session, run_ids)
    print()
    print(render_table(
        ["代码", "名称", "级别", "页面", "失败", "有", "无", "无法判断", "网站标识码", "ICP备案", "最近更新"],
        [[s["code"], s["name"], LEVEL_NAMES[s["level"]], s["pages"], s["failed_pages"], s["present"], s["absent"],
          s["unknown"], s["values"].get("site.id_code", ""), s["values"].get("site.icp_record", ""),
          s["values"].get("site.latest_update", "")] for s in summary],
    ))
    print(f"\n运行 {', '.join(map(str, sorted(run_ids)))} 已写入 {database_url()}")
    print("查看明细：govevidence findings --run " + str(max(run_ids)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="govevidence", description="GovEvidence: 数字政府评估证据采集")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("targets", help="list evaluation targets of the registry")
    p.add_argument("--registry", help="registry YAML file (default: the bundled one)")
    p.add_argument("--level", choices=LEVELS)
    p.add_argument("--code", action="append", help="division code; repeatable")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_targets)

    p = sub.add_parser("db", help="database schema")
    p.add_argument("db_command", choices=["upgrade", "current"])
    p.add_argument("--url", help="SQLAlchemy URL (default: DATABASE_URL or the local SQLite file)")
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("sandbox", help="serve the sandbox web on 127.0.0.x until Ctrl-C")
    p.add_argument("--port", type=int, default=8600)
    p.add_argument("--slow-seconds", type=float, default=20.0)
    p.add_argument("--write-registry", help="where to write the sandbox registry YAML")
    p.set_defaults(func=cmd_sandbox)

    p = sub.add_parser("runs", help="list crawl runs")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("sources", help="sources of targets, incl. those discovered on portals")
    p.add_argument("--target", help="division code")
    p.add_argument("--discovered", action="store_true", help="only sources found by following portal links")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sources)

    p = sub.add_parser("findings", help="findings of a run")
    p.add_argument("--run", type=int, required=True)
    p.add_argument("--scope", choices=SCOPES, default="target")
    p.add_argument("--target", help="division code")
    p.add_argument("--indicator")
    p.add_argument("--judgement", help="judgement id, or crawl (default: the newest judgement)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_findings)

    p = sub.add_parser("indicators", help="list the indicator catalogue")
    p.add_argument("--kind", choices=SOURCE_KINDS)
    p.add_argument("--catalogue", help="another catalogue YAML file (validated)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_indicators)

    p = sub.add_parser("detect", help="run the detectors on one saved page")
    p.add_argument("file")
    p.add_argument("--url", required=True, help="the URL the page was served from")
    p.add_argument("--kind", required=True, choices=SOURCE_KINDS)
    p.add_argument("--content-type", help="the HTTP Content-Type it was served with, if known")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("verify", help="recompute hashes of a run's files, WARC records and rows")
    p.add_argument("run", type=int)
    p.add_argument("--archive-dir", help="data folder holding warc/, screenshots/, runs/ (default: the data folder)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("export", help="export a run as WACZ, or a target's evidence pack")
    export_sub = p.add_subparsers(dest="export_kind", required=True)
    e = export_sub.add_parser("wacz", help="WACZ of a whole run, for ReplayWeb.page or pywb")
    e.add_argument("run", type=int)
    e.add_argument("-o", "--output")
    e.add_argument("--archive-dir")
    e.add_argument("--revisit-originals", choices=["files", "records"], default="files",
                   help="for revisits of earlier runs: include their whole WARC files, or only the original records")
    e.set_defaults(func=cmd_export)
    e = export_sub.add_parser("pack", help="zip evidence pack of one target in one run")
    e.add_argument("--run", type=int, required=True)
    e.add_argument("--target", required=True, help="division code")
    e.add_argument("-o", "--output")
    e.add_argument("--archive-dir")
    e.add_argument("--judgement", help="judgement id, or crawl (default: the newest judgement)")
    e.set_defaults(func=cmd_export)

    p = sub.add_parser("anchor", help="(re)time-stamp a sealed run with an RFC 3161 TSA")
    p.add_argument("run", type=int)
    p.add_argument("--tsa-url", help="TSA URL (default: GOVEVIDENCE_TSA_URL)")
    p.add_argument("--ca-file", help="TSA certificate/CA PEM to check the token (default: GOVEVIDENCE_TSA_CA_FILE)")
    p.add_argument("--archive-dir", help="data folder holding runs/ (default: the data folder)")
    p.set_defaults(func=cmd_anchor)

    p = sub.add_parser("seal", help="roll up, write the manifest of and time-stamp a run whose crawl ended without it")
    p.add_argument("run", type=int)
    p.add_argument("--archive-dir", help="data folder holding warc/, screenshots/, runs/ (default: the data folder)")
    p.set_defaults(func=cmd_seal)

    p = sub.add_parser("judge", help="run the detectors again over a run's archived bytes (a new judgement)")
    p.add_argument("run", type=int)
    p.add_argument("--catalogue", help="indicator catalogue YAML file (default: the bundled one)")
    p.add_argument("--archive-dir", help="data folder holding warc/ (default: the data folder)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_judge)

    p = sub.add_parser("run", help="a crawl run several workers share")
    run_sub = p.add_subparsers(dest="run_command", required=True)
    r = run_sub.add_parser("open", help="create a run; prints its id for `-s GOVEVIDENCE_RUN_ID=…` of each worker")
    r.add_argument("--spider", required=True, help="the spider every worker runs")
    r.add_argument("--workers", type=int, default=1, help="how many workers share it; the last to close seals it")
    r.add_argument("--registry", help="the registry file the workers are given (recorded)")
    r.add_argument("-s", "--set", action="append", metavar="NAME=VALUE",
                   help="a Scrapy setting the workers are given too (recorded with the run)")
    r.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="start the sandbox, crawl it into the database, print a summary")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--slow-seconds", type=float, default=20.0)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # output piped into head, less …
        sys.stderr.close()
        return 0
    except Exception as exc:  # a clear one-line message, not a traceback, for user errors
        from govevidence.errors import hide_passwords, one_line, user_message

        message = hide_passwords(one_line(str(exc))) if isinstance(exc, CommandError) else user_message(exc)
        if message is None:
            raise
        print(f"govevidence: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
