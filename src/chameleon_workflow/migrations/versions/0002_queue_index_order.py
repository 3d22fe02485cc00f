"""Queue index carries the claim order, so a checkout reads its UOW without sorting the backlog.

``claim_next`` asks for the oldest PENDING UOW of an interaction (``created_at``, then
``uow_id``). With those columns behind ``(current_interaction_id, status)`` the database
walks the index in claim order and stops at the first row it can lock, however many UOWs
are waiting.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OLD = ["current_interaction_id", "status"]
_NEW = ["current_interaction_id", "status", "created_at", "uow_id"]


def upgrade() -> None:
    op.drop_index("ix_units_of_work_queue", table_name="units_of_work")
    op.create_index("ix_units_of_work_queue", "units_of_work", _NEW, unique=False)


def downgrade() -> None:
    op.drop_index("ix_units_of_work_queue", table_name="units_of_work")
    op.create_index("ix_units_of_work_queue", "units_of_work", _OLD, unique=False)
