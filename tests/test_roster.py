"""The roster format: the bundled Baoji roster, and one-line errors naming file and key."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta

import pytest

from bot.clock import SHANGHAI
from bot.errors import ConfigError
from bot.sandbox.roster import default_roster_path, load_roster

REQUIRED_DEPARTMENTS = ["宝鸡市经济合作局", "宝鸡港务区管理委员会", "宝鸡市住房公积金管理中心",
                        "宝鸡市应急管理局", "宝鸡市文化和旅游局", "宝鸡市自然资源和规划局"]
COUNTIES = ["渭滨区", "金台区", "陈仓区", "凤翔区", "岐山县", "扶风县", "眉县", "陇县", "千阳县",
            "麟游县", "凤县", "太白县"]


@pytest.fixture(scope="module")
def baoji():
    return load_roster(default_roster_path())


def test_bundled_roster_campaign(baoji):
    c = baoji.campaign
    assert c.name == "2024Q2"
    assert c.submit_at == datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)
    assert c.end_at == datetime(2024, 5, 31, 18, 0, tzinfo=SHANGHAI)
    assert c.deadline_workdays == 5 and c.poll_every == timedelta(hours=2)


def test_bundled_roster_sites(baoji):
    sites = baoji.site
    assert len(sites) == 54
    groups = [s.group for s in sites]
    portals = groups.count("政府门户网站")
    assert groups == ["政府门户网站"] * portals + ["市级部门网站"] * (54 - portals)
    names = [s.name for s in sites]
    assert names[0] == "宝鸡市人民政府"
    for county in COUNTIES:
        assert f"{county}人民政府" in names[:portals]
    for name in REQUIRED_DEPARTMENTS:
        assert name in names[portals:]
    assert all(s.mailboxes == ["leader", "mayor"] for s in sites[:portals])
    assert all("leader" in s.mailboxes for s in sites)
    assert set(Counter(s.platform for s in sites)) == {"jact", "legacy", "minimal", "igi", "hdjlpt"}
    assert all(s.region and s.slug for s in sites)
    assert all(s.region == "宝鸡市" for s in sites[portals:])


def test_bundled_roster_has_every_fault_and_a_login_with_an_account(baoji):
    by_name = {s.name: s for s in baoji.site}
    assert by_name["宝鸡市公安局"].login and baoji.account
    assert {n for n, s in by_name.items() if s.captcha} == {"宝鸡市工业和信息化局", "宝鸡市气象局"}
    assert by_name["宝鸡市统计局"].challenge > 0 and by_name["宝鸡市审计局"].flaky > 0
    assert by_name["宝鸡市林业局"].latency_ms > 0
    # A drifted field would fail a submission and change the table: none in the demo roster.
    assert all(s.drift is None for s in baoji.site)


def test_bundled_roster_behaviours(baoji):
    by_name = {s.name: s for s in baoji.site}
    replies = [s.reply.workdays if s.reply else None for s in baoji.site]
    assert replies.count(0) == 20
    assert all(s.reply.at > time(10, 30) for s in baoji.site if s.reply and s.reply.workdays == 0)
    assert sum(1 for r in replies if r is not None and 1 <= r <= 5) == 31
    assert {1, 2, 3, 4, 5} <= set(replies)
    assert by_name["宝鸡市应急管理局"].reply.workdays == 7
    assert by_name["宝鸡港务区管理委员会"].reply is None and by_name["宝鸡港务区管理委员会"].delete is None
    culture = by_name["宝鸡市文化和旅游局"]
    assert culture.reply is None and culture.delete.workdays == 2 and culture.delete.at == time(9, 0)
    backdated = [s for s in baoji.site if s.backdate]
    assert len(backdated) == 1
    assert backdated[0].backdate.workdays == 1 and backdated[0].reply.workdays == 3
    assert sum(1 for s in baoji.site if s.delete) == 1


VALID = '''
[campaign]
name = "t"
submit_at = "2024-04-26T10:00:00+08:00"
end_at = "2024-05-31T18:00:00"
poll_every = "30m"

[[site]]
name = "甲局"
group = "市级部门网站"
platform = "jact"
mailboxes = ["leader"]

[[site]]
name = "乙局"
group = "市级部门网站"
platform = "legacy"
mailboxes = ["leader"]
reply = { workdays = 2, at = "14:30" }
'''


def write(tmp_path, text: str):
    path = tmp_path / "roster.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_small_roster_defaults(tmp_path):
    r = load_roster(write(tmp_path, VALID))
    assert [s.slug for s in r.site] == ["site-01", "site-02"]
    assert r.campaign.end_at == datetime(2024, 5, 31, 18, 0, tzinfo=SHANGHAI)   # naive = Shanghai
    assert r.campaign.poll_every == timedelta(minutes=30)
    assert r.campaign.deadline_workdays == 5
    assert r.site[0].captcha is False and r.site[0].reply is None
    assert r.site[1].reply.at == time(14, 30)


@pytest.mark.parametrize("old, new, key, expected", [
    ('platform = "legacy"', 'platform = "hanweb"', "site[2].platform", "expected one of: jact, legacy, minimal"),
    ('submit_at = "2024-04-26T10:00:00+08:00"', 'submit_at = "26/04/2024 10:00"', "campaign.submit_at",
     "expected an ISO 8601 date-time"),
    ('end_at = "2024-05-31T18:00:00"', 'end_at = "2024-04-01T18:00:00"', "campaign.end_at", "is not after"),
    ("workdays = 2,", "workdays = -1,", "site[2].reply.workdays", "expected a number of working days >= 0"),
    ('at = "14:30"', 'at = "2pm"', "site[2].reply.at", "expected a time of day HH:MM"),
    ('mailboxes = ["leader"]\nreply', 'mailboxes = ["leader"]\ncolour = "red"\nreply', "site[2].colour",
     "unknown key"),
    ('poll_every = "30m"', 'poll_every = "30m"\nspeed = 2', "campaign.speed", "unknown key"),
    ('name = "乙局"', 'name = "甲局"', "site[2].name", "duplicate site name"),
    ('mailboxes = ["leader"]\nreply', 'mailboxes = ["leader"]\nslug = "site-01"\nreply', "site[2].slug",
     "duplicate slug"),
    ('mailboxes = ["leader"]\nreply', 'mailboxes = ["leader", "boss"]\nreply', "site[2].mailboxes",
     "unknown mailbox"),
    ('poll_every = "30m"', 'poll_every = "fortnightly"', "campaign.poll_every", "expected a positive duration"),
])
def test_roster_faults_name_file_and_key(tmp_path, old, new, key, expected):
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_roster(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: key '{key}'")
    assert expected in message
    if key.startswith("site[2]"):
        assert "site 2" in message and ("乙局" in message or "甲局" in message)


@pytest.mark.parametrize("value", ["-1", '"many"', "2.5", "true", "1001"])
def test_traffic_must_be_a_whole_number_of_letters(tmp_path, value):
    path = write(tmp_path, VALID.replace('platform = "jact"', f'platform = "jact"\ntraffic = {value}', 1))
    with pytest.raises(ConfigError) as err:
        load_roster(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: key 'site[1].traffic' (site 1 '甲局'): expected a whole number "
                              "of other citizens' letters a day, 0 to 1000")


def test_traffic_defaults_to_0_and_is_listed_among_the_keys(tmp_path):
    r = load_roster(write(tmp_path, VALID.replace('platform = "jact"', 'platform = "jact"\ntraffic = 40', 1)))
    assert (r.site[0].traffic, r.site[1].traffic) == (40, 0)
    with pytest.raises(ConfigError, match=r"unknown key \(expected: .*drift, login, traffic, moderated, closed, edit\)"):
        load_roster(write(tmp_path, VALID.replace('platform = "jact"', 'platform = "jact"\ntraffik = 4', 1)))


def test_traffic_must_leave_room_in_the_platforms_daily_codes(tmp_path):
    """minimal numbers 9999 letters a day across its sites; traffic may take half."""
    sites = "".join(f'\n[[site]]\nname = "局{i}"\ngroup = "g"\nplatform = "minimal"\n'
                    f'mailboxes = ["leader", "mayor"]\ntraffic = 1000\n' for i in range(1, 4))
    path = write(tmp_path, VALID + sites)
    with pytest.raises(ConfigError) as err:
        load_roster(path)
    message = str(err.value)
    assert message.startswith(f"{path}: key 'site[5].traffic' (site 5 '局3'): the minimal sites' "
                              "traffic adds up to 6000 letters a day")
    assert "4999" in message and "\n" not in message
    load_roster(write(tmp_path, VALID + sites.replace("traffic = 1000", "traffic = 800")))


def test_the_two_step_confirm_platform_has_an_email_field_and_9999_codes_a_day(tmp_path):
    """`confirm` (a form, its preview, then 确认提交): email answers and acknowledgements may go to
    the address its form asks for; its 信件编号 numbers 9999 letters a day, like minimal's."""
    site = ('\n[[site]]\nname = "丙局{i}"\ngroup = "g"\nplatform = "confirm"\nmailboxes = ["leader", "mayor"]\n'
            'reply = {{ workdays = 1, channel = "both" }}\nack = true\ndrift = "email"\ntraffic = {n}\n')
    r = load_roster(write(tmp_path, VALID + site.format(i=1, n=1000)))
    assert (r.site[2].platform, r.site[2].reply.channel, r.site[2].ack) == ("confirm", "both", True)
    many = VALID + "".join(site.format(i=i, n=1000) for i in range(1, 4))
    with pytest.raises(ConfigError, match=r"key 'site\[5\]\.traffic'.*the confirm sites' traffic adds up to 6000"):
        load_roster(write(tmp_path, many))


def test_bundled_roster_has_no_traffic(baoji):
    """Its demo figures were set without other citizens' letters."""
    assert all(s.traffic == 0 for s in baoji.site)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_roster(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_roster(write(tmp_path, "[campaign\n"))


# -- message boards (platform "board") -----------------------------------------------------------

BOARD = VALID + '''
[[site]]
name = "丙局"
group = "市级部门网站"
platform = "board"
mailboxes = ["board"]
reply = { workdays = 1 }
'''


def test_board_sites_and_their_keys(tmp_path):
    r = load_roster(write(tmp_path, BOARD))
    board = r.site[2]
    assert (board.platform, board.mailboxes, board.moderated, board.closed, board.edit) == \
        ("board", ["board"], None, False, None)
    r = load_roster(write(tmp_path, BOARD + 'moderated = true\nclosed = true\nedit = { workdays = 2 }\n'))
    board = r.site[2]
    assert (board.moderated.workdays, board.moderated.at) == (1, time(9, 0))     # the default review
    assert board.closed and (board.edit.workdays, board.edit.at) == (2, time(10, 0))
    r = load_roster(write(tmp_path, BOARD + 'moderated = { workdays = 0, at = "17:30" }\n'))
    assert (r.site[2].moderated.workdays, r.site[2].moderated.at) == (0, time(17, 30))
    assert load_roster(write(tmp_path, BOARD + 'moderated = false\n')).site[2].moderated is None
    assert load_roster(write(tmp_path, BOARD + 'traffic = 1000\ncaptcha = true\ndrift = "body"\n')).site[2].traffic == 1000


@pytest.mark.parametrize("old, new, key, expected", [
    ('mailboxes = ["board"]', 'mailboxes = ["leader"]', "site[3].mailboxes",
     'a board site has the one mailbox "board" (在线留言)'),
    ('mailboxes = ["board"]', 'mailboxes = ["board", "mayor"]', "site[3].mailboxes", "the one mailbox"),
    ('platform = "jact"\nmailboxes = ["leader"]', 'platform = "jact"\nmailboxes = ["leader", "board"]',
     "site[1].mailboxes", "mailbox 'board' (在线留言) is the message board's"),
    ('platform = "jact"', 'platform = "jact"\nmoderated = true', "site[1].moderated",
     "a message board setting (platform = \"board\"); the jact platform has no such thing"),
    ('platform = "legacy"', 'platform = "legacy"\nclosed = true', "site[2].closed", "a message board setting"),
    ('platform = "legacy"', 'platform = "legacy"\nedit = { workdays = 1 }', "site[2].edit", "a message board setting"),
    ('reply = { workdays = 1 }', 'edit = { workdays = 1 }', "site[3].edit", "needs a 'reply' rule"),
    ('reply = { workdays = 1 }', 'reply = { workdays = 1 }\nbackdate = { workdays = 1 }', "site[3].backdate",
     "last-modified time"),
    ('reply = { workdays = 1 }', 'reply = { workdays = 1, channel = "email" }', "site[3].reply.channel",
     "needs an email field in the form, and the board platform has none"),
    ('reply = { workdays = 1 }', 'reply = { workdays = 1 }\nack = true', "site[3].ack", "board platform has none"),
    ('reply = { workdays = 1 }', 'reply = { workdays = 1 }\nlogin = true', "site[3].login", "unified login"),
    ('reply = { workdays = 1 }', 'reply = { workdays = 1 }\ndrift = "title"', "site[3].drift",
     "the board form has no title field; expected one of: body, name, phone"),
    ('reply = { workdays = 1 }', 'reply = { workdays = 1 }\nmoderated = "yes"', "site[3].moderated",
     "expected true, false or a table"),
    ('reply = { workdays = 1 }', 'reply = { workdays = 1 }\nmoderated = { workdays = -1 }',
     "site[3].moderated.workdays", "expected a number of working days >= 0"),
    ('reply = { workdays = 1 }', 'reply = { workdays = 1 }\nmoderated = { days = 1 }',
     "site[3].moderated.days", "unknown key (expected: workdays, at)"),
    ('reply = { workdays = 1 }', 'reply = { workdays = 1 }\nedit = { workdays = 1, at = "noon" }',
     "site[3].edit.at", "expected a time of day HH:MM"),
    ('reply = { workdays = 1 }', 'reply = { workdays = 1 }\nclosed = "no"', "site[3].closed", "expected true or false"),
])
def test_board_faults_name_file_and_key(tmp_path, old, new, key, expected):
    assert old in BOARD
    path = write(tmp_path, BOARD.replace(old, new, 1) if old.startswith(('platform = "jact"', 'platform = "legacy"'))
                 else BOARD[:len(VALID)] + BOARD[len(VALID):].replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_roster(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: key '{key}'"), message
    assert expected in message, message


def test_the_bundled_roster_has_no_board(baoji):
    assert all(s.platform != "board" and s.moderated is None and not s.closed for s in baoji.site)
