"""model register: the regulation each certificate was issued under, and the firmware it
covers (a certificate covers a firmware, not only a model); the unique key gains the firmware

Revision ID: 0010_register_firmware
Revises: 0009_alert_workflow
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_register_firmware"
down_revision = "0009_alert_workflow"
branch_labels = None
depends_on = None

# the certificates on record before this revision were all issued under the old regulation
OLD_REGULATION = "QCVN 135:2024/BTTTT"


def upgrade() -> None:
    with op.batch_alter_table("model_register") as batch:
        batch.add_column(sa.Column("regulation", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("firmware", sa.String(length=128), nullable=True))
        batch.add_column(
            sa.Column("firmware_key", sa.String(length=128), server_default="", nullable=False)
        )
        batch.drop_constraint("uq_model_register", type_="unique")
        batch.create_unique_constraint(
            "uq_model_register", ["vendor_key", "model_key", "hardware_key", "firmware_key"]
        )
    register = sa.table(
        "model_register",
        sa.column("certificate_number", sa.String()),
        sa.column("regulation", sa.String()),
    )
    op.get_bind().execute(
        register.update()
        .where(register.c.certificate_number.is_not(None))
        .values(regulation=OLD_REGULATION)
    )


def downgrade() -> None:
    register = sa.table("model_register", sa.column("firmware_key", sa.String()))
    # entries that differ only by firmware cannot all stay under the old key
    op.get_bind().execute(register.delete().where(register.c.firmware_key != ""))
    with op.batch_alter_table("model_register") as batch:
        batch.drop_constraint("uq_model_register", type_="unique")
        batch.create_unique_constraint(
            "uq_model_register", ["vendor_key", "model_key", "hardware_key"]
        )
        batch.drop_column("firmware_key")
        batch.drop_column("firmware")
        batch.drop_column("regulation")
