"""mail channel: IMAP folder state and the messages read

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mail_folder_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=200), nullable=False),
    sa.Column('folder', sa.String(length=200), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=True),
    sa.Column('last_uid', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account', 'folder', name='uq_mail_folder_state_account_folder')
    )
    op.create_table('mail_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=200), nullable=False),
    sa.Column('folder', sa.String(length=200), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('uid', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.String(length=500), nullable=False),
    sa.Column('internaldate', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_header', sa.DateTime(timezone=True), nullable=True),
    sa.Column('from_addr', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('letter_id', sa.Integer(), nullable=True),
    sa.Column('matched_by', sa.String(length=20), nullable=True),
    sa.Column('eml_evidence_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['eml_evidence_id'], ['evidence_files.id'], ),
    sa.ForeignKeyConstraint(['letter_id'], ['letters.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account', 'message_id', 'internaldate', 'size', name='uq_mail_messages_dedup')
    )
    with op.batch_alter_table('mail_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_messages_letter_id'), ['letter_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mail_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_messages_letter_id'))

    op.drop_table('mail_messages')
    op.drop_table('mail_folder_state')
