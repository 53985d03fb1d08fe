"""findings.cve: the CVE a finding's evidence names, written by ingest with the finding and
computed here for the findings stored before; an index of the failing known-exploited findings
by CVE in camera order (docs/adr/0035)

Revision ID: 0015_finding_columns
Revises: 0014_survey_lists
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_finding_columns"
down_revision = "0014_survey_lists"
branch_labels = None
depends_on = None

# server.storage.models.KEV_FAILING and CVE_MAX when this revision was written
KEV_FAILING = "code = 'fw.known_exploited' AND status = 'fail'"
CVE_MAX = 32


def upgrade() -> None:
    with op.batch_alter_table("findings") as batch:
        batch.add_column(sa.Column("cve", sa.String(length=CVE_MAX), nullable=True))
    findings = sa.table("findings", sa.column("evidence", sa.JSON()), sa.column("cve", sa.String()))
    named = findings.c.evidence["cve"].as_string()
    # the ids ingest keeps (server.storage.models.finding_cve): CVE-<year>-<number>, bounded
    op.get_bind().execute(
        findings.update()
        .where(named.like("CVE-%"), sa.func.length(named) <= CVE_MAX)
        .values(cve=named)
    )
    op.create_index(
        "ix_findings_kev_cve",
        "findings",
        ["cve", "agent_id", "camera_id"],
        sqlite_where=sa.text(KEV_FAILING),
        postgresql_where=sa.text(KEV_FAILING),
    )


def downgrade() -> None:
    op.drop_index("ix_findings_kev_cve", table_name="findings")
    with op.batch_alter_table("findings") as batch:
        batch.drop_column("cve")
