"""Leaner indexes on units_of_work: each one serves a query, and the queue stays still.

Every save rewrites the UOW row, and every index whose columns the UPDATE sets (SQLite)
or that covers the row at all (PostgreSQL, whose moving rows are not HOT-updated) is
written with it. Of the six secondary indexes:

- ``ix_units_of_work_held_by_actor_id`` served no query (no code filters or joins on the
  holder, and actors are never deleted): dropped.
- ``ix_units_of_work_queue`` becomes partial, ``(current_interaction_id, created_at,
  uow_id) WHERE status = 'PENDING'``: the claim (``Queue.claim_next``) reads the oldest
  PENDING UOW of an interaction straight off it, and a UOW that is ACTIVE, paused or done
  is not in it at all, so its saves never touch it.
- ``ix_units_of_work_status_heartbeat`` becomes ``ix_units_of_work_stale``,
  ``(last_heartbeat_at) WHERE status = 'ACTIVE'``: the reaper's sweep
  (``Queue.stale_uow_ids``) reads only ACTIVE UOWs, so a PENDING UOW's heartbeat or move
  no longer rewrites it.
- ``instance_id``, ``local_workflow_id`` and ``parent_id`` stay: listings and exports of
  one instance, ``chameleon list --workflow`` and the fan-out's child queries read them,
  and no save sets those columns.

The queries that use the partial indexes spell the status as a literal, so that even a
PostgreSQL generic plan (a parameter it cannot see) matches the index's predicate.
docs/performance.md shows the plans.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_PENDING = "status = 'PENDING'"
_ACTIVE = "status = 'ACTIVE'"


def _partial(name: str, columns: list[str], where: str) -> None:
    clause = sa.text(where)
    op.create_index(
        name,
        "units_of_work",
        columns,
        unique=False,
        sqlite_where=clause,
        postgresql_where=clause,
    )


def upgrade() -> None:
    op.drop_index("ix_units_of_work_held_by_actor_id", table_name="units_of_work")
    op.drop_index("ix_units_of_work_queue", table_name="units_of_work")
    op.drop_index("ix_units_of_work_status_heartbeat", table_name="units_of_work")
    _partial("ix_units_of_work_queue", ["current_interaction_id", "created_at", "uow_id"], _PENDING)
    _partial("ix_units_of_work_stale", ["last_heartbeat_at"], _ACTIVE)


def downgrade() -> None:
    op.drop_index("ix_units_of_work_stale", table_name="units_of_work")
    op.drop_index("ix_units_of_work_queue", table_name="units_of_work")
    op.create_index(
        "ix_units_of_work_queue",
        "units_of_work",
        ["current_interaction_id", "status", "created_at", "uow_id"],
        unique=False,
    )
    op.create_index(
        "ix_units_of_work_status_heartbeat",
        "units_of_work",
        ["status", "last_heartbeat_at"],
        unique=False,
    )
    op.create_index(
        "ix_units_of_work_held_by_actor_id", "units_of_work", ["held_by_actor_id"], unique=False
    )
