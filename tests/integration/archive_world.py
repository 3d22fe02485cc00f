"""A ledger with old finished work to archive and live work to keep.

UOWs ``done`` and ``also_done`` are COMPLETED (history 1..4, two attribute versions
each, the second with a child ``child`` COMPLETED too); ``live`` is still ACTIVE and
holds the newest attribute row. One
telemetry stream interleaves log rows of all of them, so archiving cuts it in the middle.
Everything is sealed under a signing key kept in a file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.archive.selection import Scope
from chameleon_workflow.checkpoints import Signer, create_signing_key, public_pem, seal
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import (
    InteractionLog,
    UnitsOfWork,
    UnitsOfWorkHistory,
    UOWAttribute,
    utcnow,
)
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.testing import make_playground, make_uow


@dataclass(frozen=True, slots=True)
class ArchiveWorld:
    """The world's engine, signing key (and its files), UOWs and archive directory."""

    url: str
    engine: Engine
    signer: Signer
    key_file: Path
    public_key_file: Path
    archive_dir: Path
    uows: dict[str, uuid.UUID]

    def scope(self) -> Scope:
        """Return a scope taking every UOW finished so far."""
        return Scope(utcnow())


def build_archive_world(
    url: str, engine: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> ArchiveWorld:
    """Write the world and seal it."""
    service = UOWPersistenceService()
    uows: dict[str, uuid.UUID] = {}
    with factory() as session:
        play = make_playground(session)
        session.commit()
        for name in ("done", "live", "also_done"):
            uow = make_uow(session, play, attributes={"amount": 100}, service=service)
            service.save_uow(session, uow, "ACTIVE", reasoning="claim")
            service.set_attributes(session, uow, {"amount": 120}, None, "adjust")
            if name != "live":
                service.save_uow(session, uow, "COMPLETED", reasoning="done")
            session.commit()
            uows[name] = uow.uow_id
            if name == "live":
                live = uow
        child = service.create_uow(
            session,
            instance_id=play.instance_id,
            local_workflow_id=play.workflow_id,
            attributes={"part": 1},
            interaction_id=play.interactions[0],
            parent_id=uows["also_done"],
        )
        session.commit()
        service.save_uow(session, child, "ACTIVE", reasoning="claim")
        service.save_uow(session, child, "COMPLETED", reasoning="done")
        session.commit()
        uows["child"] = child.uow_id
        # The newest attribute row is a live UOW's (on SQLite the owner of the newest row is
        # never archived: its id would be handed out again).
        service.set_attributes(session, live, {"amount": 130}, None, "adjust again")
        session.commit()
        buffer = TelemetryBuffer()
        for name in ("done", "live", "done", "also_done", "live", "child"):
            buffer.record(
                TelemetryEntry(play.instance_id, uows[name], None, None, None, "TELEMETRY")
            )
        buffer.flush_all(session)
        session.commit()
    key_file = tmp_path / "signing-key.pem"
    signer = create_signing_key(key_file)
    seal(engine, signer)
    public_key_file = tmp_path / "public.pem"
    public_key_file.write_bytes(public_pem(signer.public_key))
    return ArchiveWorld(url, engine, signer, key_file, public_key_file, tmp_path / "archive", uows)


def rows_of(engine: Engine, uow_id: uuid.UUID) -> dict[str, int]:
    """Count the rows one UOW owns, per table."""
    counts = {}
    with engine.connect() as connection:
        for name, model in (
            ("units_of_work", UnitsOfWork),
            ("uow_history", UnitsOfWorkHistory),
            ("uow_attributes", UOWAttribute),
            ("interaction_logs", InteractionLog),
        ):
            query = select(func.count()).select_from(model).where(model.uow_id == uow_id)
            counts[name] = int(connection.execute(query).scalar_one())
    return counts
