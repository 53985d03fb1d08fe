"""login throttle: failed sign-ins per account and per source address, and their locks

Revision ID: 0007_login_throttle
Revises: 0006_json_without_nul
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_login_throttle"
down_revision = "0006_json_without_nul"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
