"""results by seq: the firmware scheduler reads command results per agent and seq, no cursor

Revision ID: 0005_results_by_seq
Revises: 0004_firmware
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_results_by_seq"
down_revision = "0004_firmware"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("firmware_cursor")


def downgrade() -> None:
    op.create_table(
        "firmware_cursor",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
