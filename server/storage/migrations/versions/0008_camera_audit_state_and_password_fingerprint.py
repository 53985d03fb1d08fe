"""cameras: audit state and reason; keyed password fingerprint, indexed (AUTH-03 reuse sets);
alert routes that carried critical findings also carry cameras that could not be audited

Revision ID: 0008_camera_audit_state
Revises: 0007_login_throttle
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_camera_audit_state"
down_revision = "0007_login_throttle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # rows stored before this revision came from reports without an audit state: not audited
    op.add_column(
        "cameras",
        sa.Column("audit", sa.String(length=16), server_default="not_audited", nullable=False),
    )
    op.add_column("cameras", sa.Column("audit_reason", sa.String(length=512), nullable=True))
    op.add_column("cameras", sa.Column("password_key_id", sa.String(length=16), nullable=True))
    op.add_column("cameras", sa.Column("password_fingerprint", sa.String(length=64), nullable=True))
    op.create_index("ix_cameras_password", "cameras", ["password_key_id", "password_fingerprint"])
    routes = sa.table("alert_routes", sa.column("id", sa.Integer()), sa.column("kinds", sa.JSON()))
    conn = op.get_bind()
    for route_id, kinds in conn.execute(sa.select(routes.c.id, routes.c.kinds)).all():
        if "finding" in kinds and "audit" not in kinds:
            conn.execute(
                routes.update()
                .where(routes.c.id == route_id)
                .values(kinds=sorted([*kinds, "audit"]))
            )


def downgrade() -> None:
    routes = sa.table("alert_routes", sa.column("id", sa.Integer()), sa.column("kinds", sa.JSON()))
    conn = op.get_bind()
    for route_id, kinds in conn.execute(sa.select(routes.c.id, routes.c.kinds)).all():
        if "audit" in kinds:
            kept = [k for k in kinds if k != "audit"] or ["finding"]
            conn.execute(routes.update().where(routes.c.id == route_id).values(kinds=kept))
    op.drop_index("ix_cameras_password", table_name="cameras")
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("password_fingerprint")
        batch.drop_column("password_key_id")
        batch.drop_column("audit_reason")
        batch.drop_column("audit")
