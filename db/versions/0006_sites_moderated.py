"""sites: whether the site publishes letters only after its staff review them (a moderated board)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sites') as batch:
        # Until its deadline, a letter such a site has not published is awaiting publication,
        # not "never visible".
        batch.add_column(sa.Column('moderated', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('sites') as batch:
        batch.drop_column('moderated')
