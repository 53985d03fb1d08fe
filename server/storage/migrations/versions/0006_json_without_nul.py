"""json without NUL: on PostgreSQL a camera identity or finding evidence may not hold U+0000

PostgreSQL's ``json`` type keeps the escape ``\\u0000`` that its text columns refuse, and then
every query that reads a field out of it (``identity ->> 'vendor'``: the findings page, its
filters) fails. Rows that hold one are cleaned (NUL removed), then a CHECK constraint refuses
them, so such a value is refused when stored like any other NUL. SQLite stores and reads NUL.
The check looks for the six characters ``\\u0000`` in the JSON text: a device string holding a
literal backslash before ``u0000`` is refused too (and cleaned here), erring on the safe side.

Revision ID: 0006_json_without_nul
Revises: 0005_results_by_seq
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006_json_without_nul"
down_revision = "0005_results_by_seq"
branch_labels = None
depends_on = None

NUL_ESCAPE = "\\u0000"
COLUMNS = (("cameras", "identity"), ("findings", "evidence"), ("findings", "controls"))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "").replace(NUL_ESCAPE, "")
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, column in COLUMNS:  # names from the constant above, never from input
        holding = sa.text(
            f"SELECT ctid::text AS row, {column}::text AS doc FROM {table} "  # noqa: S608
            f"WHERE strpos({column}::text, :nul) > 0"
        )
        clean = sa.text(
            f"UPDATE {table} SET {column} = CAST(:doc AS json) WHERE ctid = CAST(:row AS tid)"  # noqa: S608
        )
        for row in bind.execute(holding, {"nul": NUL_ESCAPE}).all():
            bind.execute(clean, {"doc": json.dumps(_clean(json.loads(row.doc))), "row": row.row})
        op.create_check_constraint(
            f"ck_{table}_{column}_no_nul",
            table,
            sa.text(f"strpos({column}::text, E'\\\\u0000') = 0"),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.drop_constraint(f"ck_{table}_{column}_no_nul", table, type_="check")
