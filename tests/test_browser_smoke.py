"""A broken browser set-up (no Chromium, no CJK input) must fail the suite here, first."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

FORM = """<!doctype html><html><head><meta charset="utf-8"><title>领导信箱</title></head>
<body><form id="f" method="post" action="/submit">
<label>姓名 <input name="xm" id="xm"></label>
<label>标题 <input name="bt" id="bt"></label>
<button type="submit">提交</button></form></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = FORM.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        from urllib.parse import parse_qs

        length = int(self.headers["Content-Length"])
        fields = parse_qs(self.rfile.read(length).decode("utf-8"))
        body = f"<html><meta charset='utf-8'><p id='echo'>{fields['xm'][0]}|{fields['bt'][0]}</p></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def form_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_real_chromium_fills_a_chinese_form(page, form_server):
    page.goto(form_server)
    page.fill("#xm", "王晓明")
    page.fill("#bt", "关于公积金提取的咨询")
    page.click("button[type=submit]")
    assert page.locator("#echo").inner_text() == "王晓明|关于公积金提取的咨询"


def test_screenshot_renders_cjk_glyphs(page, form_server, tmp_path):
    # Without a CJK font Chromium draws 王 as the same missing-glyph box as an unassigned code
    # point; with one, the two drawings differ.
    page.goto(form_server)
    same = page.evaluate(r"""() => {
        const draw = (ch) => { const c = document.createElement('canvas'); c.width = c.height = 40;
            const g = c.getContext('2d'); g.font = '32px sans-serif'; g.fillText(ch, 2, 34);
            return Array.from(g.getImageData(0, 0, 40, 40).data).join(','); };
        return draw('王') === draw('\u{10FFFD}') || draw('王') === draw('鑫'); }""")
    assert not same, "Chinese characters render as boxes: install a CJK font (fonts-noto-cjk)"
    shot = tmp_path / "form.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 1000
