"""The govevidence command as a user runs it: demo, runs, findings, detect, indicators, db."""

from __future__ import annotations

import json
import urllib.request

import pytest

from govevidence.cli import main

DETECT_KEYS = {"indicator", "verdict", "value", "url", "href", "locator", "snippet", "checked", "details",
               "detector_version"}


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GOVEVIDENCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_demo_then_runs_and_findings(data_env, capsys):
    assert main(["demo", "--slow-seconds", "6"]) == 0
    out = capsys.readouterr().out
    for name in ("东海省", "西岭省", "海州市", "岭城市", "临江市"):
        assert name in out
    assert "9100000001" in out  # 东海省 portal's 网站标识码, read from the page

    assert main(["runs", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert sorted(r["spider"] for r in runs) == ["city_portals", "province_portals"]
    assert all(r["status"] == "finished" and r["pages"] > 0 for r in runs)

    province = next(r["id"] for r in runs if r["spider"] == "province_portals")
    assert main(["findings", "--run", str(province), "--json", "--target", "920000"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_indicator = {r["indicator"]: r for r in rows}
    assert by_indicator["site.icp_record"]["verdict"] == "present"
    assert by_indicator["site.icp_record"]["value"].startswith("西ICP备")
    assert {r["scope"] for r in rows} == {"target"}

    assert main(["findings", "--run", str(province), "--scope", "source", "--indicator", "site.reachable"]) == 0
    table = capsys.readouterr().out
    assert "site.reachable" in table and "有" in table

    assert main(["verify", str(province)]) == 0
    assert "一致" in capsys.readouterr().out

    assert main(["sources", "--discovered", "--json", "--target", "910100"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found and all(s["origin"] == "discovered" and s["anchor_text"] and s["discovered_on"] for s in found)


def test_detect_json_on_a_saved_gbk_page(sandbox, tmp_path, capsys):
    url = sandbox.base_url("t920000-portal")
    with urllib.request.urlopen(url) as response:
        body = response.read()
    saved = tmp_path / "page.html"
    saved.write_bytes(body)
    assert main(["detect", str(saved), "--url", url, "--kind", "portal", "--json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    assert findings and all(DETECT_KEYS <= set(f) for f in findings)
    assert {f["verdict"] for f in findings} <= {"present", "absent"}
    assert "site.reachable" not in {f["indicator"] for f in findings}
    icp = next(f for f in findings if f["indicator"] == "site.icp_record")
    assert icp["verdict"] == "present" and icp["value"].startswith("西ICP备") and icp["locator"]
    absent = [f for f in findings if f["verdict"] == "absent"]
    assert all(f["checked"] for f in absent)


def test_indicators_lists_the_catalogue(capsys):
    assert main(["indicators", "--json"]) == 0
    ids = {i["id"] for i in json.loads(capsys.readouterr().out)}
    assert {"site.reachable", "site.id_code", "portal.service_entry", "service.good_bad_review",
            "opendata.dataset_catalog", "interaction.reply_satisfaction"} <= ids


def test_db_upgrade_and_current(data_env, capsys):
    assert main(["db", "current"]) == 0
    assert "空库" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "current"]) == 0
    out = capsys.readouterr().out
    from db.session import get_engine, head_revision

    head = head_revision(get_engine())
    assert f"当前版本 {head}" in out and f"最新版本 {head}" in out
