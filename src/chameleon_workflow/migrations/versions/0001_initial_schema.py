"""Initial schema: every table of the specification, append-only triggers included.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from chameleon_workflow.columns import GUID, UTCDateTime
from chameleon_workflow.schema import DROP_PG_FUNCTION, create_statements, drop_statements

#: The tables this revision made append-only (later revisions protect their own).
PROTECTED_0001 = ("uow_history", "uow_attributes", "interaction_logs")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_context",
        sa.Column("instance_id", GUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "ACTIVE",
                "PAUSED",
                "ARCHIVED",
                name="instance_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("deployment_date", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_instance_context")),
        sa.UniqueConstraint("name", name=op.f("uq_instance_context_name")),
    )
    op.create_table(
        "interaction_logs",
        sa.Column("log_id", GUID(), nullable=False),
        sa.Column("instance_id", GUID(), nullable=True),
        sa.Column("uow_id", GUID(), nullable=True),
        sa.Column("actor_id", GUID(), nullable=True),
        sa.Column("role_id", GUID(), nullable=True),
        sa.Column("interaction_id", GUID(), nullable=True),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column(
            "log_type",
            sa.Enum(
                "INTERACTION",
                "TELEMETRY",
                "ERROR",
                "GUARDIAN_DECISION",
                "STATE_TRANSITION",
                "TELEMETRY_LOSS",
                name="log_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "event_details",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "error_metadata",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("log_id", name=op.f("pk_interaction_logs")),
    )
    with op.batch_alter_table("interaction_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interaction_logs_actor_id"), ["actor_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interaction_logs_instance_id"), ["instance_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interaction_logs_interaction_id"), ["interaction_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_interaction_logs_role_id"), ["role_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_interaction_logs_timestamp"), ["timestamp"], unique=False
        )
        batch_op.create_index(
            "ix_interaction_logs_type_time", ["log_type", "timestamp"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_interaction_logs_uow_id"), ["uow_id"], unique=False)

    op.create_table(
        "local_actors",
        sa.Column("actor_id", GUID(), nullable=False),
        sa.Column("instance_id", GUID(), nullable=False),
        sa.Column("identity_key", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "HUMAN",
                "AI_AGENT",
                "SYSTEM",
                name="actor_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "capabilities",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instance_context.instance_id"],
            name=op.f("fk_local_actors_instance_id_instance_context"),
        ),
        sa.PrimaryKeyConstraint("actor_id", name=op.f("pk_local_actors")),
        sa.UniqueConstraint(
            "instance_id", "identity_key", name=op.f("uq_local_actors_instance_id_identity_key")
        ),
        sa.UniqueConstraint("token_hash", name=op.f("uq_local_actors_token_hash")),
    )
    with op.batch_alter_table("local_actors", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_local_actors_instance_id"), ["instance_id"], unique=False
        )

    op.create_table(
        "local_workflows",
        sa.Column("local_workflow_id", GUID(), nullable=False),
        sa.Column("instance_id", GUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=50), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "definition",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instance_context.instance_id"],
            name=op.f("fk_local_workflows_instance_id_instance_context"),
        ),
        sa.PrimaryKeyConstraint("local_workflow_id", name=op.f("pk_local_workflows")),
        sa.UniqueConstraint(
            "instance_id", "name", name=op.f("uq_local_workflows_instance_id_name")
        ),
    )
    with op.batch_alter_table("local_workflows", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_local_workflows_instance_id"), ["instance_id"], unique=False
        )

    op.create_table(
        "local_interactions",
        sa.Column("interaction_id", GUID(), nullable=False),
        sa.Column("instance_id", GUID(), nullable=False),
        sa.Column("local_workflow_id", GUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instance_context.instance_id"],
            name=op.f("fk_local_interactions_instance_id_instance_context"),
        ),
        sa.ForeignKeyConstraint(
            ["local_workflow_id"],
            ["local_workflows.local_workflow_id"],
            name=op.f("fk_local_interactions_local_workflow_id_local_workflows"),
        ),
        sa.PrimaryKeyConstraint("interaction_id", name=op.f("pk_local_interactions")),
        sa.UniqueConstraint(
            "local_workflow_id", "name", name=op.f("uq_local_interactions_local_workflow_id_name")
        ),
    )
    with op.batch_alter_table("local_interactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_local_interactions_instance_id"), ["instance_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_local_interactions_local_workflow_id"),
            ["local_workflow_id"],
            unique=False,
        )

    op.create_table(
        "local_roles",
        sa.Column("role_id", GUID(), nullable=False),
        sa.Column("instance_id", GUID(), nullable=False),
        sa.Column("local_workflow_id", GUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "role_type",
            sa.Enum(
                "ALPHA",
                "BETA",
                "OMEGA",
                "EPSILON",
                "TAU",
                name="role_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instance_context.instance_id"],
            name=op.f("fk_local_roles_instance_id_instance_context"),
        ),
        sa.ForeignKeyConstraint(
            ["local_workflow_id"],
            ["local_workflows.local_workflow_id"],
            name=op.f("fk_local_roles_local_workflow_id_local_workflows"),
        ),
        sa.PrimaryKeyConstraint("role_id", name=op.f("pk_local_roles")),
        sa.UniqueConstraint(
            "local_workflow_id", "name", name=op.f("uq_local_roles_local_workflow_id_name")
        ),
    )
    with op.batch_alter_table("local_roles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_local_roles_instance_id"), ["instance_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_local_roles_local_workflow_id"), ["local_workflow_id"], unique=False
        )

    op.create_table(
        "actor_role_assignments",
        sa.Column("assignment_id", GUID(), nullable=False),
        sa.Column("instance_id", GUID(), nullable=False),
        sa.Column("actor_id", GUID(), nullable=False),
        sa.Column("role_id", GUID(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["local_actors.actor_id"],
            name=op.f("fk_actor_role_assignments_actor_id_local_actors"),
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instance_context.instance_id"],
            name=op.f("fk_actor_role_assignments_instance_id_instance_context"),
        ),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["local_roles.role_id"],
            name=op.f("fk_actor_role_assignments_role_id_local_roles"),
        ),
        sa.PrimaryKeyConstraint("assignment_id", name=op.f("pk_actor_role_assignments")),
        sa.UniqueConstraint(
            "actor_id", "role_id", name=op.f("uq_actor_role_assignments_actor_id_role_id")
        ),
    )
    with op.batch_alter_table("actor_role_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_actor_role_assignments_actor_id"), ["actor_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_actor_role_assignments_instance_id"), ["instance_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_actor_role_assignments_role_id"), ["role_id"], unique=False
        )

    op.create_table(
        "local_components",
        sa.Column("component_id", GUID(), nullable=False),
        sa.Column("instance_id", GUID(), nullable=False),
        sa.Column("local_workflow_id", GUID(), nullable=False),
        sa.Column("role_id", GUID(), nullable=False),
        sa.Column("interaction_id", GUID(), nullable=False),
        sa.Column(
            "direction",
            sa.Enum(
                "INBOUND",
                "OUTBOUND",
                name="direction",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instance_context.instance_id"],
            name=op.f("fk_local_components_instance_id_instance_context"),
        ),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["local_interactions.interaction_id"],
            name=op.f("fk_local_components_interaction_id_local_interactions"),
        ),
        sa.ForeignKeyConstraint(
            ["local_workflow_id"],
            ["local_workflows.local_workflow_id"],
            name=op.f("fk_local_components_local_workflow_id_local_workflows"),
        ),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["local_roles.role_id"],
            name=op.f("fk_local_components_role_id_local_roles"),
        ),
        sa.PrimaryKeyConstraint("component_id", name=op.f("pk_local_components")),
        sa.UniqueConstraint(
            "role_id",
            "interaction_id",
            "direction",
            name=op.f("uq_local_components_role_id_interaction_id_direction"),
        ),
    )
    with op.batch_alter_table("local_components", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_local_components_instance_id"), ["instance_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_local_components_interaction_id"), ["interaction_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_local_components_local_workflow_id"), ["local_workflow_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_local_components_role_id"), ["role_id"], unique=False)

    op.create_table(
        "units_of_work",
        sa.Column("uow_id", GUID(), nullable=False),
        sa.Column("instance_id", GUID(), nullable=False),
        sa.Column("local_workflow_id", GUID(), nullable=False),
        sa.Column("parent_id", GUID(), nullable=True),
        sa.Column("current_interaction_id", GUID(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "ACTIVE",
                "PENDING_PILOT_APPROVAL",
                "ZOMBIED_SOFT",
                "ZOMBIED_DEAD",
                "COMPLETED",
                "FAILED",
                "PAUSED",
                "FAILED_SECURITY_BREACH",
                "ARCHIVED",
                name="uow_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("last_heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("held_by_actor_id", GUID(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("history_sequence", sa.Integer(), nullable=False),
        sa.Column("chain_head", sa.String(length=64), nullable=False),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["current_interaction_id"],
            ["local_interactions.interaction_id"],
            name=op.f("fk_units_of_work_current_interaction_id_local_interactions"),
        ),
        sa.ForeignKeyConstraint(
            ["held_by_actor_id"],
            ["local_actors.actor_id"],
            name=op.f("fk_units_of_work_held_by_actor_id_local_actors"),
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instance_context.instance_id"],
            name=op.f("fk_units_of_work_instance_id_instance_context"),
        ),
        sa.ForeignKeyConstraint(
            ["local_workflow_id"],
            ["local_workflows.local_workflow_id"],
            name=op.f("fk_units_of_work_local_workflow_id_local_workflows"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["units_of_work.uow_id"],
            name=op.f("fk_units_of_work_parent_id_units_of_work"),
        ),
        sa.PrimaryKeyConstraint("uow_id", name=op.f("pk_units_of_work")),
    )
    with op.batch_alter_table("units_of_work", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_units_of_work_held_by_actor_id"), ["held_by_actor_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_units_of_work_instance_id"), ["instance_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_units_of_work_local_workflow_id"), ["local_workflow_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_units_of_work_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(
            "ix_units_of_work_queue", ["current_interaction_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_units_of_work_status_heartbeat", ["status", "last_heartbeat_at"], unique=False
        )

    op.create_table(
        "local_guardians",
        sa.Column("guardian_id", GUID(), nullable=False),
        sa.Column("instance_id", GUID(), nullable=False),
        sa.Column("local_workflow_id", GUID(), nullable=False),
        sa.Column("component_id", GUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "guardian_type",
            sa.Enum(
                "PASS_THRU",
                "CRITERIA_GATE",
                "TTL_CHECK",
                "COMPOSITE",
                "CERBERUS",
                "DIRECTIONAL_FILTER",
                name="guardian_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "config",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["component_id"],
            ["local_components.component_id"],
            name=op.f("fk_local_guardians_component_id_local_components"),
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instance_context.instance_id"],
            name=op.f("fk_local_guardians_instance_id_instance_context"),
        ),
        sa.ForeignKeyConstraint(
            ["local_workflow_id"],
            ["local_workflows.local_workflow_id"],
            name=op.f("fk_local_guardians_local_workflow_id_local_workflows"),
        ),
        sa.PrimaryKeyConstraint("guardian_id", name=op.f("pk_local_guardians")),
        sa.UniqueConstraint(
            "component_id", "name", name=op.f("uq_local_guardians_component_id_name")
        ),
    )
    with op.batch_alter_table("local_guardians", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_local_guardians_component_id"), ["component_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_local_guardians_instance_id"), ["instance_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_local_guardians_local_workflow_id"), ["local_workflow_id"], unique=False
        )

    op.create_table(
        "uow_attributes",
        sa.Column(
            "attribute_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("uow_id", GUID(), nullable=False),
        sa.Column("instance_id", GUID(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "value",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.Column("actor_id", GUID(), nullable=True),
        sa.Column("reasoning", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instance_context.instance_id"],
            name=op.f("fk_uow_attributes_instance_id_instance_context"),
        ),
        sa.ForeignKeyConstraint(
            ["uow_id"],
            ["units_of_work.uow_id"],
            name=op.f("fk_uow_attributes_uow_id_units_of_work"),
        ),
        sa.PrimaryKeyConstraint("attribute_id", name=op.f("pk_uow_attributes")),
        sa.UniqueConstraint(
            "uow_id", "key", "version", name=op.f("uq_uow_attributes_uow_id_key_version")
        ),
    )
    with op.batch_alter_table("uow_attributes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_uow_attributes_instance_id"), ["instance_id"], unique=False
        )

    op.create_table(
        "uow_history",
        sa.Column("history_id", GUID(), nullable=False),
        sa.Column("instance_id", GUID(), nullable=False),
        sa.Column("uow_id", GUID(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column(
            "event_type",
            sa.Enum(
                "CREATED",
                "TRANSITION",
                "ATTRIBUTES",
                "SECURITY_BREACH",
                name="history_event",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "previous_status",
            sa.Enum(
                "PENDING",
                "ACTIVE",
                "PENDING_PILOT_APPROVAL",
                "ZOMBIED_SOFT",
                "ZOMBIED_DEAD",
                "COMPLETED",
                "FAILED",
                "PAUSED",
                "FAILED_SECURITY_BREACH",
                "ARCHIVED",
                name="previous_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column(
            "new_status",
            sa.Enum(
                "PENDING",
                "ACTIVE",
                "PENDING_PILOT_APPROVAL",
                "ZOMBIED_SOFT",
                "ZOMBIED_DEAD",
                "COMPLETED",
                "FAILED",
                "PAUSED",
                "FAILED_SECURITY_BREACH",
                "ARCHIVED",
                name="new_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("previous_state_hash", sa.String(length=64), nullable=True),
        sa.Column("new_state_hash", sa.String(length=64), nullable=False),
        sa.Column("previous_interaction_id", GUID(), nullable=True),
        sa.Column("new_interaction_id", GUID(), nullable=True),
        sa.Column("actor_id", GUID(), nullable=True),
        sa.Column("transition_timestamp", UTCDateTime(), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=True),
        sa.Column(
            "transition_metadata",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "changes",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("chain_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instance_context.instance_id"],
            name=op.f("fk_uow_history_instance_id_instance_context"),
        ),
        sa.ForeignKeyConstraint(
            ["uow_id"], ["units_of_work.uow_id"], name=op.f("fk_uow_history_uow_id_units_of_work")
        ),
        sa.PrimaryKeyConstraint("history_id", name=op.f("pk_uow_history")),
        sa.UniqueConstraint("uow_id", "sequence", name=op.f("uq_uow_history_uow_id_sequence")),
    )
    with op.batch_alter_table("uow_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_uow_history_instance_id"), ["instance_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_uow_history_transition_timestamp"),
            ["transition_timestamp"],
            unique=False,
        )

    for statement in create_statements(op.get_bind().dialect.name, PROTECTED_0001):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in drop_statements(dialect, PROTECTED_0001):
        op.execute(statement)
    if dialect == "postgresql":
        op.execute(DROP_PG_FUNCTION)
    with op.batch_alter_table("uow_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_uow_history_transition_timestamp"))
        batch_op.drop_index(batch_op.f("ix_uow_history_instance_id"))

    op.drop_table("uow_history")
    with op.batch_alter_table("uow_attributes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_uow_attributes_instance_id"))

    op.drop_table("uow_attributes")
    with op.batch_alter_table("local_guardians", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_local_guardians_local_workflow_id"))
        batch_op.drop_index(batch_op.f("ix_local_guardians_instance_id"))
        batch_op.drop_index(batch_op.f("ix_local_guardians_component_id"))

    op.drop_table("local_guardians")
    with op.batch_alter_table("units_of_work", schema=None) as batch_op:
        batch_op.drop_index("ix_units_of_work_status_heartbeat")
        batch_op.drop_index("ix_units_of_work_queue")
        batch_op.drop_index(batch_op.f("ix_units_of_work_parent_id"))
        batch_op.drop_index(batch_op.f("ix_units_of_work_local_workflow_id"))
        batch_op.drop_index(batch_op.f("ix_units_of_work_instance_id"))
        batch_op.drop_index(batch_op.f("ix_units_of_work_held_by_actor_id"))

    op.drop_table("units_of_work")
    with op.batch_alter_table("local_components", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_local_components_role_id"))
        batch_op.drop_index(batch_op.f("ix_local_components_local_workflow_id"))
        batch_op.drop_index(batch_op.f("ix_local_components_interaction_id"))
        batch_op.drop_index(batch_op.f("ix_local_components_instance_id"))

    op.drop_table("local_components")
    with op.batch_alter_table("actor_role_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_actor_role_assignments_role_id"))
        batch_op.drop_index(batch_op.f("ix_actor_role_assignments_instance_id"))
        batch_op.drop_index(batch_op.f("ix_actor_role_assignments_actor_id"))

    op.drop_table("actor_role_assignments")
    with op.batch_alter_table("local_roles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_local_roles_local_workflow_id"))
        batch_op.drop_index(batch_op.f("ix_local_roles_instance_id"))

    op.drop_table("local_roles")
    with op.batch_alter_table("local_interactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_local_interactions_local_workflow_id"))
        batch_op.drop_index(batch_op.f("ix_local_interactions_instance_id"))

    op.drop_table("local_interactions")
    with op.batch_alter_table("local_workflows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_local_workflows_instance_id"))

    op.drop_table("local_workflows")
    with op.batch_alter_table("local_actors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_local_actors_instance_id"))

    op.drop_table("local_actors")
    with op.batch_alter_table("interaction_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interaction_logs_uow_id"))
        batch_op.drop_index("ix_interaction_logs_type_time")
        batch_op.drop_index(batch_op.f("ix_interaction_logs_timestamp"))
        batch_op.drop_index(batch_op.f("ix_interaction_logs_role_id"))
        batch_op.drop_index(batch_op.f("ix_interaction_logs_interaction_id"))
        batch_op.drop_index(batch_op.f("ix_interaction_logs_instance_id"))
        batch_op.drop_index(batch_op.f("ix_interaction_logs_actor_id"))

    op.drop_table("interaction_logs")
    op.drop_table("instance_context")
