"""The variables a scenario's templates may use, and the load-time check of every template.

A flow's strings (URLs, form values, selectors) are Python format strings rendered with the
letter's variables (bot.campaign.worker.flow_variables builds them from these names). A name
the engine does not provide is refused when the template loads, naming the step and the key,
so that a misspelling never surfaces after a letter was claimed.
"""

from __future__ import annotations

from string import Formatter

# {letter.<field>}; phone_last4: the last four digits of the phone, which many query pages ask
# for instead of a password (手机号后四位).
LETTER_FIELDS = ("title", "body", "category", "category_value", "name", "phone", "phone_last4", "email", "password")
# {site.<field>}
SITE_FIELDS = ("name", "host_unit")
# Plain names: {base_url}, {mailbox}, {tracking_code}, {password}
PLAIN = ("base_url", "mailbox", "tracking_code", "password")
# {values.<key>}: the template's [values]; {extracted[<field>]}: what an earlier step read.
KNOWN = PLAIN + tuple(f"letter.{f}" for f in LETTER_FIELDS) + tuple(f"site.{f}" for f in SITE_FIELDS)


def check_template(text: str, values: dict[str, str], page: bool = False) -> str | None:
    """None when every `{...}` of `text` is a known variable, else what is wrong.
    `page`: the `scan` step's page_url, where {page} is the page number."""
    try:
        fields = [f for _, f, _, _ in Formatter().parse(text) if f is not None]
    except ValueError as e:
        return f"{text!r} is not a valid template ({e}); write a literal brace as {{{{ or }}}}"
    for name in fields:
        if name in KNOWN or name.startswith("extracted[") and name.endswith("]"):
            continue
        if name.startswith("values.") and name[len("values."):] in values:
            continue
        if page and name == "page":
            continue
        known = ", ".join("{" + k + "}" for k in KNOWN)
        extra = f", {{values.<key>}} for the keys of [values] ({', '.join(sorted(values)) or 'none'})"
        return (f"unknown variable {{{name}}} in {text!r} (known: {known}{extra}, "
                "{extracted[<field>]} for a value an earlier step read)")
    return None
