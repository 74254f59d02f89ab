"""The read-only dashboard (`mailbox-bot serve`): campaigns and their progress, one campaign's
table with its charts and filters, one letter's timeline with its evidence, the trend pages.

It writes nothing. Every text a site supplied is escaped by Jinja's autoescaping; no page
carries a script, and the Content-Security-Policy forbids one; evidence HTML is shown as text,
or in a sandboxed frame served with a `sandbox` CSP (no script, an opaque origin).
"""
