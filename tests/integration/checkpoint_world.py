"""A small ledger of every kind, sealed and signed, and the attacks only a checkpoint can catch.

The world: the invoice workflow's definition rows; UOW ``walked`` (history 1..5, three
attribute versions), UOW ``approval`` (created, claimed, ``approved`` set, passed on:
history 1..4) and UOW ``doomed`` (walked too); four log rows, two of them ERROR. The
attacks work with raw SQL as a database owner would, the append-only triggers lifted.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger_walks import walked
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from chameleon_workflow.checkpoints import (
    Checkpoint,
    Signer,
    create_signing_key,
    public_pem,
    seal,
    verify_checkpoint,
    write_checkpoint,
)
from chameleon_workflow.cli import app
from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.hashing import chain_hash, format_timestamp
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import UnitsOfWorkHistory
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.testing import INVOICE_YAML, append_only_disabled, make_playground, make_uow
from chameleon_workflow.workflow.loading import load_workflow

#: Ledger rows the world holds: 28 definition rows, 14 history, 8 attribute versions, 4 logs
#: after their stream's open row, the log seal of rows written before streams, the key
#: ledger's seal of the rows written before keyed links, and 3 admin events (the instance
#: created, the workflow imported, the first seal).
WORLD_ROWS = 60


@dataclass(frozen=True, slots=True)
class World:
    """The sealed world: where it lives, its key, its UOWs and the checkpoint kept outside."""

    url: str
    engine: Engine
    signer: Signer
    checkpoint: Checkpoint
    checkpoint_file: Path
    public_key_file: Path
    uows: dict[str, uuid.UUID]


def build_world(url: str, engine: Engine, factory: sessionmaker[Session], tmp_path: Path) -> World:
    """Write the world, seal it, and keep its checkpoint and public key in files."""
    WorkflowEngine(factory).import_workflow(
        WorkflowEngine(factory).ensure_instance("invoices"), load_workflow(INVOICE_YAML)
    )
    service = UOWPersistenceService()
    with factory() as session:
        play = make_playground(session)
        session.commit()
        uows = {"walked": walked(service, session, play).uow_id}
        approval = make_uow(session, play, attributes={"amount": 500}, service=service)
        service.save_uow(session, approval, "ACTIVE", reasoning="claim")
        service.set_attributes(session, approval, {"approved": True}, None, "approve")
        service.save_uow(session, approval, "PENDING", play.interactions[1], reasoning="pass on")
        session.commit()
        uows["approval"] = approval.uow_id
        uows["doomed"] = walked(service, session, play).uow_id
        buffer = TelemetryBuffer()
        for uow, kind in [("doomed", "TELEMETRY"), ("doomed", "ERROR"), ("walked", "ERROR")]:
            buffer.record(TelemetryEntry(play.instance_id, uows[uow], None, None, None, kind))
        buffer.record(TelemetryEntry(play.instance_id, None, None, None, None, "TELEMETRY"))
        assert buffer.flush_all(session) == 4
        session.commit()
    signer = create_signing_key(tmp_path / "signing-key.pem")
    # The first seal records itself in the admin ledger; the second covers that record and
    # records nothing, so the world's checkpoint leaves no row unsealed.
    seal(engine, signer)
    checkpoint = seal(engine, signer).checkpoint
    assert checkpoint is not None
    assert checkpoint.tree_size == WORLD_ROWS, checkpoint.tree_size
    checkpoint_file, public_key_file = tmp_path / "checkpoint.json", tmp_path / "public.pem"
    write_checkpoint(checkpoint, checkpoint_file)
    public_key_file.write_bytes(public_pem(signer.public_key))
    return World(url, engine, signer, checkpoint, checkpoint_file, public_key_file, uows)


def findings(world: World, checkpoint: Checkpoint | None = None) -> Counter[tuple[str, str]]:
    """Verify through the Python API; count findings by (kind, table)."""
    with world.engine.connect() as connection:
        report = verify_checkpoint(
            connection, checkpoint or world.checkpoint, world.signer.public_key
        )
    return Counter((str(f.kind), f.table) for f in report.findings)


def cli_verify(world: World, checkpoint_file: Path | None = None) -> tuple[int, str]:
    """Run `chameleon verify --checkpoint FILE --public-key FILE`; return exit code and output."""
    args = ["verify", "--checkpoint", str(checkpoint_file or world.checkpoint_file)]
    args += ["--public-key", str(world.public_key_file), "--database-url", world.url]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def raw(engine: Engine, sql: str, **params: Any) -> None:
    """Run SQL with the append-only triggers lifted, as the database owner can."""
    with append_only_disabled(engine), engine.begin() as connection:
        connection.execute(text(sql), params)


def ident(engine: Engine, value: uuid.UUID) -> Any:
    """Return an id as the driver binds it in raw SQL."""
    return str(value) if engine.dialect.name == "sqlite" else value


_HEAD_FROM_ROW = """
UPDATE units_of_work SET
  status = (SELECT new_status FROM uow_history WHERE uow_id = :u AND sequence = :s),
  current_interaction_id =
    (SELECT new_interaction_id FROM uow_history WHERE uow_id = :u AND sequence = :s),
  content_hash = (SELECT new_state_hash FROM uow_history WHERE uow_id = :u AND sequence = :s),
  chain_head = (SELECT chain_hash FROM uow_history WHERE uow_id = :u AND sequence = :s),
  history_sequence = :s
WHERE uow_id = :u
"""


def rewind(engine: Engine, uow_id: uuid.UUID, to_sequence: int, extra_sql: str = "") -> None:
    """Delete a UOW's history after ``to_sequence`` and make its row agree with that row."""
    u = ident(engine, uow_id)
    with append_only_disabled(engine), engine.begin() as connection:
        params = {"u": u, "s": to_sequence}
        connection.execute(
            text("DELETE FROM uow_history WHERE uow_id = :u AND sequence > :s"), params
        )
        connection.execute(text(_HEAD_FROM_ROW), params)
        if extra_sql:
            connection.execute(text(extra_sql), {"u": u})


def delete_uow(engine: Engine, uow_id: uuid.UUID, *, with_logs: bool) -> None:
    """Delete a UOW entirely: its history, attributes, row (and its log rows if asked)."""
    tables = ["uow_history", "uow_attributes", *(["interaction_logs"] if with_logs else [])]
    with append_only_disabled(engine), engine.begin() as connection:
        for table in [*tables, "units_of_work"]:
            connection.execute(
                text(f"DELETE FROM {table} WHERE uow_id = :u"), {"u": ident(engine, uow_id)}
            )


def recompute_chain(
    factory: sessionmaker[Session], engine: Engine, uow_id: uuid.UUID, sequence: int, reasoning: str
) -> int:
    """Rewrite one row's reasoning and recompute the UOW's whole chain and head; return rows."""
    with factory() as session:
        rows = (
            session.query(UnitsOfWorkHistory)
            .filter_by(uow_id=uow_id)
            .order_by(UnitsOfWorkHistory.sequence)
            .all()
        )
        links, link = [], None
        for row in rows:
            why = reasoning if row.sequence == sequence else row.reasoning
            link = chain_hash(link, _hash_input(row, why))
            links.append((row.sequence, why, link))
    with append_only_disabled(engine), engine.begin() as connection:
        for seq, why, chained in links:
            connection.execute(
                text(
                    "UPDATE uow_history SET reasoning = :r, chain_hash = :c "
                    "WHERE uow_id = :u AND sequence = :s"
                ),
                {"r": why, "c": chained, "u": ident(engine, uow_id), "s": seq},
            )
        connection.execute(
            text("UPDATE units_of_work SET chain_head = :c WHERE uow_id = :u"),
            {"c": link, "u": ident(engine, uow_id)},
        )
    return len(links)


def _hash_input(row: UnitsOfWorkHistory, reasoning: str | None) -> dict[str, Any]:
    """The fields docs/hashing.md says a link covers, as an attacker rebuilds them."""
    text_of = lambda value: None if value is None else str(value)  # noqa: E731
    return {
        "history_id": str(row.history_id),
        "instance_id": str(row.instance_id),
        "uow_id": str(row.uow_id),
        "sequence": row.sequence,
        "event_type": str(row.event_type),
        "previous_status": text_of(row.previous_status),
        "new_status": str(row.new_status),
        "previous_state_hash": row.previous_state_hash,
        "new_state_hash": row.new_state_hash,
        "previous_interaction_id": text_of(row.previous_interaction_id),
        "new_interaction_id": text_of(row.new_interaction_id),
        "actor_id": text_of(row.actor_id),
        "transition_timestamp": format_timestamp(row.transition_timestamp),
        "reasoning": reasoning,
        "transition_metadata": row.transition_metadata,
        "changes": row.changes,
    }
