"""The product knows nothing of the sandbox (STYLE.md 12): no module of the product imports
`bot.sandbox`. Only the sandbox's own doors do: the `demo` and `sandbox` commands. The sandbox,
for its part, keeps its own copy of what it needs to be a website (a mailbox's label) and uses
the product only as a user would, to play a campaign (`bot.sandbox.play`)."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).resolve().parent.parent / "bot"
SANDBOX_DOORS = {BOT / "cli" / "demo_cmd.py", BOT / "cli" / "sandbox_cmd.py", BOT / "cli" / "__init__.py"}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_no_product_module_imports_the_sandbox():
    product = [p for p in BOT.rglob("*.py") if BOT / "sandbox" not in p.parents and p not in SANDBOX_DOORS]
    assert len(product) > 50
    offenders = {str(p.relative_to(BOT)): sorted(m for m in imports(p) if m == "bot.sandbox" or m.startswith("bot.sandbox."))
                 for p in product}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_cli_reaches_the_sandbox_only_through_its_doors():
    # bot/cli/__init__.py registers the demo and sandbox commands; it must not import the sandbox itself.
    assert not [m for m in imports(BOT / "cli" / "__init__.py") if m.startswith("bot.sandbox")]


def test_the_sandbox_pages_do_not_borrow_the_products_rules():
    """The sandbox's websites (pages, behaviour, traffic) import nothing of the product's scenario,
    campaign, browser or report code: a bug there must not be mirrored by the sites."""
    sites = [p for p in (BOT / "sandbox").rglob("*.py") if p.name not in ("play.py", "mailserver.py")]
    borrowed = {str(p.relative_to(BOT)): sorted(m for m in imports(p) if m.startswith(
        ("bot.scenario", "bot.campaign", "bot.browser", "bot.report", "bot.mail", "bot.letters")))
        for p in sites}
    assert {k: v for k, v in borrowed.items() if v} == {}
