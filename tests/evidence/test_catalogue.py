"""Catalogue validation: clear messages for broken entries."""

from __future__ import annotations

import pytest
import yaml

from evidence import indicators_for, load_catalogue
from evidence.catalogue import CatalogueError, parse_catalogue

ENTRY = {
    "id": "site.example",
    "name": "示例",
    "definition": "A visible example entry used to test the catalogue loader.",
    "kinds": ["portal"],
    "evidence": "presence",
    "detector": "entry",
    "version": 1,
    "rules": {"link_texts": ["示例"]},
}


def catalogue_with(*entries):
    return {"version": "test", "indicators": list(entries)}


def test_packaged_catalogue_is_valid_and_complete():
    catalogue = load_catalogue()
    assert len(catalogue.indicators) == 33
    for indicator in catalogue.indicators:
        assert indicator.name and indicator.definition and indicator.version >= 1
        assert indicator.evidence in {"presence", "value", "date", "count", "list"}


def test_unknown_detector_is_rejected_with_its_name():
    with pytest.raises(CatalogueError, match=r"site.example.*unknown detector 'no_such_detector'"):
        parse_catalogue(catalogue_with({**ENTRY, "detector": "no_such_detector"}))


def test_bad_regex_is_rejected_with_the_pattern():
    bad = {**ENTRY, "rules": {"link_texts": ["示例(未闭合"]}}
    with pytest.raises(CatalogueError, match=r"site.example.*bad regex in link_texts"):
        parse_catalogue(catalogue_with(bad))


def test_duplicate_id_is_rejected():
    with pytest.raises(CatalogueError, match=r"duplicate indicator id 'site.example'"):
        parse_catalogue(catalogue_with(ENTRY, dict(ENTRY)))


def test_unknown_rule_key_and_kind_are_rejected():
    with pytest.raises(CatalogueError, match=r"link_text"):
        parse_catalogue(catalogue_with({**ENTRY, "rules": {"link_text": ["示例"]}}))
    with pytest.raises(CatalogueError, match=r"unknown source kind"):
        parse_catalogue(catalogue_with({**ENTRY, "kinds": ["website"]}))


def test_load_from_file_and_yaml_errors(tmp_path):
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(catalogue_with(ENTRY), allow_unicode=True), encoding="utf-8")
    assert load_catalogue(path).get("site.example").rules.link_texts == ["示例"]
    path.write_text("indicators: [", encoding="utf-8")
    with pytest.raises(CatalogueError, match="not valid YAML"):
        load_catalogue(path)


def test_new_indicator_of_existing_type_needs_no_code(tmp_path):
    from evidence import Page, detect

    entry = {**ENTRY, "rules": {"link_texts": ["^营商环境$"]}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(catalogue_with(entry), allow_unicode=True), encoding="utf-8")
    page = Page.from_bytes("http://x.gov.cn/", '<html><body><a href="/yshj/">营商环境</a></body></html>'.encode())
    (finding,) = detect(page, catalogue=load_catalogue(path))
    assert finding.indicator == "site.example" and finding.verdict == "present"


def test_applicability():
    def ids(kind):
        return {i.id for i in indicators_for(kind)}

    for kind in ("portal", "service", "opendata", "interaction", "department", "newmedia"):
        assert {"site.id_code", "site.reachable", "site.broken_links", "site.latest_update"} <= ids(kind)
    assert "service.one_thing" in ids("service") and "service.one_thing" in ids("portal")
    assert "opendata.api_access" in ids("opendata") and "opendata.api_access" not in ids("service")
    assert "interaction.reply_public" in ids("interaction") and "interaction.reply_public" in ids("portal")
    assert "portal.department_list" in ids("portal")
    with pytest.raises(ValueError):
        indicators_for("website")
