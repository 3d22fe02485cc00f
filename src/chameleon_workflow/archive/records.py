"""The archive's tables: each recorded manifest, the rows it covers, and each restore.

All three are append-only. ``archived_rows`` is what the manifest-aware DELETE triggers
of migration 0008 consult: a history, attribute or log row may be deleted only while a
row here names it under a manifest that was not restored since.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from chameleon_workflow.columns import JSONDoc, UTCDateTime
from chameleon_workflow.models import Base


class ArchiveManifest(Base):
    """A signed manifest of one segment, recorded in the transaction that deleted its rows."""

    __tablename__ = "archive_manifests"

    segment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    manifest: Mapped[Any] = mapped_column(JSONDoc, nullable=False)


class ArchivedRow(Base):
    """One ledger row a manifest covers: its table, its id, its position in the tree."""

    __tablename__ = "archived_rows"

    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    row_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    segment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))


class ArchiveRestore(Base):
    """A segment whose rows were brought back: its manifest no longer covers a delete."""

    __tablename__ = "archive_restores"

    segment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    restored_at: Mapped[datetime] = mapped_column(UTCDateTime())
