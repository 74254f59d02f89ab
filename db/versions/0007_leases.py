"""leases: who may do a thing for how long, across daemons sharing one database (a daemon's
presence, a singleton job, an IMAP account's sync, the next turn at a host)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 14:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('leases',
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('leases')
