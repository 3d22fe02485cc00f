"""The checkpoint tree's tables, on the models' ``Base``: positions, subtree hashes, signed heads.

They live here rather than in ``models.py`` only to keep that module within its size;
``migrations/env.py`` imports this module so Alembic sees them. Both are append-only
(``schema.PROTECTED_TABLES``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from chameleon_workflow.columns import JSONDoc, UTCDateTime
from chameleon_workflow.models import Base


class LedgerLeaf(Base):
    """A ledger row's place in the checkpoint tree, given once by the sealer; append-only."""

    __tablename__ = "ledger_leaves"
    # kind names the table the row lives in; no CHECK constraint, so a table joining the
    # ledger later needs no migration of this one.
    __table_args__ = (UniqueConstraint("kind", "row_id"),)

    position: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    kind: Mapped[str] = mapped_column(String(64))
    row_id: Mapped[str] = mapped_column(String(64))
    leaf_hash: Mapped[str] = mapped_column(String(64))


class LedgerNode(Base):
    """The hash of a perfect subtree of the tree (a cache that makes proofs cheap); append-only.

    Level ``level``, index ``node_index``: the subtree over leaves ``node_index * 2**level``
    up to ``(node_index + 1) * 2**level``. Only levels the sealer keeps (``NODE_LEVEL`` and
    up) are stored; proofs fall back to the leaves for anything missing.
    """

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    node_index: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    node_hash: Mapped[str] = mapped_column(String(64))


class CheckpointRecord(Base):
    """A signed head of the checkpoint tree (and the frontier the next seal grows); append-only."""

    __tablename__ = "checkpoints"

    tree_size: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    root_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    frontier: Mapped[Any] = mapped_column(JSONDoc, nullable=False)
