"""corpus_entry.merged_out_at: when a corpus merge found the entry redundant (NULL: live).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("corpus_entry") as batch:
        batch.add_column(sa.Column("merged_out_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("corpus_entry") as batch:
        batch.drop_column("merged_out_at")
