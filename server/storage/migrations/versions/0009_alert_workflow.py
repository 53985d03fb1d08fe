"""alert_events: acknowledged, silenced until, assigned to; alert_actions: their history

Revision ID: 0009_alert_workflow
Revises: 0008_camera_audit_state
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_alert_workflow"
down_revision = "0008_camera_audit_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_events") as batch:
        batch.add_column(sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("acknowledged_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("silenced_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_alert_events_assignee_id_users", "users", ["assignee_id"], ["id"]
        )
    op.create_table(
        "alert_actions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("alert_events.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assignee", sa.String(length=64), nullable=True),
    )
    op.create_index("ix_alert_actions_event_id", "alert_actions", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_actions_event_id", table_name="alert_actions")
    op.drop_table("alert_actions")
    with op.batch_alter_table("alert_events") as batch:
        batch.drop_constraint("fk_alert_events_assignee_id_users", type_="foreignkey")
        batch.drop_column("assignee_id")
        batch.drop_column("silenced_until")
        batch.drop_column("acknowledged_by")
        batch.drop_column("acknowledged_at")
