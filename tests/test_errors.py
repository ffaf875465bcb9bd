"""Errors a user can cause end in one clear line, never a traceback, and never show a password.

Every case runs as a real subprocess, as a user would: ``govevidence …`` and
``scrapy crawl``/``shell``/``fetch``/``parse`` against real databases and the loopback
sandbox. Also: only ``scrapy crawl`` records, the User-Agent is the same everywhere,
a missing chromium is said once and recorded, and migrations run once, under a lock.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url

from db.models import CrawlRun, PageCapture, Target
from db.session import current_revision, get_engine, head_revision, upgrade
from govevidence.crawl import SANDBOX_SETTINGS, scrapy_command, scrapy_crawl
from tests.conftest import PG_ADMIN_URL, REPO_ROOT, fresh_database

PASSWORD = "p@ss%w0rd"  # URL-encoded: p%40ss%25w0rd
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/x"  # a closed port on loopback
UNREACHABLE_WITH_PASSWORD = "postgresql+psycopg://nobody:p%40ss%25w0rd@127.0.0.1:1/x"
CRAWL_SETTINGS = {**SANDBOX_SETTINGS, "DOWNLOAD_TIMEOUT": "2"}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Environment of a user with a fresh SQLite database and data folder."""
    base = {k: v for k, v in os.environ.items() if k not in ("GOVEVIDENCE_CONTACT", "GOVEVIDENCE_CHROMIUM")}
    return {**base, "GOVEVIDENCE_DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'evidence.sqlite3'}", "PYTHONPATH": str(REPO_ROOT)}


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "govevidence.cli", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def crawl(env: dict[str, str], *, settings: dict[str, str] | None = None, **args: str) -> subprocess.CompletedProcess:
    return scrapy_crawl("province_portals", args=args, settings={**CRAWL_SETTINGS, **(settings or {})},
                        env=env, capture=True, timeout=300)


def scrapy(env: dict[str, str], *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "scrapy", *argv, "-s", "GOVEVIDENCE_ALLOWED_NETWORKS=127.0.0.0/8"]
    return subprocess.run(command, env={**env, "SCRAPY_SETTINGS_MODULE": "crawler.settings"}, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def assert_one_line(result: subprocess.CompletedProcess, *expected: str, secret: str | None = None) -> str:
    """Non-zero exit, exactly one non-empty line on stderr, no traceback, no password."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    for fragment in expected:
        assert fragment in lines[0], lines[0]
    if secret:
        for form in (secret, secret.replace("@", "%40").replace("%w", "%25w")):
            assert form not in result.stderr + result.stdout
    return lines[0]


def runs(url: str) -> list[CrawlRun]:
    engine = create_engine(url)
    try:
        if "crawl_runs" not in inspect(engine).get_table_names():
            return []
        with engine.connect() as conn:
            return list(conn.execute(select(CrawlRun.status, CrawlRun.finish_reason, CrawlRun.stats)).all())
    finally:
        engine.dispose()


def registry_file(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


BAD_REGISTRIES = {
    "yaml": ("version: 1\ntargets:\n  - code: '910000'\n    sources: [\n", "is not valid YAML"),
    "key": ("version: 1\ntargets:\n  - code: '910000'\n    name: 东海省\n    level: province\n    colour: red\n"
            "    sources:\n      - {kind: portal, url: 'http://127.0.0.10/'}\n", "colour"),
    "url": ("version: 1\ntargets:\n  - code: '910000'\n    name: 东海省\n    level: province\n"
            "    sources:\n      - {kind: portal, url: 'ftp://127.0.0.10/'}\n", "not an http(s) URL"),
}


def _ro_bind_usable() -> str | None:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "unshare/mount not installed"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind -o ro / / 2>&1"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"read-only bind mounts not permitted: {probe.stdout.strip()[:200]}"


def read_only(folder: Path, command: list[str]) -> list[str]:
    """The command run with ``folder`` mounted read-only (in a private mount namespace)."""
    return ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(folder), *command]


# --- govevidence ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(BAD_REGISTRIES))
def test_registry_typo(env, tmp_path, kind):
    content, expected = BAD_REGISTRIES[kind]
    path = registry_file(tmp_path, f"bad-{kind}.yaml", content)
    assert_one_line(cli(env, "targets", "--registry", str(path)), str(path), expected)


def test_unknown_target_code(env):
    assert_one_line(cli(env, "targets", "--code", "999999"), "999999")


@pytest.mark.parametrize("url, expected", [
    ("mysqlx://admin:p%40ss%25w0rd@127.0.0.1/x", "数据库地址无效"),
    ("not a database url", "数据库地址无效"),
    ("mysql://admin:p%40ss%25w0rd@127.0.0.1/x", "数据库驱动未安装"),
    (UNREACHABLE, "127.0.0.1:1"),
    (UNREACHABLE_WITH_PASSWORD, "nobody:***@127.0.0.1:1"),
])
@pytest.mark.parametrize("command", [["runs"], ["db", "upgrade"]])
def test_bad_database_url(env, url, expected, command):
    assert_one_line(cli({**env, "DATABASE_URL": url}, *command), expected, secret=PASSWORD)


@pytest.mark.skipif(not PG_ADMIN_URL, reason="GOVEVIDENCE_TEST_POSTGRES_URL not set")
def test_percent_in_password_works_and_is_never_shown(env, tmp_path):
    with fresh_database("postgresql", tmp_path) as url:
        with_password = make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)
        assert "%25" in with_password  # the URL-encoded form, as users write it
        environment = {**env, "DATABASE_URL": with_password}
        for command in (["db", "upgrade"], ["runs"], ["db", "current"]):
            result = cli(environment, *command)
            assert result.returncode == 0, result.stderr
            for form in (PASSWORD, "p%40ss%25w0rd"):
                assert form not in result.stdout + result.stderr
        get_engine(with_password).dispose()


def test_alembic_config_accepts_percent_without_connecting():
    engine = get_engine(UNREACHABLE_WITH_PASSWORD)
    assert head_revision(engine)  # the configparser would choke on the "%" otherwise


def test_data_folder_under_a_file(env, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    environment = {**env, "GOVEVIDENCE_DATA_DIR": str(blocker / "data")}
    environment.pop("DATABASE_URL")
    assert_one_line(cli(environment, "runs"), str(blocker / "data"))


def test_read_only_data_folder(env, tmp_path):
    reason = _ro_bind_usable()
    if reason:
        pytest.skip(reason)
    folder = tmp_path / "ro"
    folder.mkdir()
    environment = {**env, "GOVEVIDENCE_DATA_DIR": str(folder)}
    environment.pop("DATABASE_URL")
    command = read_only(folder, [sys.executable, "-m", "govevidence.cli", "db", "upgrade"])
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert_one_line(result, "unable to open database file")
    assert not list(folder.iterdir())


def test_busy_sandbox_port(env):
    from sandbox import Sandbox

    first_ip = next(site.ip for site in Sandbox(port=0).sites.values() if not site.dead)
    with socket.socket() as taken:
        taken.bind((first_ip, 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = assert_one_line(cli(env, "sandbox", "--port", str(port), timeout=30), str(port))
    assert "Address already in use" in line


# --- read commands never migrate ------------------------------------------------------------
READ_COMMANDS = [["runs"], ["findings", "--run", "1"], ["sources"], ["verify", "1"], ["export", "wacz", "1"]]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
def test_read_commands_refuse_an_empty_database(env, database_url, command):
    result = cli({**env, "DATABASE_URL": database_url}, *command)
    assert_one_line(result, "空库", "govevidence db upgrade")
    assert current_revision(get_engine(database_url)) is None
    assert inspect(get_engine(database_url)).get_table_names() == []


def test_read_commands_refuse_an_older_database(env, database_url):
    engine = get_engine(database_url)
    upgrade(engine, "0002")
    for command in (["runs"], ["sources", "--json"]):
        assert_one_line(cli({**env, "DATABASE_URL": database_url}, *command), "0002", "govevidence db upgrade")
    assert current_revision(engine) == "0002"
    result = cli({**env, "DATABASE_URL": database_url}, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert current_revision(engine) == head_revision(engine)
    assert cli({**env, "DATABASE_URL": database_url}, "runs", "--json").returncode == 0


def test_concurrent_upgrades_of_a_fresh_database(env, database_url):
    """Two processes migrating the same empty database at once: both succeed, one schema."""
    environment = {**env, "DATABASE_URL": database_url}
    command = [sys.executable, "-m", "govevidence.cli", "db", "upgrade"]
    processes = [subprocess.Popen(command, env=environment, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in processes]
    for p in processes:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _, _ in results] == [0, 0, 0], results
    engine = get_engine(database_url)
    assert current_revision(engine) == head_revision(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


# --- scrapy crawl ---------------------------------------------------------------------------
def test_crawl_unknown_target(env, sandbox_registry):
    result = crawl(env, registry=str(sandbox_registry), targets="999999")
    assert_one_line(result, "999999")
    assert runs(env["DATABASE_URL"]) == []


@pytest.mark.parametrize("kind", sorted(BAD_REGISTRIES))
def test_crawl_registry_typo(env, tmp_path, kind):
    content, expected = BAD_REGISTRIES[kind]
    path = registry_file(tmp_path, f"bad-{kind}.yaml", content)
    assert_one_line(crawl(env, registry=str(path)), expected)
    assert runs(env["DATABASE_URL"]) == []


@pytest.mark.parametrize("url", [UNREACHABLE_WITH_PASSWORD, "mysqlx://admin:p%40ss%25w0rd@127.0.0.1/x"])
def test_crawl_bad_database(env, sandbox_registry, url):
    result = crawl({**env, "DATABASE_URL": url}, registry=str(sandbox_registry), targets="910000")
    assert_one_line(result, "数据库", secret=PASSWORD)


def test_crawl_data_folder_under_a_file(env, tmp_path, sandbox_registry):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = crawl({**env, "GOVEVIDENCE_DATA_DIR": str(blocker / "data")}, registry=str(sandbox_registry),
                   targets="910000")
    assert_one_line(result, str(blocker / "data"))
    assert runs(env["DATABASE_URL"]) == []


def test_crawl_read_only_data_folder(env, tmp_path, sandbox_registry):
    reason = _ro_bind_usable()
    if reason:
        pytest.skip(reason)
    folder = tmp_path / "ro"
    folder.mkdir()
    command, environment = scrapy_command("province_portals", args={"registry": str(sandbox_registry),
                                          "targets": "910000"}, settings=CRAWL_SETTINGS,
                                          env={**env, "GOVEVIDENCE_DATA_DIR": str(folder)})
    result = subprocess.run(read_only(folder, command), env=environment, capture_output=True, text=True,
                            timeout=120, cwd=REPO_ROOT)
    assert_one_line(result, str(folder), "Read-only file system")
    assert runs(env["DATABASE_URL"]) == [] and not list(folder.iterdir())


def test_crawl_whose_warc_folder_cannot_be_written_is_recorded_failed(env, tmp_path, sandbox_registry):
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "warc").write_text("a file where the WARC folder should be")
    result = crawl(env, registry=str(sandbox_registry), targets="910000",
                   settings={"GOVEVIDENCE_ARCHIVE_DIR": str(archive)})
    line = assert_one_line(result, "运行 1 失败", "archive_error")
    assert str(archive / "warc") in line
    [(status, reason, stats)] = runs(env["DATABASE_URL"])
    assert (status, reason) == ("failed", "archive_error")
    assert "WARC" in stats["govevidence/error"]


# --- the browser, the User-Agent ------------------------------------------------------------
def test_missing_chromium_is_said_once_and_recorded(env, tmp_path, sandbox_registry):
    result = crawl({**env, "GOVEVIDENCE_CHROMIUM": str(tmp_path / "no-chromium"), "GOVEVIDENCE_CONTACT": "ops@example.org"},
                   registry=str(sandbox_registry), targets="910000")
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if "Browser unavailable" in line]
    assert len(warnings) == 1 and f"chromium not found at {tmp_path / 'no-chromium'}" in warnings[0]
    assert "browser_unavailable" in warnings[0]
    engine = get_engine(env["DATABASE_URL"])
    with engine.connect() as conn:
        run = conn.execute(select(CrawlRun)).one()
        statuses = dict(conn.execute(select(PageCapture.error_status, func.count()).group_by(PageCapture.error_status)).all())
    assert run.status == "finished"
    assert run.stats["browser"] == "unavailable" and "chromium not found" in run.stats["browser_unavailable_reason"]
    assert not any(key.startswith("playwright/") for key in run.stats)  # the browser was never launched
    # Each page that needs the browser is recorded as such (by the spider's errback).
    assert statuses.get("browser_unavailable", 0) >= 1, statuses
    assert not (Path(env["GOVEVIDENCE_DATA_DIR"]) / "screenshots").exists() or not any(
        (Path(env["GOVEVIDENCE_DATA_DIR"]) / "screenshots").rglob("*.png"))
    # One User-Agent everywhere: the setting, the run's recorded settings, WARC warcinfo and requests.
    agent = run.settings["USER_AGENT"]
    assert agent.startswith("GovEvidence/") and "contact: ops@example.org" in agent
    assert run.settings["GOVEVIDENCE_BROWSER_USER_AGENT"] == agent
    warc = b"".join(gzip.open(path).read() for path in (Path(env["GOVEVIDENCE_DATA_DIR"]) / "warc").rglob("*.warc.gz"))
    # Request records carry the header as sent ("User-agent: *" lines are robots.txt bodies).
    sent = {line.split(b":", 1)[1].strip() for line in warc.splitlines() if line.startswith(b"User-Agent:")}
    assert sent == {agent.encode()}
    assert f"http-header-user-agent: {agent}".encode() in warc
    assert b"Scrapy/" not in warc


def test_user_agent_contact_from_the_command_line(env, sandbox):
    url = sandbox.base_url("t910000-portal")
    result = scrapy(env, "shell", url, "-c", "request.headers.get('User-Agent').decode()",
                    "-s", "GOVEVIDENCE_CONTACT=cli@example.org")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith("GovEvidence/") and "contact: cli@example.org" in result.stdout
    explicit = scrapy(env, "shell", url, "-c", "request.headers.get('User-Agent').decode()",
                      "-s", "USER_AGENT=MyAgent/1.0")
    assert explicit.stdout.strip() == "MyAgent/1.0", explicit.stderr[-2000:]


# --- only scrapy crawl records --------------------------------------------------------------
def test_shell_returns_quickly_and_records_nothing(env, sandbox):
    started = time.monotonic()
    result = scrapy(env, "shell", sandbox.base_url("t910000-portal"), "-c", "response.status", timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "200"
    assert elapsed < 30, elapsed
    assert "scrapy-playwright" not in result.stderr  # no browser driver started for a shell
    assert not Path(env["DATABASE_URL"].removeprefix("sqlite:///")).exists()
    assert not (Path(env["GOVEVIDENCE_DATA_DIR"]) / "warc").exists()


def test_fetch_and_parse_record_nothing(env, sandbox):
    assert cli(env, "db", "upgrade").returncode == 0
    url = sandbox.base_url("t910000-portal")
    fetched = scrapy(env, "fetch", "--nolog", url)
    assert fetched.returncode == 0 and "东海省" in fetched.stdout, fetched.stderr[-2000:]
    parsed = scrapy(env, "parse", "--nolog", "--spider", "province_portals", url)
    assert "STATUS DEPTH LEVEL" in parsed.stdout, parsed.stderr[-2000:]
    engine = get_engine(env["DATABASE_URL"])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(CrawlRun)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(Target)).scalar() == 0
    assert not (Path(env["GOVEVIDENCE_DATA_DIR"]) / "warc").exists()
