"""Scenario selectors on a parsed page, without a browser (the plain HTTP path).

Templates write selectors for Playwright: CSS plus a few text pseudo-classes. On a server-rendered
page the same selectors are evaluated by lxml through cssselect (CSS Level 3 and `:has()`), with
Playwright's text pseudo-classes added:

- `:text-is("x")`   the element's text, whitespace collapsed, is exactly x (case-sensitive);
- `:has-text("x")`  its text contains x, case-insensitively (ASCII), whitespace collapsed;
- `:contains("x")`  cssselect's own: its text contains x.

Anything else Playwright-only (`:text-matches()`, `:visible`, `>>` chains, `text=` engines) is
refused when a template marks a flow `http = true`, so that the plain path never silently
reads a page differently from the browser.
"""

from __future__ import annotations

import functools
import re

from cssselect import GenericTranslator, SelectorError
from cssselect.xpath import ExpressionError
from lxml import html as lxml_html

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def _literal(text: str) -> str:
    """An XPath 1.0 string literal for any text (quotes included)."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in text.split("'")) + ")"


def _argument(function) -> str:
    args = [t.value for t in function.arguments if t.type in ("STRING", "IDENT")]
    if len(args) != 1:
        raise ExpressionError(f":{function.name}() takes one quoted text")
    return args[0]


class _Translator(GenericTranslator):
    """cssselect with Playwright's text pseudo-classes."""

    def xpath_text_is_function(self, xpath, function):
        value = " ".join(_argument(function).split())
        return xpath.add_condition(f"normalize-space(string(.)) = {_literal(value)}")

    def xpath_has_text_function(self, xpath, function):
        value = " ".join(_argument(function).split()).translate(str.maketrans(_UPPER, _LOWER))
        lowered = f"translate(normalize-space(string(.)), '{_UPPER}', '{_LOWER}')"
        return xpath.add_condition(f"contains({lowered}, {_literal(value)})")


_TRANSLATOR = _Translator()
_UNSUPPORTED = re.compile(r">>|:text-matches\(|:visible|:nth-match\(|^(text|css|xpath|id|data-testid)=")


@functools.lru_cache(maxsize=4096)
def xpath_of(selector: str) -> str:
    """The XPath of a selector; ValueError saying what is not supported."""
    bad = _UNSUPPORTED.search(selector.strip())
    if bad:
        raise ValueError(f"selector {selector!r}: {bad.group(0)!r} needs a browser (the plain HTTP path reads "
                         "CSS, :has(), :text-is() and :has-text())")
    try:
        return _TRANSLATOR.css_to_xpath(selector)
    except (SelectorError, ExpressionError) as e:
        raise ValueError(f"selector {selector!r}: {e}") from None


def check(selector: str) -> None:
    """Raises ValueError when the plain path cannot evaluate `selector`."""
    xpath_of(selector)


def parse(text: str):
    """A page's HTML as an lxml tree (an empty document for an empty answer)."""
    return lxml_html.document_fromstring(text or "<html></html>")


def select(root, selector: str) -> list:
    return root.xpath(xpath_of(selector))


def select_in(elements: list, selector: str) -> list:
    """`rows.locator(sel)`: the matches of `selector` inside each of `elements`, in order."""
    xp = xpath_of(selector)
    # cssselect's XPath starts with "descendant-or-self::": inside an element, only below it.
    inner = "descendant::" + xp[len("descendant-or-self::"):] if xp.startswith("descendant-or-self::") else xp
    out = []
    for e in elements:
        out.extend(e.xpath(inner))
    return out


def text_of(element) -> str:
    return element.text_content() if hasattr(element, "text_content") else str(element)
