"""Leases in the database: one holder at a time, until a moment; taken over once it has passed.

Several daemons share one database (PostgreSQL); what must happen in one of them at a time (a
job, an IMAP account's sync, a submission to a host) is decided here, by one atomic UPDATE, not
by any process's memory. A holder renews its lease while it works; a holder that died lets it
run out, and another takes it over.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.store import models as m
from bot.store.db import Database


def take(db: Database, name: str, holder: str, ttl: timedelta, now: datetime, detail: dict | None = None) -> bool:
    """Takes (or renews) the lease `name` for `holder` until now + ttl; False when another holder
    has it and it has not run out."""
    until = now + ttl
    with db.session() as s:
        got = s.execute(update(m.Lease).where(m.Lease.name == name, or_(m.Lease.holder == holder, m.Lease.until < now))
                        .values(holder=holder, until=until, detail=detail)).rowcount
        if got:
            s.commit()
            return True
        if s.scalar(select(m.Lease.name).where(m.Lease.name == name)) is not None:
            return False
        s.add(m.Lease(name=name, holder=holder, until=until, detail=detail))
        try:
            s.commit()
            return True
        except IntegrityError:          # taken by another at the same moment
            s.rollback()
            return False


def give_back(db: Database, name: str, holder: str) -> None:
    with db.session() as s:
        s.execute(delete(m.Lease).where(m.Lease.name == name, m.Lease.holder == holder))
        s.commit()


def holders(db: Database, prefix: str, now: datetime) -> list[m.Lease]:
    """The live leases whose names start with `prefix`."""
    with db.session() as s:
        return list(s.scalars(select(m.Lease).where(m.Lease.name.startswith(prefix), m.Lease.until >= now)))
