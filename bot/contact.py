"""Made-up contact data never reaches real people.

A letter without an inspector identity carries a made-up name, mobile number and email address.
A practice site answers nobody; a real government site calls, texts or writes back, and a
made-up number or address may well be a stranger's. So the letter writer makes up addresses
only at the domains reserved for examples (`RESERVED_EMAIL_DOMAINS`), and a letter to a site
that may be real is planned or sent only as an identity with the inspector's own phone and a
reply address (`contact_problem`, used by `campaign plan`/`start` and `replay --submit`).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

# RFC 2606: second-level names reserved for examples; nobody can receive mail there.
RESERVED_EMAIL_DOMAINS = ("example.org", "example.com", "example.net")
# RFC 2606 / RFC 6761 top-level names that are never delegated on the public internet.
RESERVED_TLDS = ("test", "example", "invalid", "localhost")


def is_test_host(url: str) -> bool:
    """True when the host of the URL `url` (a site's base_url) cannot be a real site: a loopback
    address, localhost or *.localhost, a name under .test, .example or .invalid, or example.com,
    example.net, example.org and their subdomains (RFC 2606, RFC 6761).

    Why a rule about names: the product knows nothing of the sandbox (STYLE.md 12). Anything
    else, a private address included, may be a real office's server, so it gets the care a real
    site gets."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if not host:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        labels = host.split(".")
        return labels[-1] in RESERVED_TLDS or ".".join(labels[-2:]) in RESERVED_EMAIL_DOMAINS
    mapped = getattr(addr, "ipv4_mapped", None)
    return addr.is_loopback or (mapped is not None and mapped.is_loopback)


def contact_problem(site: str, base_url: str, identity: Any, *, key: str, accounts: str = "") -> str | None:
    """None when a letter to `site` may be sent as `identity` (None: made-up contact data);
    else one line saying what is missing, naming the site, the `key` that gives the identity
    (a campaign file's 'identities', or --identity) and the value."""
    if is_test_host(base_url):
        return None
    host = urlsplit(base_url).hostname or base_url
    real = f"site {site} ({host}) may be a real site"
    if identity is None:
        return (f"{key}: none given, but {real}: a made-up phone number and email address could "
                "reach a stranger; send as an inspector identity with phone and email from the "
                f"accounts file{f' {accounts}' if accounts else ''}")
    where = f" in {accounts}" if accounts else ""
    if not getattr(identity, "phone", ""):
        return (f"{key}: identity {identity.name!r} has no phone (phone = \"\"{where}), but {real}: "
                "a made-up mobile number could be a stranger's; set phone to the inspector's own mobile")
    if not getattr(identity, "email", ""):
        return (f"{key}: identity {identity.name!r} has no email (email = \"\"{where}), but {real}: "
                "replies need the inspector's own address; set email")
    return None
