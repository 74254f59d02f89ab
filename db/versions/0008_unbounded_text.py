"""text read from site pages is unbounded on PostgreSQL (status cell, replying unit, displayed
time, tracking code, password, evidence step name): PostgreSQL refuses a value longer than its
VARCHAR where SQLite ignores the length, so a poll or the record of a successful submission
failed. SQLite is left as it is (no table copies for a length it never enforced).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 23:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

COLUMNS = [
    ('letters', 'tracking_code', 100),
    ('letters', 'password', 100),
    ('evidence_files', 'step', 200),
    ('observations', 'site_status', 50),
    ('observations', 'reply_unit', 200),
    ('observations', 'displayed_raw', 100),
    ('replies', 'unit', 200),
]


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        return
    for table, column, length in COLUMNS:
        op.alter_column(table, column, type_=sa.Text(), existing_type=sa.String(length=length))


def downgrade() -> None:
    # Back to the old lengths: a longer value is cut to fit (the old schema cannot hold it).
    if op.get_bind().dialect.name == 'sqlite':
        return
    for table, column, length in COLUMNS:
        op.alter_column(table, column, type_=sa.String(length=length), existing_type=sa.Text(),
                        postgresql_using=f'left({column}, {length})')
