"""Internet providers' surveys (Directive 23/CT-TTg): declared prefixes, schedules, surveys and
their shards, exposures found, the subscriber map and the notices to subscribers

Revision ID: 0013_survey
Revises: 0012_remediation
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0013_survey"
down_revision = "0012_remediation"
branch_labels = None
depends_on = None


def _time(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _org() -> sa.Column[int]:
    return sa.Column("org_unit_id", sa.Integer(), sa.ForeignKey("org_units.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "survey_prefixes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _org(),
        sa.Column("prefix", sa.String(length=64), nullable=False),
        _time("created_at"),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.UniqueConstraint("prefix"),
    )
    op.create_index("ix_survey_prefixes_org_unit_id", "survey_prefixes", ["org_unit_id"])
    op.create_table(
        "survey_schedules",
        sa.Column("org_unit_id", sa.Integer(), sa.ForeignKey("org_units.id"), primary_key=True),
        sa.Column("every_days", sa.Integer(), nullable=False),
        sa.Column("agents", sa.JSON(), nullable=False),
        _time("next_at"),
        _time("updated_at"),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
    )
    op.create_table(
        "surveys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _org(),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("prefixes", sa.JSON(), nullable=False),
        sa.Column("addresses", sa.BigInteger(), nullable=False),
        _time("started_at"),
        sa.Column("started_by", sa.String(length=64), nullable=False),
        _time("finished_at", nullable=True),
    )
    op.create_index("ix_surveys_org_unit_id", "surveys", ["org_unit_id"])
    op.create_table(
        "survey_shards",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("survey_id", sa.Integer(), sa.ForeignKey("surveys.id"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("blocks", sa.JSON(), nullable=False),
        sa.Column("addresses", sa.BigInteger(), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("command_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("done", sa.BigInteger(), nullable=False),
        sa.Column("parts", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        _time("updated_at"),
    )
    op.create_index("ix_survey_shards_survey_id", "survey_shards", ["survey_id"])
    op.create_index("ix_survey_shards_command", "survey_shards", ["command_id"])
    op.create_table(
        "subscriber_holdings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _org(),
        sa.Column("prefix", sa.String(length=64), nullable=False),
        sa.Column("subscriber_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=False),
        sa.Column("province", sa.String(length=100), nullable=False),
        sa.Column("district", sa.String(length=100), nullable=False),
        _time("valid_from"),
        _time("valid_to", nullable=True),
        _time("imported_at"),
        sa.Column("imported_by", sa.String(length=64), nullable=False),
        sa.UniqueConstraint("org_unit_id", "prefix", "valid_from", name="uq_subscriber_holdings"),
    )
    op.create_index("ix_subscriber_holdings_org_unit_id", "subscriber_holdings", ["org_unit_id"])
    op.create_table(
        "survey_exposures",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("survey_id", sa.Integer(), sa.ForeignKey("surveys.id"), nullable=False),
        sa.Column("shard_id", sa.Integer(), sa.ForeignKey("survey_shards.id"), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("vendor", sa.String(length=128), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("code", sa.String(length=80), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        _time("observed_at"),
        sa.Column(
            "holding_id", sa.Integer(), sa.ForeignKey("subscriber_holdings.id"), nullable=True
        ),
        sa.UniqueConstraint("survey_id", "address", "port", "code", name="uq_survey_exposures"),
    )
    op.create_index("ix_survey_exposures_survey_id", "survey_exposures", ["survey_id"])
    op.create_table(
        "survey_hosts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("survey_id", sa.Integer(), sa.ForeignKey("surveys.id"), nullable=False),
        sa.Column("shard_id", sa.Integer(), sa.ForeignKey("survey_shards.id"), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("ports", sa.JSON(), nullable=False),
        sa.Column("vendor", sa.String(length=128), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("firmware", sa.String(length=128), nullable=True),
        sa.Column("complete", sa.Boolean(), nullable=False),
        _time("observed_at"),
        sa.Column(
            "holding_id", sa.Integer(), sa.ForeignKey("subscriber_holdings.id"), nullable=True
        ),
        sa.UniqueConstraint("survey_id", "address", name="uq_survey_hosts"),
    )
    op.create_index("ix_survey_hosts_survey_id", "survey_hosts", ["survey_id"])
    op.create_table(
        "survey_notices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("survey_id", sa.Integer(), sa.ForeignKey("surveys.id"), nullable=False),
        _org(),
        sa.Column("subscriber_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("fixed_by_survey", sa.Integer(), nullable=True),
        sa.UniqueConstraint("survey_id", "org_unit_id", "subscriber_id", name="uq_survey_notices"),
    )
    op.create_index("ix_survey_notices_survey_id", "survey_notices", ["survey_id"])
    op.create_index("ix_survey_notices_org_unit_id", "survey_notices", ["org_unit_id"])


def downgrade() -> None:
    for table in (
        "survey_notices",
        "survey_hosts",
        "survey_exposures",
        "subscriber_holdings",
        "survey_shards",
        "surveys",
        "survey_schedules",
        "survey_prefixes",
    ):
        op.drop_table(table)
