"""remediation: rollouts of any signed command (the action, per-target params, no image
needed) and the per-camera items of a remediation plan (changes, sealed snapshot, results)

Revision ID: 0012_remediation
Revises: 0011_dashboard_summaries
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_remediation"
down_revision = "0011_dashboard_summaries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rollouts") as batch:
        batch.add_column(
            sa.Column(
                "action", sa.String(length=80), server_default="firmware.apply", nullable=False
            )
        )
        batch.alter_column("image_id", existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table("rollout_targets") as batch:
        batch.add_column(sa.Column("params", sa.JSON(), nullable=True))
    op.create_table(
        "remediation_items",
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("controls", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("outcome_reason", sa.String(length=80), nullable=True),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("reaudit", sa.JSON(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=True),
        sa.Column("rollback_command_id", sa.String(length=64), nullable=True),
        sa.Column("rollback_status", sa.String(length=16), nullable=True),
        sa.Column("rollback_reason", sa.String(length=80), nullable=True),
        sa.Column("rollback_results", sa.JSON(), nullable=False),
        sa.Column("rollback_by", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"]),
        sa.PrimaryKeyConstraint("rollout_id", "agent_id", "camera_id"),
    )
    op.create_index("ix_remediation_items_rollback", "remediation_items", ["rollback_command_id"])


def downgrade() -> None:
    op.drop_index("ix_remediation_items_rollback", table_name="remediation_items")
    op.drop_table("remediation_items")
    rollouts = sa.table("rollouts", sa.column("id", sa.Integer()), sa.column("action", sa.String()))
    targets = sa.table("rollout_targets", sa.column("rollout_id", sa.Integer()))
    events = sa.table("rollout_events", sa.column("rollout_id", sa.Integer()))
    others = sa.select(rollouts.c.id).where(rollouts.c.action != "firmware.apply")
    bind = op.get_bind()
    bind.execute(targets.delete().where(targets.c.rollout_id.in_(others)))
    bind.execute(events.delete().where(events.c.rollout_id.in_(others)))
    bind.execute(rollouts.delete().where(rollouts.c.action != "firmware.apply"))
    with op.batch_alter_table("rollout_targets") as batch:
        batch.drop_column("params")
    with op.batch_alter_table("rollouts") as batch:
        batch.alter_column("image_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("action")
