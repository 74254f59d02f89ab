"""letters: who answered the captcha (the report says it for every letter)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 22:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('letters') as batch:
        batch.add_column(sa.Column('captcha_by', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('letters') as batch:
        batch.drop_column('captcha_by')
