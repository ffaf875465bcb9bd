"""The bundled registry of the 64 evaluation targets, and the loader's errors."""

from __future__ import annotations

import json
import textwrap
from collections import Counter

import pytest

from govevidence.cli import main
from govevidence.registry import RegistryError, load_registry

# 31 provincial-level divisions of GB/T 2260 plus 新疆生产建设兵团.
PROVINCE_CODES = {
    "110000", "120000", "130000", "140000", "150000", "210000", "220000", "230000", "310000", "320000",
    "330000", "340000", "350000", "360000", "370000", "410000", "420000", "430000", "440000", "450000",
    "460000", "500000", "510000", "520000", "530000", "540000", "610000", "620000", "630000", "640000",
    "650000", "660000",
}
# 27 provincial / autonomous-region capitals plus 大连, 青岛, 宁波, 厦门, 深圳.
CITY_CODES = {
    "130100", "140100", "150100", "210100", "220100", "230100", "320100", "330100", "340100", "350100",
    "360100", "370100", "410100", "420100", "430100", "440100", "450100", "460100", "510100", "520100",
    "530100", "540100", "610100", "620100", "630100", "640100", "650100",
    "210200", "370200", "330200", "350200", "440300",
}


def test_bundled_registry_has_the_64_targets():
    registry = load_registry()
    codes = [t.code for t in registry.targets]
    assert len(codes) == len(set(codes)) == 64
    assert {t.code for t in registry.targets if t.level == "province"} == PROVINCE_CODES
    assert {t.code for t in registry.targets if t.level == "city"} == CITY_CODES
    for target in registry.targets:
        assert target.portal.url.startswith(("http://", "https://"))
        if target.level == "city":
            assert target.parent == target.code[:2] + "0000"
    names = {t.code: t.name for t in registry.targets}
    assert names["660000"] == "新疆生产建设兵团"
    assert names["440300"] == "深圳市"


def test_targets_json_cli(capsys):
    assert main(["targets", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 64
    assert Counter(t["level"] for t in data) == {"province": 32, "city": 32}
    assert all(sum(s["kind"] == "portal" for s in t["sources"]) == 1 for t in data)


def test_targets_filters(capsys):
    assert main(["targets", "--json", "--level", "city", "--code", "330100", "--code", "330000"]) == 0
    assert [t["code"] for t in json.loads(capsys.readouterr().out)] == ["330100"]
    assert main(["targets", "--level", "province"]) == 0
    out = capsys.readouterr().out
    assert "新疆生产建设兵团" in out and "共 32 个评估对象" in out


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('  - {code: "33000", name: 浙江省, level: province, sources: [{kind: portal, url: "https://www.zj.gov.cn/"}]}',
         "targets[0]"),
        ('  - {code: "330100", name: 杭州市, level: city, sources: [{kind: portal, url: "ftp://x/"}]}',
         "targets[0] (330100 杭州市).sources[0].url: not an http(s) URL"),
        ('  - {code: "330100", name: 杭州市, level: city, sources: [{kind: service, url: "https://a.cn/"}]}',
         "targets[0] (330100 杭州市): needs exactly one portal source"),
        ('  - {code: "330100", name: 杭州市, level: city, colour: red, sources: [{kind: portal, url: "https://a.cn/"}]}',
         "targets[0] (330100 杭州市).colour: Extra inputs are not permitted"),
        ('  - {code: "330000", name: 浙江省, level: province, sources: [{kind: blog, url: "https://a.cn/"}]}',
         "targets[0] (330000 浙江省).sources[0].kind"),
    ],
)
def test_bad_registry_entries_are_named(tmp_path, entry, message):
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\ntargets:\n" + entry + "\n", encoding="utf-8")
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert message in str(info.value)


def test_duplicate_codes_rejected(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(textwrap.dedent("""\
        version: 1
        targets:
          - {code: "330000", name: 浙江省, level: province, sources: [{kind: portal, url: "https://a.cn/"}]}
          - {code: "330000", name: 浙江, level: province, sources: [{kind: portal, url: "https://b.cn/"}]}
        """), encoding="utf-8")
    with pytest.raises(RegistryError, match=r"targets\[1\] \(330000 浙江\): duplicate code"):
        load_registry(path)


def test_cli_reports_registry_errors_without_traceback(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("version: 1\ntargets: [\n", encoding="utf-8")
    assert main(["targets", "--registry", str(path)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
