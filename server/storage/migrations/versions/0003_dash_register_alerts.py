"""model register, alerts, daily trend snapshots, retention stubs; findings-list index

Revision ID: 0003_dash
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_dash"
down_revision = "0002"
branch_labels = None
depends_on = None

# server.storage.org_models.SEVERITY_RANK_SQL when this revision was written
_RANK = (
    "CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 "
    "WHEN 'low' THEN 3 WHEN 'info' THEN 4 ELSE 99 END"
)


def upgrade() -> None:
    op.create_table(
        "model_register",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vendor", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("hardware_id", sa.String(length=128), nullable=True),
        sa.Column("vendor_key", sa.String(length=128), nullable=False),
        sa.Column("model_key", sa.String(length=128), nullable=False),
        sa.Column("hardware_key", sa.String(length=128), nullable=False),
        sa.Column("certificate_number", sa.String(length=64), nullable=True),
        sa.Column("certificate_issuer", sa.String(length=200), nullable=True),
        sa.Column("certificate_date", sa.Date(), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("flag_reason", sa.String(length=512), nullable=True),
        sa.Column("flag_reference", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vendor_key", "model_key", "hardware_key", name="uq_model_register"),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=80), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_alert_events_key", "alert_events", ["kind", "agent_id", "camera_id", "code"]
    )
    op.create_index("ix_alert_events_opened", "alert_events", ["opened_at"])
    op.create_table(
        "alert_routes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=512), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=True),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_unit_id"], ["org_units.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_routes_org_unit_id", "alert_routes", ["org_unit_id"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("route_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=512), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["alert_events.id"]),
        sa.ForeignKeyConstraint(["route_id"], ["alert_routes.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "route_id", name="uq_alert_deliveries"),
    )
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["state", "next_attempt_at"])
    op.create_index("ix_alert_deliveries_route_id", "alert_deliveries", ["route_id"])
    op.create_table(
        "daily_snapshots",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("open_findings", sa.Integer(), nullable=False),
        sa.Column("cameras", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "site", "severity"),
    )
    op.create_table(
        "pruned_messages",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("prev", sa.String(length=64), nullable=False),
        sa.Column("prev_seq", sa.BigInteger(), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archive", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("agent_id", "seq"),
    )
    # the findings list is ordered by severity rank, agent, camera, id: walking this index
    # replaces sorting every joined row (the unfiltered list on PostgreSQL; SQLite is fast
    # without it and cannot reflect expression indexes)
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_findings_list",
            "findings",
            [sa.text(f"({_RANK})"), "agent_id", "camera_id", "id"],
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_findings_list", table_name="findings")
    op.drop_table("pruned_messages")
    op.drop_table("daily_snapshots")
    op.drop_index("ix_alert_deliveries_route_id", table_name="alert_deliveries")
    op.drop_index("ix_alert_deliveries_due", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index("ix_alert_routes_org_unit_id", table_name="alert_routes")
    op.drop_table("alert_routes")
    op.drop_index("ix_alert_events_opened", table_name="alert_events")
    op.drop_index("ix_alert_events_key", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_table("model_register")
