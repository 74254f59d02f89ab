"""Column types shared by the models."""

from datetime import datetime, timezone

from sqlalchemy import DateTime, String, Text
from sqlalchemy.types import TypeDecorator

from bot.clock import aware


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes stored as UTC.

    SQLite keeps no offset, so values are converted to UTC on the way in and given back as
    aware UTC datetimes on the way out; naive input means Asia/Shanghai.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = aware(value).astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    def result_processor(self, dialect, coltype):
        """One function per column: a report reads a million of these. SQLite's text in the form
        SQLAlchemy writes ("YYYY-MM-DD HH:MM:SS.ffffff") is read by `datetime.fromisoformat`;
        anything else goes the general way (the dialect's parser, then process_result_value)."""
        general = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite":
            return general
        fromiso, utc = datetime.fromisoformat, timezone.utc

        def process(value):
            if value is None:
                return None
            if value.__class__ is str and len(value) == 26:
                return fromiso(value).replace(tzinfo=utc)
            return general(value) if general is not None else self.process_result_value(value, dialect)

        return process


class VocabString(TypeDecorator):
    """A member of one of the closed vocabularies (bot.vocab), stored as its text.

    The column stays a VARCHAR (no schema change, no database enum to migrate); a value outside
    the vocabulary is refused on the way in and named on the way out, so a misspelled state can
    neither be written nor read back as if it meant something."""

    impl = String(20)
    cache_ok = True

    def __init__(self, enum_cls, length: int = 20):
        super().__init__(length)
        self.enum_cls = enum_cls

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return self.enum_cls(value).value     # ValueError for a name outside the vocabulary

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        try:
            return self.enum_cls(value)
        except ValueError:
            raise ValueError(f"the database holds {value!r}, which is no {self.enum_cls.__name__}") from None

    def result_processor(self, dialect, coltype):
        """A member by a dict look-up (calling the enum is several times slower); what the
        look-up does not know (None, a name outside the vocabulary) goes the general way."""
        general = super().result_processor(dialect, coltype)
        members = {m.value: m for m in self.enum_cls}

        def process(value):
            try:
                return members[value]
            except (KeyError, TypeError):
                return general(value) if general is not None else self.process_result_value(value, dialect)

        return process


def PageText(length: int):  # noqa: N802 - used like a type: mapped_column(PageText(200))
    """Text read from a site's page (a status cell, a replying unit, a displayed time, a
    tracking code or password the site chose, a step name from a template): a site may put any
    amount there. Unbounded TEXT on PostgreSQL, which refuses a value longer than a VARCHAR
    (migration 0008); on SQLite, which ignores lengths, the VARCHAR(length) the earlier
    migrations made, so that no table has to be copied to change it."""
    return String(length).with_variant(Text(), "postgresql")
