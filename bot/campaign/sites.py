"""Registering sites and their mailboxes in the database from site records."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.scenario.schema import SiteRecord
from bot.store.models import Mailbox, Site


def register_site(session: Session, record: SiteRecord, order: int, source: str = "") -> Site:
    """Insert or update the site row for this record (same key and valid_from) and its mailboxes."""
    site = session.scalar(select(Site).where(Site.key == record.key, Site.valid_from.is_(record.valid_from)
                                             if record.valid_from is None else Site.valid_from == record.valid_from))
    if site is None:
        site = Site(key=record.key)
        session.add(site)
    site.name, site.group, site.host_unit = record.name, record.group, record.host_unit
    site.base_url, site.platform = record.base_url, record.platform
    site.platform_version = record.platform_version or 1
    site.region, site.roster_order = record.region, order
    site.valid_from, site.valid_to, site.source = record.valid_from, record.valid_to, source
    site.moderated = record.moderated
    session.flush()
    existing = {m.kind: m for m in site.mailboxes}
    for kind in record.mailboxes:
        if kind not in existing:
            site.mailboxes.append(Mailbox(kind=kind, label=record.mailbox_label(kind)))
        else:
            existing[kind].label = record.mailbox_label(kind)
    session.flush()
    return site
