"""dashboard summaries: each camera's failed findings per severity (kept by ingest with the
findings), computed here for the cameras stored before; a partial index of the failing
known-exploited findings;
the time zone of an organisation unit (docs/adr/0035)

Revision ID: 0011_dashboard_summaries
Revises: 0010_register_firmware
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_dashboard_summaries"
down_revision = "0010_register_firmware"
branch_labels = None
depends_on = None

SEVERITIES = ("critical", "high", "medium", "low", "info")
# server.storage.models.KEV_FAILING when this revision was written
KEV_FAILING = "code = 'fw.known_exploited' AND status = 'fail'"


def upgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        for severity in SEVERITIES:
            batch.add_column(
                sa.Column(f"fail_{severity}", sa.Integer(), server_default="0", nullable=False)
            )
    findings = sa.table(
        "findings",
        sa.column("agent_id", sa.String()),
        sa.column("camera_id", sa.String()),
        sa.column("status", sa.String()),
        sa.column("severity", sa.String()),
    )
    cameras = sa.table(
        "cameras",
        sa.column("agent_id", sa.String()),
        sa.column("camera_id", sa.String()),
        *(sa.column(f"fail_{severity}", sa.Integer()) for severity in SEVERITIES),
    )

    def failed(severity: str) -> sa.ScalarSelect[int]:
        return (
            sa.select(sa.func.count())
            .where(
                findings.c.agent_id == cameras.c.agent_id,
                findings.c.camera_id == cameras.c.camera_id,
                findings.c.status == "fail",
                findings.c.severity == severity,
            )
            .scalar_subquery()
        )

    op.get_bind().execute(
        cameras.update().values({f"fail_{severity}": failed(severity) for severity in SEVERITIES})
    )
    op.create_index(
        "ix_findings_kev",
        "findings",
        ["agent_id", "camera_id"],
        sqlite_where=sa.text(KEV_FAILING),
        postgresql_where=sa.text(KEV_FAILING),
    )
    with op.batch_alter_table("org_units") as batch:
        batch.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("org_units") as batch:
        batch.drop_column("timezone")
    op.drop_index("ix_findings_kev", table_name="findings")
    with op.batch_alter_table("cameras") as batch:
        for severity in SEVERITIES:
            batch.drop_column(f"fail_{severity}")
