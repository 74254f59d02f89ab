"""Scenario templates and site files: every bundled one loads; mistakes name file, key, reason."""

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.scenario.loader import load_platform, load_site, load_sites, scenario_for
from bot.scenario.schema import Click, SiteRecord

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"
PLATFORMS = sorted(p.stem for p in (SCENARIOS / "platforms").glob("*.toml"))


def test_the_three_archetypes_have_templates():
    assert {"jact", "legacy", "minimal"} <= set(PLATFORMS)


@pytest.mark.parametrize("name", PLATFORMS)
def test_every_platform_template_loads(name):
    sc = load_platform(name, SCENARIOS)
    finals = [s for s in sc.flows["submit"].steps if isinstance(s, Click) and s.final]
    assert len(finals) == 1
    # How a sent letter is looked at: its query page, or (a board without one) the public list.
    assert "query" in sc.flows or "list" in sc.flows
    if "query" in sc.flows:
        assert sc.status_map, "a template with a query page must say which status texts mean replied"
        assert "replied" in sc.status_map.values()
    else:
        extracted = {s.field for s in sc.flows["list"].steps if s.op == "extract"}
        assert {"reply_text", "reply_time"} <= extracted, "a list-only template reads the reply from the list"


def test_every_site_file_loads():
    files = sorted((SCENARIOS / "sites").glob("*.toml"))
    assert files
    for site, scenario in load_sites(files, SCENARIOS):
        assert site.name and scenario.platform == site.platform


def _write_platform(tmp_path, body: str) -> Path:
    (tmp_path / "platforms").mkdir(exist_ok=True)
    (tmp_path / "platforms" / "p.toml").write_text(body, encoding="utf-8")
    return tmp_path


GOOD = '''
platform = "p"
[selectors]
t = "#t"
[status_map]
"已办结" = "replied"
[flows.submit]
steps = [ { op = "goto", url = "{base_url}/" }, { op = "fill", selector = "@t", value = "{letter.title}" },
          { op = "click", selector = "#go", final = true } ]
[flows.query]
steps = [ { op = "goto", url = "{base_url}/q" } ]
'''


def test_unknown_step_is_refused_at_load_with_file_and_key(tmp_path):
    d = _write_platform(tmp_path, GOOD.replace('op = "fill"', 'op = "type"'))
    with pytest.raises(ConfigError) as e:
        load_platform("p", d)
    msg = str(e.value)
    assert "p.toml" in msg and "flows.submit.steps.1" in msg and "'type'" in msg


def test_missing_field_and_undefined_selector_are_refused(tmp_path):
    d = _write_platform(tmp_path, GOOD.replace(', value = "{letter.title}"', ""))
    with pytest.raises(ConfigError, match=r"flows\.submit\.steps\.1\.value.*required"):
        load_platform("p", d)
    d = _write_platform(tmp_path, GOOD.replace('selector = "@t"', 'selector = "@title"'))
    with pytest.raises(ConfigError, match=r"@title.*not defined in \[selectors\]"):
        load_platform("p", d)


def test_submit_flow_needs_exactly_one_final_click(tmp_path):
    d = _write_platform(tmp_path, GOOD.replace(", final = true", ""))
    with pytest.raises(ConfigError, match="exactly one click with final = true"):
        load_platform("p", d)


def test_unknown_platform_lists_the_known_ones():
    with pytest.raises(ConfigError, match="no platform template 'nope'.*jact"):
        load_platform("nope", SCENARIOS)


def test_site_overrides_one_selector_and_nothing_else(tmp_path):
    site = SiteRecord(name="某县人民政府", group="政府门户网站", base_url="http://127.0.0.1:1/x",
                      platform="jact", mailboxes=["leader"], overrides={"selectors": {"title": "#newTitle"}})
    sc = scenario_for(site, SCENARIOS)
    base = load_platform("jact", SCENARIOS)
    assert sc.selectors["title"] == "#newTitle"
    assert {k: v for k, v in sc.selectors.items() if k != "title"} == \
           {k: v for k, v in base.selectors.items() if k != "title"}
    bad = site.model_copy(update={"overrides": {"flows": {}}})
    with pytest.raises(ConfigError, match="overrides.flows.*cannot be overridden"):
        scenario_for(bad, SCENARIOS)


def test_site_written_for_another_template_version_is_refused():
    site = SiteRecord(name="x", group="g", base_url="http://h/", platform="jact", platform_version=9,
                      mailboxes=["leader"])
    with pytest.raises(ConfigError, match="platform_version"):
        scenario_for(site, SCENARIOS)


def test_site_file_mistakes_name_the_file_and_key(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('name = "x"\ngroup = "g"\nbase_url = "ftp://x"\nplatform = "jact"\nmailboxes = ["leader"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"s\.toml.*base_url"):
        load_site(f)
    f.write_text('name = "x"\ngroup = "g"\nbase_url = "http://x"\nplatform = "jact"\nmailboxes = ["boss"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"s\.toml.*mailboxes"):
        load_site(f)


@pytest.mark.parametrize("name,kind,label", [
    ("宝鸡市人民政府", "mayor", "市长信箱"), ("眉县人民政府", "mayor", "县长信箱"),
    ("渭滨区人民政府", "mayor", "区长信箱"), ("宝鸡市教育局", "leader", "领导信箱")])
def test_mailbox_labels(name, kind, label):
    assert SiteRecord(name=name, group="g", base_url="http://h/", platform="jact",
                      mailboxes=[kind]).mailbox_label(kind) == label
