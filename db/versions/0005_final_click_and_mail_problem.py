"""letters: the moment just before the final click and how the last attempt ended;
mail_messages: why a message could not be stored as it came (kept, unmatched, with its reason)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('letters') as batch:
        # Committed before the click that sends the letter: an expired claim without it can have
        # sent nothing (back to planned); with it, the letter may have gone (submit_uncertain).
        batch.add_column(sa.Column('final_click_at', sa.DateTime(timezone=True), nullable=True))
        # How the last submission attempt ended (a FlowOutcome: blocked, rejected, failed, ...),
        # so that a row's status never depends on the wording of `failure`.
        batch.add_column(sa.Column('failure_kind', sa.String(length=20), nullable=True))
    with op.batch_alter_table('mail_messages') as batch:
        batch.add_column(sa.Column('problem', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('mail_messages') as batch:
        batch.drop_column('problem')
    with op.batch_alter_table('letters') as batch:
        batch.drop_column('failure_kind')
        batch.drop_column('final_click_at')
