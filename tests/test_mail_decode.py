"""Decoding real Chinese mail, and telling acknowledgements from answers. Messages are built by
hand, byte by byte, the way the mail systems of government sites write them."""

from __future__ import annotations

import base64
import quopri
from datetime import datetime, timedelta, timezone

import pytest

from bot.mail.classify import DEFAULT_RULES, Rules, classify, classify_message, is_auto_reply, strip_quoted
from bot.mail.decode import (decode_bytes, decode_header_value, extract_addresses, html_to_text,
                             normalize_charset, parse_message)

CRLF = "\r\n"


def b_word(text: str, charset: str, codec: str | None = None) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(codec or charset)).decode()}?="


def q_word(text: str, charset: str, codec: str | None = None) -> str:
    """Q-encoded words of at most 6 characters each, folded as mailers do."""
    def q(chunk: str) -> str:
        return "".join(chr(b) if chr(b).isalnum() and b < 128 else f"={b:02X}"
                       for b in chunk.encode(codec or charset))
    words = [f"=?{charset}?Q?{q(text[i:i + 6])}?=" for i in range(0, len(text), 6)]
    return "\r\n ".join(words)


def message(headers: list[tuple[str, str]], body: bytes, *, ctype: str = "text/plain; charset=utf-8",
            cte: str | None = None) -> bytes:
    lines = [f"{k}: {v}" for k, v in headers]
    lines.append("MIME-Version: 1.0")
    lines.append(f"Content-Type: {ctype}")
    if cte:
        lines.append(f"Content-Transfer-Encoding: {cte}")
    return (CRLF.join(lines) + CRLF + CRLF).encode("utf-8") + body  # raw UTF-8 if not encoded


BASE_HEADERS = [("From", "shizhang@baoji.gov.cn"), ("To", "inspector+k7x2@example.org"),
                ("Date", "Mon, 3 Jun 2024 16:20:05 +0800"), ("Message-ID", "<20240603162005.1234@baoji.gov.cn>")]


# --- headers ------------------------------------------------------------------------------

@pytest.mark.parametrize("charset,codec", [("GB2312", "gb2312"), ("gbk", "gbk"), ("GB18030", "gb18030"),
                                           ("UTF-8", "utf-8"), ("big5", "big5")])
@pytest.mark.parametrize("word", [b_word, q_word])
def test_encoded_word_subjects(charset, codec, word):
    subject = "關於路燈問題的答覆" if charset == "big5" else "关于路灯问题的答复"
    raw = message([("Subject", word(subject, charset, codec)), *BASE_HEADERS], "正文".encode("utf-8"))
    m = parse_message(raw)
    assert m.subject == subject
    assert m.message_id == "<20240603162005.1234@baoji.gov.cn>"


def test_gb2312_label_on_gbk_and_gb18030_text():
    # 镕 喆 堃 are GBK, not GB2312; 𠀀 (U+20000) exists only in GB18030
    name = "朱镕基 王喆 李堃 𠀀"
    subject = f"=?gb2312?B?{base64.b64encode(name.encode('gb18030')).decode()}?="
    assert decode_header_value(subject) == name
    assert normalize_charset("GB2312") == normalize_charset("x-gbk") == normalize_charset("CP936") == "gb18030"


def test_encoded_words_splitting_a_character_and_folding():
    raw = "市长信箱来信答复：关于喆园小区供暖".encode("gbk")
    cut = 7  # in the middle of a double-byte character
    w1 = f"=?GBK?B?{base64.b64encode(raw[:cut]).decode()}?="
    w2 = f"=?GBK?B?{base64.b64encode(raw[cut:]).decode()}?="
    assert decode_header_value(f"{w1}\r\n {w2}") == "市长信箱来信答复：关于喆园小区供暖"
    # mixed with plain text, and charsets changing between words
    assert decode_header_value(f"Re: {b_word('答复', 'utf-8')} {b_word('通知', 'gb2312')} (2)") == "Re: 答复通知 (2)"


def test_bad_base64_padding_in_encoded_word():
    word = base64.b64encode("您好".encode("gbk")).decode().rstrip("=")
    assert decode_header_value(f"=?gbk?b?{word}?=") == "您好"


def test_raw_8bit_gbk_headers():
    raw = (f"From: 宝鸡市应急管理局 <yjj@baoji.gov.cn>{CRLF}To: 王晓明 <inspector@example.org>{CRLF}"
           f"Subject: 关于您反映问题的答复（镕）{CRLF}Content-Type: text/plain; charset=gbk{CRLF}{CRLF}"
           "经核实，已处理。").encode("gbk")
    m = parse_message(raw)
    assert m.subject == "关于您反映问题的答复（镕）"
    assert (m.from_name, m.from_addr) == ("宝鸡市应急管理局", "yjj@baoji.gov.cn")
    assert m.to_addrs == ["inspector@example.org"]
    assert m.text == "经核实，已处理。"


def test_raw_8bit_utf8_headers():
    raw = (f"From: \"市长信箱\" <mayor@xa.gov.cn>{CRLF}Subject: 答复：路灯{CRLF}{CRLF}好").encode("utf-8")
    m = parse_message(raw)
    assert m.subject == "答复：路灯"
    assert m.from_name == "市长信箱"
    assert m.text == "好"  # no charset, 8-bit: UTF-8 tried first


def test_addresses_from_every_recipient_header():
    raw = message([("From", f"{b_word('宝鸡市人民政府, 办公室', 'gb2312', 'gbk')} <ban@baoji.gov.cn>"),
                   ("To", f"{b_word('王晓明', 'utf-8')} <Inspector+AB12@Example.org>, other@example.org"),
                   ("Cc", "cc@example.org"), ("Delivered-To", "inspector+ab12@example.org"),
                   ("X-Original-To", "token77@letters.example.org"), ("Subject", "x")], b"body")
    m = parse_message(raw)
    assert m.from_name == "宝鸡市人民政府, 办公室" and m.from_addr == "ban@baoji.gov.cn"
    assert m.to_addrs == ["inspector+ab12@example.org", "other@example.org", "cc@example.org",
                          "token77@letters.example.org"]
    assert extract_addresses('"张 三" <a@b.cn>, c@d.cn') == [("张 三", "a@b.cn"), ("", "c@d.cn")]


def test_date_header_is_aware():
    m = parse_message(message([*BASE_HEADERS, ("Subject", "x")], b"x"))
    assert m.date_header == datetime(2024, 6, 3, 8, 20, 5, tzinfo=timezone.utc)
    no_zone = parse_message(message([("Date", "Mon, 3 Jun 2024 16:20:05"), ("Subject", "x")], b"x"))
    assert no_zone.date_header.utcoffset() == timedelta(hours=8)  # naive means Asia/Shanghai
    bad = parse_message(message([("Date", "明天"), ("Subject", "x")], b"x"))
    assert bad.date_header is None


# --- bodies -------------------------------------------------------------------------------

def test_gb2312_labelled_body_with_gbk_only_characters_base64():
    text = "王晓明同志：您好！您反映的喆园小区路灯问题，经核实，已由李堃同志负责修复。"
    body = base64.encodebytes(text.encode("gbk"))
    m = parse_message(message([*BASE_HEADERS, ("Subject", "答复")], body,
                              ctype="text/plain; charset=gb2312", cte="base64"))
    assert m.text == text
    assert "\ufffd" not in m.text
    assert (m.charset_declared, m.charset_used) == ("gb2312", "gb18030")


def test_quoted_printable_body_gbk():
    text = "您好：\n您的来信已收到。\n朱镕基路 1 号"
    body = quopri.encodestring(text.replace("\n", "\r\n").encode("gbk"))
    m = parse_message(message([*BASE_HEADERS, ("Subject", "x")], body,
                              ctype='text/plain; charset="GB2312"', cte="quoted-printable"))
    assert m.text == text.replace("\n", "\n")


def test_quoted_printable_utf8_and_8bit_gb18030():
    text = "答复：经研究，现答复如下。"
    m = parse_message(message([("Subject", "x")], quopri.encodestring(text.encode("utf-8")),
                              ctype="text/plain; charset=utf-8", cte="quoted-printable"))
    assert m.text == text
    m = parse_message(message([("Subject", "x")], "𠀀字与喆字".encode("gb18030"),
                              ctype="text/plain; charset=GB18030", cte="8bit"))
    assert m.text == "𠀀字与喆字"


@pytest.mark.parametrize("ctype", ["text/plain", "text/plain; charset=x-unknown-cs",
                                   "text/plain; charset=us-ascii"])
def test_missing_unknown_or_lying_charset_falls_back(ctype):
    m = parse_message(message([("Subject", "x")], "经核实已修复".encode("gbk"), ctype=ctype, cte="8bit"))
    assert m.text == "经核实已修复"
    assert m.charset_used == "gb18030"
    m = parse_message(message([("Subject", "x")], "经核实已修复".encode("utf-8"), ctype=ctype, cte="8bit"))
    assert m.text == "经核实已修复"
    m = parse_message(message([("Subject", "x")], b"caf\xe9 \xff\xfe", ctype=ctype, cte="8bit"))
    assert m.text  # Latin-1 as a last resort: something readable, no exception


def test_html_only_body():
    html = ("<html><head><title>回复</title><style>p {color: red}</style>"
            "<script>alert('x')</script></head><body><div>王晓明您好：</div>"
            "<p>您反映的问题&nbsp;经核实&amp;处理，现答复如下：</p><p>一、路灯已修复；<br>二、&lt;感谢&gt;。</p>"
            "<table><tr><td>答复单位</td><td>宝鸡市城管局</td></tr></table></body></html>")
    body = base64.encodebytes(html.encode("gbk"))
    m = parse_message(message([*BASE_HEADERS, ("Subject", "答复")], body,
                              ctype="text/html; charset=gb2312", cte="base64"))
    assert m.html == html
    assert "alert" not in m.text and "color" not in m.text
    assert "\n\n\n" not in m.text
    assert [ln for ln in m.text.splitlines() if ln] == ["王晓明您好：", "您反映的问题 经核实&处理，现答复如下：", "一、路灯已修复；",
                                   "二、<感谢>。", "答复单位 宝鸡市城管局"]


def test_html_charset_from_meta_tag():
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head><body>李堃</body></html>'
    m = parse_message(message([("Subject", "x")], html.encode("gbk"), ctype="text/html", cte="8bit"))
    assert m.text == "李堃"


def test_multipart_alternative_prefers_plain_and_keeps_html():
    plain = base64.encodebytes("经核实，路灯已修复。".encode("gbk")).decode()
    html = base64.encodebytes("<p>经核实，<b>路灯</b>已修复。</p>".encode("gbk")).decode()
    body = (f"--ALT{CRLF}Content-Type: text/plain; charset=gb2312{CRLF}Content-Transfer-Encoding: base64{CRLF}{CRLF}"
            f"{plain}{CRLF}--ALT{CRLF}Content-Type: text/html; charset=gb2312{CRLF}"
            f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{html}{CRLF}--ALT--{CRLF}").encode("ascii")
    m = parse_message(message([("Subject", "x")], body, ctype='multipart/alternative; boundary="ALT"'))
    assert m.text == "经核实，路灯已修复。"
    assert m.html == "<p>经核实，<b>路灯</b>已修复。</p>"
    assert m.attachments == []


def test_multipart_mixed_with_chinese_attachment_names():
    text = base64.encodebytes("您好，答复意见见附件。".encode("gbk")).decode()
    pdf = base64.encodebytes(b"%PDF-1.4\n" + b"0" * 1000).decode()
    doc = base64.encodebytes(b"\xd0\xcf\x11\xe0" * 100).decode()
    rfc2231 = "".join(f"%{c:02X}" for c in "关于喆园小区的答复意见.pdf".encode("gbk"))
    rfc2047 = b_word("办理结果通知书.doc", "GB2312", "gbk")
    raw8 = "回执（堃）.txt"
    parts = [
        f"Content-Type: multipart/alternative; boundary=ALT{CRLF}{CRLF}--ALT{CRLF}"
        f"Content-Type: text/plain; charset=GB2312{CRLF}Content-Transfer-Encoding: base64{CRLF}{CRLF}{text}"
        f"{CRLF}--ALT--{CRLF}",
        f"Content-Type: application/pdf{CRLF}Content-Transfer-Encoding: base64{CRLF}"
        f"Content-Disposition: attachment; filename*=gbk''{rfc2231}{CRLF}{CRLF}{pdf}",
        f"Content-Type: application/msword; name=\"{rfc2047}\"{CRLF}Content-Transfer-Encoding: base64{CRLF}"
        f"Content-Disposition: attachment; filename=\"{rfc2047}\"{CRLF}{CRLF}{doc}",
        f"Content-Type: text/plain; charset=gbk; name=\"{raw8}\"{CRLF}"
        f"Content-Disposition: attachment; filename=\"{raw8}\"{CRLF}{CRLF}这是附件，不是正文。",
    ]
    body = ("".join(f"--MIX{CRLF}{p}{CRLF}" for p in parts) + f"--MIX--{CRLF}").encode("gbk")
    m = parse_message(message([*BASE_HEADERS, ("Subject", b_word("答复", "gb2312"))], body,
                              ctype='multipart/mixed; boundary="MIX"'))
    assert m.text == "您好，答复意见见附件。"
    assert [(a.filename, a.content_type) for a in m.attachments] == [
        ("关于喆园小区的答复意见.pdf", "application/pdf"),
        ("办理结果通知书.doc", "application/msword"),
        ("回执（堃）.txt", "text/plain"),
    ]
    assert m.attachments[0].size == 1009 and m.attachments[1].size == 400
    assert "不是正文" not in m.text


def test_rfc2231_continuations_and_attached_message():
    name = "关于您反映的宝鸡市渭滨区某某路段路灯长期不亮问题的答复意见.pdf".encode("utf-8")
    enc = "".join(f"%{c:02X}" for c in name)
    half = len(enc) // 2 // 3 * 3
    inner = f"Subject: {b_word('原信', 'utf-8')}{CRLF}{CRLF}hello{CRLF}"
    body = (f"--B{CRLF}Content-Type: text/plain; charset=utf-8{CRLF}{CRLF}见附件{CRLF}"
            f"--B{CRLF}Content-Type: application/pdf{CRLF}Content-Disposition: attachment;{CRLF}"
            f" filename*0*=utf-8''{enc[:half]};{CRLF} filename*1*={enc[half:]}{CRLF}{CRLF}abc{CRLF}"
            f"--B{CRLF}Content-Type: message/rfc822{CRLF}{CRLF}{inner}"
            f"--B--{CRLF}").encode("utf-8")
    m = parse_message(message([("Subject", "x")], body, ctype="multipart/mixed; boundary=B"))
    assert m.text == "见附件"
    assert m.attachments[0].filename == name.decode("utf-8")
    assert m.attachments[1].filename == "原信.eml" and m.attachments[1].content_type == "message/rfc822"


ANSWER_PDF = "答复意见书（喆园小区）GD20240426001.pdf"


def _pct(data: bytes) -> str:
    return "".join(f"%{b:02X}" for b in data)


def _webmail(disposition: str, ctype_params: str = "") -> bytes:
    """A reply as Coremail-style webmail writes it: multipart/mixed, a GB2312-labelled base64
    text part, the answer as a PDF attachment whose name carries the tracking code."""
    text = base64.encodebytes("您好，答复意见见附件。".encode("gbk")).decode()
    pdf = base64.encodebytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n").decode()
    body = (f"--MIX{CRLF}Content-Type: text/plain; charset=GB2312{CRLF}Content-Transfer-Encoding: base64{CRLF}{CRLF}"
            f"{text}{CRLF}--MIX{CRLF}Content-Type: application/pdf{ctype_params}{CRLF}Content-Transfer-Encoding: base64{CRLF}"
            f"Content-Disposition: {disposition}{CRLF}{CRLF}{pdf}{CRLF}--MIX--{CRLF}")
    return message([*BASE_HEADERS, ("Subject", b_word("来信答复", "GB2312", "gbk"))], body.encode("ascii"),
                   ctype='multipart/mixed; boundary="MIX"')


GBK = ANSWER_PDF.encode("gbk")
CUT = 5     # inside a double-byte character


@pytest.mark.parametrize("disposition,ctype_params", [
    (f"attachment; filename*=GBK''{_pct(GBK)}", ""),
    (f"attachment;{CRLF} filename*0*=GBK''{_pct(GBK[:CUT])};{CRLF} filename*1*={_pct(GBK[CUT:])}", ""),
    (f'attachment; filename="GD20240426001.pdf"; filename*=GBK\'zh-cn\'{_pct(GBK)}', ""),
    (f"attachment; filename*=gb18030''{_pct(ANSWER_PDF.encode('gb18030'))}", ""),
    (f"attachment; filename*=UTF-8''{_pct(ANSWER_PDF.encode('utf-8'))}", ""),
    (f'attachment; filename="{b_word(ANSWER_PDF, "GB2312", "gbk")}"', ""),
    (f'attachment; filename="=?GBK?B?{base64.b64encode(GBK[:9]).decode()}?={CRLF} '
     f'=?GBK?B?{base64.b64encode(GBK[9:]).decode()}?="', ""),
    (f'attachment; filename="{q_word(ANSWER_PDF, "GB18030", "gb18030")}"', ""),
    ("attachment", f'; name="{b_word(ANSWER_PDF, "gbk")}"'),
    ("attachment", f"; name*=GBK''{_pct(GBK)}"),
], ids=["2231-GBK", "2231-continued-mid-char", "2231-beside-ascii-filename", "2231-GB18030", "2231-UTF-8",
        "2047-GB2312-label", "2047-split-words", "2047-Q-GB18030", "name-2047", "name-2231"])
def test_attachment_names_in_every_chinese_form(disposition, ctype_params):
    m = parse_message(_webmail(disposition, ctype_params))
    assert m.text == "您好，答复意见见附件。"
    assert [(a.filename, a.content_type) for a in m.attachments] == [(ANSWER_PDF, "application/pdf")]


def test_labels_that_are_no_mail_charset_never_yield_unstorable_text():
    # Python's unicode_escape would turn "\\ud800" into a lone surrogate, and "\\x00" into NUL
    assert normalize_charset("unicode-escape") is None and normalize_charset("raw_unicode_escape") is None
    assert decode_header_value("=?unicode_escape?Q?=5Cud800=5Cx00?=") == "\\ud800\\x00"
    # UTF-7 is a real (if rare) mail charset, but lets a lone surrogate through
    assert decode_header_value("=?utf-7?Q?+2AA-?=") == "\ufffd"
    assert decode_bytes("🐀".encode("utf-16"), "utf-16") == ("🐀", "utf-16")


@pytest.mark.parametrize("raw", [
    b"",
    b"\x00\xff\xfe garbage without headers",
    b"Subject: =?gb2312?B?!!!notbase64?=\r\nContent-Type: multipart/mixed; boundary=Q\r\n\r\n"
    b"--Q\r\nContent-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"@@@###\r\n--Q\r\nContent-Type: application/pdf; name*=bogus''%ZZ%\r\n\r\nx",  # no closing boundary
    b"Content-Type: text/plain; charset=\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E4=B8==\r\n",
    b"From: <<<@@@>>>, \"unterminated\r\nTo: ,,,\r\nDate: 99 Foo 99999 99:99:99 +9999\r\n\r\nbody",
    b"Subject: \xff\xfe\xfd\r\nContent-Type: text/html; charset=big5\r\n\r\n<p>\xa4\xa4<script>",
])
def test_malformed_messages_do_not_raise(raw):
    m = parse_message(raw)
    assert isinstance(m.text, str) and isinstance(m.subject, str)


def test_gb2312_label_on_utf8_text():
    m = parse_message(message([("Subject", "x")], "经核实，已修复。".encode("utf-8"),
                              ctype="text/plain; charset=gb2312", cte="8bit"))
    assert (m.text, m.charset_used) == ("经核实，已修复。", "utf-8")


def test_decode_bytes_chain():
    assert decode_bytes("喆".encode("gbk"), "gb2312") == ("喆", "gb18030")
    assert decode_bytes("喆".encode("utf-8"), None) == ("喆", "utf-8")
    assert decode_bytes("中".encode("big5"), "big5")[0] == "中"
    assert decode_bytes(b"\xff\xfe\x80", None)[1] in ("gb18030", "latin-1")
    assert html_to_text("a<br>b<p>c</p>&#x55B6;&copy;") == "a\nb\nc\n営©"


# --- acknowledgement or answer ---------------------------------------------------------------

ACKS = [
    ("自动回复：您的来信已收到", "您好！您的来信已收到，我们将在5个工作日内答复您。本邮件由系统自动发送，请勿回复。"),
    ("受理通知", "王晓明：您好！您于2024年6月3日通过市长信箱提交的信件已受理，受理编号：BJ20240603001，"
                 "查询密码：8842。我们将尽快办理并答复，请您耐心等待。"),
    ("Re: 关于路灯的咨询", "我们已收到您的来信，已转交宝鸡市城市管理局办理。"),
    ("【宝鸡市人民政府】信件受理回执", "您反映的问题已受理，正在办理中。"),
    ("回复: 咨询", "来信收悉。"),
]
REPLIES = [
    ("关于您反映路灯问题的答复", "王晓明同志：您好！您反映的渭滨区经二路路灯不亮问题，经核实，系线路老化所致，"
                            "我局已于6月5日更换线路，路灯已恢复正常。感谢您对城市管理工作的支持。"),
    ("答复", "您好，您的来信已收到，经核实，该路段的施工许可手续齐全，施工单位已按要求设置围挡并限时作业，"
             "夜间施工已经停止。宝鸡市住房和城乡建设局"),
    ("市长信箱答复", "现答复如下：一、关于供暖费退费问题，按照《宝鸡市城市供热管理办法》第二十条，"
                   "未供暖期间的费用应予退还；二、退费可到热力公司营业厅办理。"),
    ("Re: 咨询社保", "您好！您咨询的灵活就业人员养老保险缴费问题，可通过陕西养老保险APP或到区社保中心窗口办理，"
                   "缴费基数可在全省上年度平均工资的60%至300%之间自选。"),
]


@pytest.mark.parametrize("subject,text", ACKS)
def test_classify_acknowledgements(subject, text):
    assert classify(subject, text).kind == "ack"


@pytest.mark.parametrize("subject,text", REPLIES)
def test_classify_replies(subject, text):
    assert classify(subject, text).kind == "reply"


def test_classify_auto_reply_headers():
    text = "王晓明：您好，您的来信内容已记录。"
    assert classify("来信", text).kind == "reply"  # no formula at all: default
    assert classify("来信", text, headers={"Auto-Submitted": "auto-replied"}).kind == "ack"
    assert classify("来信", text, headers=[("X-Autoreply", "yes")]).kind == "ack"
    assert classify("来信", text, headers=[("Precedence", "auto_reply")]).kind == "ack"
    assert classify("来信", text, headers={"Auto-Submitted": "no"}).kind == "reply"
    # an automated mailing of a real answer is still an answer
    assert classify("答复", REPLIES[0][1], headers={"Auto-Submitted": "auto-generated"}).kind == "reply"
    assert is_auto_reply({"X-Autorespond": "1"}) and not is_auto_reply(None)


def test_classify_ignores_the_quoted_letter():
    quoted = ("您的来信已收到。\n\n-----原始邮件-----\n发件人: inspector@example.org\n"
              "主题: 路灯\n请问经核实后能否尽快答复如下问题：路灯什么时候修好？")
    assert "路灯什么时候" not in strip_quoted(quoted)
    assert classify("Re: 路灯", quoted).kind == "ack"
    assert classify("Re: 路灯", "收到。\n> 您反映的问题 经核实 现答复如下 " + "长" * 80).kind == "ack"


def test_rules_are_data_and_overridable():
    site_rules = DEFAULT_RULES.extended(ack_patterns=[r"已录入系统"], answer_patterns=[r"办结意见[:：]"])
    assert classify("通知", "您的信件已录入系统。").kind == "reply"
    assert classify("通知", "您的信件已录入系统。", site_rules).kind == "ack"
    assert classify("通知", "办结意见：同意退费，请于三日内到窗口办理相关手续并携带身份证件原件和复印件。", site_rules).kind == "reply"
    strict = Rules(ack_patterns=["收到"], reply_patterns=["答复如下"], default="ack")
    assert classify("x", "谢谢").kind == "reply" and classify("x", "谢谢", strict).kind == "ack"
    with pytest.raises(ValueError, match="invalid regular expression"):
        Rules(ack_patterns=["(unclosed"])


def test_classify_message_uses_headers():
    raw = message([("Subject", b_word("自动回复", "gb2312", "gbk")), ("Auto-Submitted", "auto-replied")],
                  base64.encodebytes("您好。".encode("gbk")), ctype="text/plain; charset=gb2312", cte="base64")
    assert classify_message(parse_message(raw)).kind == "ack"
