"""Acknowledgement or answer, and how sure: tables of mails as Chinese government mailboxes
write them (bot.mail.classify), then the doubt carried through `mailbox-bot mail sync` into the
report (a real Dovecot and a real SQLite file)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from mailserver import PLUS_DOMAIN, make_message, write_accounts

from bot.clock import SHANGHAI
from bot.mail.classify import DEFAULT_RULES, UNCERTAIN_FLAG, Rules, Verdict, classify, signals
from bot.store import models as m
from bot.vocab import LetterState
from bot.store.db import Database

AUTO = {"Auto-Submitted": "auto-replied"}

# (subject, text, headers)
CLEAR_ACKS = [
    pytest.param("【宝鸡市人民政府网站】信件受理回执",
                 "王晓明，您好！您于2024年4月26日10时02分提交的信件已受理，受理编号：BJ2024042600123，"
                 "查询密码：5521。您可凭受理编号和查询密码查询办理进度。", None, id="受理回执"),
    pytest.param("自动回复：来信已收到", "您好，您的邮件已收到。本邮件为系统自动回复，请勿直接回复。", AUTO,
                 id="自动回复"),
    pytest.param("信件转办通知", "王晓明：您好！您的来信已转交宝鸡市渭滨区住房和城乡建设局办理，请耐心等待。", None,
                 id="已转办-无内容"),
    pytest.param("Auto Reply: 关于路灯的咨询", "您好，我已收到您的邮件，会尽快处理。", None, id="out-of-office"),
    pytest.param("回复：咨询", "来信收悉，我们将在5个工作日内予以答复。", None, id="来信收悉"),
    pytest.param("通知", "您的信件已登记，正在办理中。如需查询办理进度，请登录网站输入查询码。", None, id="已登记"),
]
LONG_ANSWERS = [
    pytest.param("关于您反映路灯问题的答复",
                 "王晓明同志：\n您好！您于2024年4月26日通过市长信箱反映的渭滨区经二路路灯不亮问题收悉。经核实，"
                 "该路段路灯因地下电缆老化损坏，我局已于4月28日更换电缆，路灯已恢复正常照明。感谢您对城市管理工作的"
                 "关心和支持！\n宝鸡市城市管理执法局\n2024年4月29日", None, id="经核实-署名"),
    pytest.param("答复", "您好，您的来信已收到，现答复如下：根据《陕西省城镇职工基本医疗保险办法》，灵活就业人员可在"
                 "户籍所在地或居住地社保经办机构参保，缴费满规定年限后退休可享受医保待遇。", None,
                 id="已收到-现答复如下-长"),
    pytest.param("办理结果", "办理结果：经区住建局现场核查，该小区加装电梯项目已完成公示，预计7月开工，届时将同步"
                 "改造单元入口无障碍坡道。办理单位：渭滨区住房和城乡建设局", None, id="办理结果"),
    pytest.param("答复", "您好！经核实，您反映的渭滨区经二路路灯不亮问题系线路老化所致，我局已于6月5日更换线路，"
                 "路灯已恢复正常。", {"Auto-Submitted": "auto-generated"}, id="系统发出的答复"),
]
SHORT_ANSWERS = [
    pytest.param("来信答复", "您好，经核实，该路灯已于5月8日修复。", None, id="经核实-短"),
    pytest.param("答复", "现答复如下：可携带身份证到区政务大厅3号窗口办理。", None, id="现答复如下-短"),
    pytest.param("Re: 咨询", "答复如下：该路段不属于我局管辖，请向渭滨区城管局反映。", None, id="答复如下-短"),
]
# (subject, text, headers, expected kind)
BORDERLINE = [
    pytest.param("答复", "您好，您反映的问题已转交区住建局办理，答复如下：该路段已纳入今年老旧小区改造计划。",
                 None, "reply", id="已转交+答复如下-短(issue 10)"),
    pytest.param("答复", "您好，您反映的问题已转交区住建局办理，答复如下：……", None, "ack",
                 id="答复如下-无内容"),
    pytest.param("来信", "关于您咨询的问题，已转交区社保中心办理，请耐心等待。", None, "ack",
                 id="回执+您咨询的"),
    pytest.param("来信", "您的来信已收到。您反映的问题我们将认真研究，并在规定时限内给予答复。如有疑问请拨打"
                 "12345热线，工作时间为周一至周五上午9点至下午5点，节假日除外。", None, "ack",
                 id="回执+客套话"),
    pytest.param("Re: 路灯", "您的来信已收到。王晓明同志，您说的路灯我们昨天已经派人去换了，现在亮了，以后有问题"
                 "可以直接打我们办公室电话，我们会第一时间去处理。", None, "ack", id="回执+无格式的答复"),
    pytest.param("Re: 咨询", "您咨询的问题请拨打12345。", None, "reply", id="您咨询的-短"),
    pytest.param("答复", "答复意见见附件。", None, "reply", id="见附件"),
    pytest.param("Re: 路灯", "好的，知道了。", None, "reply", id="无任何格式"),
    pytest.param("答复", "经核实，该路灯已修复。", AUTO, "reply", id="自动发送的短答复"),
]


@pytest.mark.parametrize("subject,text,headers", CLEAR_ACKS)
def test_clear_acknowledgements(subject, text, headers):
    v = classify(subject, text, headers=headers)
    assert (v.kind, v.uncertain) == ("ack", False), v


@pytest.mark.parametrize("subject,text,headers", LONG_ANSWERS + SHORT_ANSWERS)
def test_clear_answers_long_and_short(subject, text, headers):
    v = classify(subject, text, headers=headers)
    assert (v.kind, v.uncertain) == ("reply", False), v


@pytest.mark.parametrize("subject,text,headers,kind", BORDERLINE)
def test_borderline_mails_are_flagged(subject, text, headers, kind):
    v = classify(subject, text, headers=headers)
    assert (v.kind, v.uncertain) == (kind, True), v


def test_a_short_answer_is_not_decided_by_length():
    """The answer of issue 10 has fewer letters outside its acknowledgement clause than
    `min_reply_chars`: its formula, not its length, makes it an answer."""
    text = "您好，您反映的问题已转交区住建局办理，答复如下：该路段已纳入今年老旧小区改造计划。"
    s = signals("答复", text)
    assert s.ack and s.answer and s.content < DEFAULT_RULES.min_reply_chars
    # however high the length threshold, still an answer (only the certainty depends on it)
    assert classify("答复", text, Rules(min_reply_chars=1000)).kind == "reply"
    # the formula alone, with nothing beside it, is not an answer
    assert not signals("答复", "王晓明同志：您好！答复如下：").answer


def test_verdict_is_a_named_pair_with_its_reason():
    v = classify("答复", "经核实，该路灯已修复。")
    kind, uncertain, why = v
    assert isinstance(v, Verdict) and (kind, uncertain) == ("reply", False) and "answer formula" in why


def test_site_rules_can_add_an_answer_formula():
    text = "办结意见：同意退费，请到区医保中心窗口办理。"
    assert classify("通知", text).uncertain            # a formula the rules do not know: a doubt
    site = DEFAULT_RULES.extended(answer_patterns=[r"办结意见[:：]"])
    assert classify("通知", text, site) == Verdict("reply", False, "answer formula with content")
    with pytest.raises(ValueError, match="invalid regular expression"):
        DEFAULT_RULES.extended(answer_patterns=["(办结"])


# --- the doubt reaches the report, through `mailbox-bot mail sync` ---------------------------

SUBMITTED = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)


def _letters(db_url, names):
    db = Database(db_url)
    ids = {}
    with db.session() as s:
        c = m.Campaign(name="2024Q2", created_at=SUBMITTED)
        s.add(c)
        s.flush()
        for i, name in enumerate(names):
            site = m.Site(key=f"s{i}", name=name, group="市级部门网站", base_url="http://127.0.0.1/x",
                          platform="jact", roster_order=i)
            s.add(site)
            s.flush()
            mb = m.Mailbox(site_id=site.id, kind="leader", label="领导信箱")
            s.add(mb)
            s.flush()
            letter = m.Letter(campaign_id=c.id, mailbox_id=mb.id, state=LetterState.SUBMITTED, state_changed_at=SUBMITTED,
                              title=f"关于第{i}个问题的咨询", body="正文", writer={}, reply_token=f"tok{i}abcdef",
                              tracking_code=f"GD2024042600{i}", submitted_at=SUBMITTED,
                              next_poll_at=SUBMITTED + timedelta(hours=4))
            s.add(letter)
            s.flush()
            ids[name] = letter.id
        s.commit()
    db.dispose()
    return ids


def test_cli_sync_carries_the_doubt_into_the_report(tmp_path, db_url, dovecot, run_cli):
    ids = _letters(db_url, ["宝鸡市短答复局", "宝鸡市明确答复局", "宝鸡市存疑回执局"])
    mails = {
        "宝鸡市短答复局": "您好，您反映的问题已转交区住建局办理，答复如下：该路段已纳入今年老旧小区改造计划。",
        "宝鸡市明确答复局": "您好，经核实，该路灯已于4月28日修复。",
        "宝鸡市存疑回执局": "关于您咨询的问题，已转交区社保中心办理，请耐心等待。",
    }
    for i, (site, text) in enumerate(mails.items()):
        to = f"inspector+tok{i}abcdef@{PLUS_DOMAIN}"
        dovecot.deliver(make_message(i, subject="来信答复", body=text, to=to), rcpt=to)
    env = {"MB_TEST_IMAP_PASSWORD": dovecot.password}
    proc = run_cli("mail", "sync", "--accounts", str(write_accounts(tmp_path / "accounts.toml", dovecot)), env=env, check=True)
    assert "3 new, 3 stored (3 matched" in proc.stdout
    report = json.loads(run_cli("report", "2024Q2", "--json", check=True).stdout)
    rows = {r["site"]: r for r in report["rows"]}
    short, clear, doubtful_ack = (rows[s] for s in mails)
    assert short["status"] == "replied" and UNCERTAIN_FLAG in short["flags"]
    assert clear["status"] == "replied" and UNCERTAIN_FLAG not in clear["flags"]
    assert doubtful_ack["replied_at"] is None and "ack_only" in doubtful_ack["flags"]
    # the doubt about the acknowledgement is kept on its observation and its Reply row
    db = Database(db_url)
    with db.session() as s:
        letter = s.get(m.Letter, ids["宝鸡市存疑回执局"])
        [obs] = letter.observations
        assert obs.detail["kind"] == "ack" and UNCERTAIN_FLAG in obs.detail["flags"]
        assert "reply words" in obs.detail["classified"]
        [ack] = letter.replies
        assert ack.kind == "ack" and UNCERTAIN_FLAG in ack.flags
    db.dispose()
