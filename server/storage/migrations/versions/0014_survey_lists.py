"""A provider's survey exclusion list and its subscribers' opt-out list

Revision ID: 0014_survey_lists
Revises: 0013_survey
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_survey_lists"
down_revision = "0013_survey"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "survey_list_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("org_unit_id", sa.Integer(), sa.ForeignKey("org_units.id"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("prefix", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.UniqueConstraint("org_unit_id", "kind", "prefix"),
    )
    op.create_index("ix_survey_list_entries_org_unit_id", "survey_list_entries", ["org_unit_id"])


def downgrade() -> None:
    op.drop_index("ix_survey_list_entries_org_unit_id", table_name="survey_list_entries")
    op.drop_table("survey_list_entries")
