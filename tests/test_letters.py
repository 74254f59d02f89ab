"""Letters: a thousand for the 54 Baoji sites, all different, in limits, from the right place and
on the right subject; reproducible; earlier campaigns never repeated; the preview command.

No browser, no database: the writer is pure Python.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from bot.accounts import Identity
from bot.letters import THRESHOLD, LetterWriter, field_for, letter_text, load_bank
from bot.letters import places
from bot.letters.bank import BankError, Expander
from bot.letters.similarity import ShingleIndex, jaccard, max_pairwise, shingles
from bot.letters.writer import BankExhausted, formal_title
from bot.sandbox.roster import default_roster_path, load_roster
from bot.scenario.loader import load_platform
from bot.scenario.schema import Limits
from conftest import one_line_error

REPO = Path(__file__).resolve().parent.parent
N = 1000
PHONE = re.compile(r"^1[3-9]\d{9}$")


@pytest.fixture(scope="module")
def roster():
    return load_roster(default_roster_path())


@pytest.fixture(scope="module")
def limits(roster):
    return {p: load_platform(p, REPO / "scenarios").limits for p in sorted({s.platform for s in roster.sites})}


@pytest.fixture(scope="module")
def thousand(roster, limits):
    """1,000 letters, round-robin over the roster's 54 sites, each within its platform's limits."""
    writer = LetterWriter("test-1000")
    started = time.perf_counter()
    out = []
    for i in range(N):
        site = roster.sites[i % len(roster.sites)]
        out.append((site, writer.write(site.name, site.region, limits[site.platform])))
    elapsed = time.perf_counter() - started
    return writer, out, elapsed


def test_a_thousand_letters_fit_their_platforms_limits(thousand, limits):
    writer, letters, elapsed = thousand
    assert len(letters) == N and len(limits) == 5
    assert elapsed < 10, f"1,000 letters took {elapsed:.1f} s"
    for site, c in letters:
        lim = limits[site.platform]
        assert lim.title_min <= len(c.title) <= lim.title_max, (site.platform, c.title)
        assert lim.body_min <= len(c.body) <= lim.body_max, (site.platform, len(c.body))
        assert c.category in ("咨询", "投诉", "建议", "求助")
        # A public list is searched by title in a CSS :text-is('...') selector; the legacy
        # platform posts its form in GBK.
        assert not set(c.title) & set("'\"\\\n"), c.title
        (c.title + c.body + c.name).encode("gbk")
    assert len({c.title for _, c in letters}) == N


def test_no_two_of_the_thousand_are_alike(thousand):
    writer, letters, _ = thousand
    texts = [c.text for _, c in letters]
    started = time.perf_counter()
    best, i, j = max_pairwise(texts, writer.bank.stock)
    assert time.perf_counter() - started < 5
    assert best < THRESHOLD, (best, texts[i], texts[j])
    # The index is exact: the same maximum as every pair compared by sets, on a sample.
    sample = texts[:250]
    sets = [shingles(t, writer.bank.stock) for t in sample]
    brute = max(jaccard(sets[a], sets[b]) for a in range(len(sets)) for b in range(a))
    assert max_pairwise(sample, writer.bank.stock)[0] == pytest.approx(brute)


def test_a_near_duplicate_is_recognised():
    """An earlier letter with its greeting, name, place, phone and closing changed is the same
    letter; another question on the same subject is not."""
    writer = LetterWriter("near")
    a = writer.write("宝鸡市公安局", "宝鸡市", Limits())
    edited = (a.body.replace(a.name, "张建国").replace(a.phone, "13912345678")
              .replace("您好", "领导好").replace("谢谢", "多谢")
              .replace(a.address.removeprefix("陕西省宝鸡市"), "岐山县蔡家坡镇"))
    assert writer.similarity(a.title, edited) >= THRESHOLD
    assert writer.similarity(a.title + "的问题", edited + "盼尽快答复。") >= THRESHOLD
    b = writer.write("宝鸡市公安局", "宝鸡市", Limits())
    index = ShingleIndex(writer.bank.stock)
    index.add(a.text)
    assert index.nearest(b.text) is None or index.nearest(b.text).similarity < THRESHOLD


def test_addresses_lie_in_the_sites_region(thousand):
    _, letters, _ = thousand
    city = places.cities()[0]
    counties = {c.name: c for c in city.counties}
    townships = {t for c in city.counties for t in c.townships}
    for site, c in letters:
        region = places.region(site.region)
        assert region.known, site.region
        assert region.contains(c.address), (site.name, site.region, c.address)
        assert c.address.startswith("陕西省宝鸡市")
        county = next(name for name in counties if c.address.startswith(f"陕西省宝鸡市{name}"))
        # The body names no other district or county, and no township outside the letter's own.
        assert not {n for n in counties if n in c.body} - {county}, (c.address, c.body)
        named = {t for t in townships if t in c.body}
        assert named <= set(counties[county].townships), (c.address, c.body)
    # A county site's letters all come from that county; the city's from many districts.
    fx = [c.address for s, c in letters if s.name == "凤翔区人民政府"]
    assert fx and all(a.startswith("陕西省宝鸡市凤翔区") for a in fx)
    edu = {c.address.removeprefix("陕西省宝鸡市")[:3] for s, c in letters if s.region == "宝鸡市"}
    assert len(edu) >= 8


def test_region_names_resolve():
    assert places.region("宝鸡市").counties == places.cities()[0].counties
    assert [c.name for c in places.region("宝鸡市渭滨区").counties] == ["渭滨区"]
    assert [c.name for c in places.region("凤翔县").counties] == ["凤翔区"]
    assert [c.name for c in places.region("高新区").counties] == ["高新区"]
    assert "经二路街道" in places.region("渭滨区").counties[0].streets
    # A region the data does not know still gets letters; the address is the region itself.
    c = LetterWriter(1).write("西安市雁塔区人民政府", "西安市雁塔区", Limits())
    assert c.address == "西安市雁塔区"
    assert LetterWriter(1).write("某某局", "", Limits()).address == "本地"


def test_phones_are_mobile_numbers(thousand):
    _, letters, _ = thousand
    for _, c in letters:
        assert PHONE.match(c.phone), c.phone
        assert "@" in c.email and len(c.password) == 8
        # Writer details stay in the form's fields: the body shows in evidence packs and reports.
        assert not re.search(r"\d{11}", c.body) and c.phone not in c.body and c.email not in c.body


def test_made_up_addresses_are_only_at_reserved_domains(thousand):
    """Without an identity the address is made up, so it must be nobody's: only example.org /
    .com / .net (RFC 2606), never a real provider such as qq.com, 139.com or foxmail.com."""
    _, letters, _ = thousand
    domains = Counter(c.email.rsplit("@", 1)[1] for _, c in letters)
    assert set(domains) == {"example.org", "example.com", "example.net"}, domains
    locals_ = [c.email.rsplit("@", 1)[0] for _, c in letters]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", x) for x in locals_)
    assert len(set(c.email for _, c in letters)) > 900               # still one citizen each
    assert sum(x.isdigit() for x in locals_) > 200                     # QQ-number-like ones too


def test_a_department_gets_questions_of_its_own_field(thousand):
    _, letters, _ = thousand
    assert field_for("宝鸡市教育局").key == "education"
    assert field_for("宝鸡市住房公积金管理中心").key == "housing_fund"
    assert field_for("宝鸡市人民政府国有资产监督管理委员会").key == "state_assets"
    assert field_for("国家税务总局宝鸡市税务局").key == "taxation"
    assert field_for("宝鸡市公共资源交易中心").key == "public_resources"
    assert field_for("宝鸡高新技术产业开发区管理委员会").key == "government"
    edu = [c for s, c in letters if s.name == "宝鸡市教育局"]
    assert len(edu) >= 18 and {(c.field, c.topic) for c in edu} == {("education", "education")}
    bank = load_bank()
    portal = {f.key for f in bank.fields if f.portal}
    for site, c in letters:
        expected = bank.field_for(site.name).key
        assert c.field == expected
        if expected == "government":
            assert c.topic in portal
        else:
            assert c.topic == expected, (site.name, c.template)
    # Every site of the roster has a field of its own but the governments and zones.
    government = {s.name for s in roster_sites(letters) if field_for(s.name).key == "government"}
    assert len(government) == 15 and all(("人民政府" in n or "管理委员会" in n) for n in government)


def roster_sites(letters):
    seen = {}
    for s, _ in letters:
        seen.setdefault(s.name, s)
    return list(seen.values())


def test_same_seed_same_letters_other_seed_other_letters(roster, limits, thousand):
    _, letters, _ = thousand
    again = LetterWriter("test-1000")
    for i in range(80):
        site = roster.sites[i % len(roster.sites)]
        assert again.write(site.name, site.region, limits[site.platform]) == letters[i][1]
    other = LetterWriter("another seed")
    mine = [other.write(s.name, s.region, limits[s.platform]) for s in roster.sites]
    assert sum(a.title == b.title for a, (_, b) in zip(mine, letters)) <= 2
    assert all(a.body != b.body for a, (_, b) in zip(mine, letters))


def test_a_previous_campaigns_letters_are_not_repeated(roster, limits):
    first = LetterWriter("2024Q2")
    q2 = [first.write(s.name, s.region, limits[s.platform]) for s in roster.sites]
    # The next campaign is written with the same seed (say, the same campaign name) but knows
    # the earlier letters, as (title, body) pairs or "title\nbody" strings from the database.
    for previous in ([(c.title, c.body) for c in q2], [c.text for c in q2]):
        second = LetterWriter("2024Q2", previous=previous)
        q3 = [second.write(s.name, s.region, limits[s.platform]) for s in roster.sites]
        assert not {c.title for c in q3} & {c.title for c in q2}
        best, i, j = max_pairwise([c.text for c in q2] + [c.text for c in q3], second.bank.stock)
        assert best < THRESHOLD
        # A caller may pass every letter of its database each time: known ones count once.
        assert second.avoid(previous) == 0 and second.avoid([(c.title, c.body) for c in q3]) == 0
    # Without them it would have written the very same letters.
    assert LetterWriter("2024Q2").write(roster.sites[0].name, roster.sites[0].region,
                                        limits[roster.sites[0].platform]) == q2[0]
    # A near-duplicate of an earlier letter is refused: a writer whose bank offers nothing else
    # gives up rather than send it again.
    one = q2[15]                                   # 宝鸡市教育局
    assert one.field == "education"
    bank = load_bank()
    only = _bank_with_only(bank, one.template)
    writer = LetterWriter("2024Q2", previous=[(one.title, one.body)], bank=only)
    with pytest.raises(BankExhausted, match="too close to an earlier letter"):
        for _ in range(5):
            writer.write("宝鸡市教育局", "宝鸡市", limits["legacy"])
    writer.avoid([letter_text("另一个标题", "完全不同的一封信。")])
    assert "另一个标题" in writer.used_titles


def _bank_with_only(bank, template_key):
    from dataclasses import replace

    fields = tuple(replace(f, questions=tuple(q for q in f.questions if q.key == template_key))
                   for f in bank.fields)
    return replace(bank, fields=tuple(f for f in fields if f.questions or f.key == "government"))


def test_the_inspectors_real_name_and_phone_are_used(roster, limits):
    inspector = Identity(name="inspector", real_name="王建国", phone="13912345678", email="wjg@example.org")
    writer = LetterWriter("identity")
    letters = [writer.write(s.name, s.region, limits[s.platform], identity=inspector) for s in roster.sites]
    assert {(c.name, c.phone) for c in letters} == {("王建国", "13912345678")}
    assert not any("13912345678" in c.body or "王建国" in c.body for c in letters)
    # Without a real name or phone, made-up ones (an identity may have neither).
    anonymous = Identity(name="x", email="x@example.org")
    c = LetterWriter("identity").write("宝鸡市教育局", "宝鸡市", Limits(), identity=anonymous)
    assert c.name and c.name != "王建国" and PHONE.match(c.phone)


def test_the_bank_is_large_and_every_template_fits_the_strictest_titles():
    bank = load_bank()
    assert len(bank.fields) >= 40
    assert sum(len(f.questions) for f in bank.fields) >= 1000
    import random

    builtins = {"area": "渭滨区清姜街道", "county": "渭滨区", "town": "清姜街道", "city": "宝鸡市",
                "resident": "居民", "unit": "贵局"}
    for f in bank.fields:
        assert len(f.questions) >= 15, f.key
        assert len({q.category for q in f.questions}) >= 3, f.key
        for q in f.questions:
            rng = random.Random(q.key)
            fits = 0
            for _ in range(12):
                title = Expander(rng, f.slots, bank.common, builtins).expand(q.title)
                if len(title) < 10:
                    title = formal_title(title, q.category, "渭滨区", 10)
                fits += 10 <= len(title) <= 25
            assert fits, (q.key, q.title)


def test_a_template_with_an_unknown_slot_is_refused(tmp_path):
    bank_dir = tmp_path / "bank"
    bank_dir.mkdir()
    (bank_dir / "_common.toml").write_text('[slots]\ngreeting = ["您好！"]\nclosing = ["谢谢！"]\n', encoding="utf-8")
    (bank_dir / "government.toml").write_text(
        'keywords = ["人民政府"]\n[[question]]\ncategory = "咨询"\ntitle = "关于{topci}的咨询"\nbody = "请问{topic}？"\n',
        encoding="utf-8")
    with pytest.raises(BankError, match="unknown slot.*topci"):
        load_bank(bank_dir)
    # Nor may a body carry the writer's phone: it belongs in the form's field.
    (bank_dir / "government.toml").write_text(
        'keywords = ["人民政府"]\n[[question]]\ncategory = "咨询"\ntitle = "关于路灯的咨询"\nbody = "电话{phone}"\n',
        encoding="utf-8")
    with pytest.raises(BankError, match="unknown slot.*phone"):
        load_bank(bank_dir)


def test_formal_titles():
    assert formal_title("人防应急包配备", "咨询") == "关于人防应急包配备的咨询"
    assert formal_title("反映围标串标线索", "投诉") == "关于围标串标线索的反映"
    assert formal_title("建议多举办消费活动", "建议") == "关于多举办消费活动的建议"
    assert formal_title("关于政府网站更新的建议", "建议") == "关于政府网站更新的建议"
    assert formal_title("证件换证", "咨询", "陈仓区", 10) == "关于陈仓区证件换证的咨询"


def test_preview_prints_n_letters(run_cli, tmp_path):
    proc = run_cli("letters", "preview", "--site", "宝鸡市教育局", "--platform", "legacy", "--region", "宝鸡市",
                   "--n", "3", "--seed", "7")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("--- letter ") == 3 and proc.stdout.count("标题: ") == 3
    assert "field 教育 (education)" in proc.stdout and "seed 7" in proc.stdout
    assert proc.stdout.count("地址: 陕西省宝鸡市") == 3
    assert run_cli("letters", "preview", "--site", "宝鸡市教育局", "--platform", "legacy", "--region", "宝鸡市",
                   "--n", "3", "--seed", "7").stdout == proc.stdout
    # A site file of the workspace (the working directory), by key: its own limits (title_max 40
    # overridden) and region.
    (tmp_path / "scenarios" / "sites").mkdir(parents=True)
    shutil.copy(REPO / "scenarios" / "sites" / "sandbox-baoji-jintai.toml", tmp_path / "scenarios" / "sites")
    as_json = run_cli("letters", "preview", "--site", "sandbox-baoji-jintai", "--n", "2", "--seed", "1", "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["site"] == "金台区人民政府" and data["limits"]["title"] == [1, 40] and len(data["letters"]) == 2
    assert all(x["address"].startswith("陕西省宝鸡市金台区") for x in data["letters"])


@pytest.mark.parametrize("args, needles", [
    (["--site", "宝鸡市不存在局"], ["--site", "宝鸡市不存在局", "--platform"]),
    (["--site", "missing.toml"], ["--site", "missing.toml"]),
    (["--site", "宝鸡市教育局", "--n", "0"], ["--n", "0"]),
    (["--n", "2"], ["--site"]),
])
def test_preview_errors_are_one_line(run_cli, args, needles):
    one_line_error(run_cli("letters", "preview", *args), *needles, empty_stdout=True)
