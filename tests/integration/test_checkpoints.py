"""Sealing, signed heads, proofs and leaf data of the checkpoint tree, on both back ends."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from checkpoint_world import WORLD_ROWS, World, build_world, findings, ident, raw
from ledger_walks import walked
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.benchmarks.ledger import build_ledger
from chameleon_workflow.checkpoints import (
    LEDGER_TABLES,
    create_signing_key,
    leaf_data,
    prove_consistency,
    prove_inclusion,
    seal,
    verify_checkpoint,
)
from chameleon_workflow.checkpoints.leaves import LATE_COLUMNS
from chameleon_workflow.checkpoints.merkle import verify_consistency
from chameleon_workflow.checkpoints.store import latest_checkpoint
from chameleon_workflow.errors import CheckpointError, NotFoundError
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import Base, InteractionLog
from chameleon_workflow.testing import FixedClock, make_playground


@pytest.fixture
def world(
    database_url: str, engine: Engine, session_factory: sessionmaker[Session], tmp_path: Path
) -> World:
    """Give each test the sealed world on its own database."""
    return build_world(database_url, engine, session_factory, tmp_path)


def _positions(engine: Engine) -> list[tuple[int, str, str]]:
    with engine.connect() as connection:
        query = "SELECT position, kind, row_id FROM ledger_leaves ORDER BY position"
        return [tuple(row) for row in connection.execute(text(query))]  # type: ignore[misc]


def _ledger_rows(engine: Engine) -> set[tuple[str, str]]:
    """Every ledger row as (table, id) straight from the tables."""
    found = set()
    with engine.connect() as connection:
        for ledger in LEDGER_TABLES:
            for (key,) in connection.execute(select(ledger.key)):
                found.add((ledger.name, str(key)))
    return found


def _more_work(session_factory: sessionmaker[Session]) -> None:
    """Write one more walked UOW (5 history rows, 3 attribute versions) and its playground."""
    with session_factory() as session:
        walked(UOWPersistenceService(), session, make_playground(session))


def test_every_ledger_row_gets_exactly_one_position(world: World) -> None:
    """The seal numbers every ledger row once, from 0 without a gap, tables in their order."""
    positions = _positions(world.engine)
    assert [p for p, _, _ in positions] == list(range(WORLD_ROWS))
    assert {(kind, row_id) for _, kind, row_id in positions} == _ledger_rows(world.engine)
    order = [ledger.name for ledger in LEDGER_TABLES]
    kinds = [kind for _, kind, _ in positions]
    assert kinds == sorted(kinds, key=order.index)


def test_a_seal_with_nothing_new_writes_nothing(world: World) -> None:
    """Sealing again without new rows returns the same checkpoint and adds no position."""
    again = seal(world.engine, world.signer)
    assert (again.checkpoint, again.new_leaves) == (world.checkpoint, 0)
    with world.engine.connect() as connection:
        assert latest_checkpoint(connection) == world.checkpoint
        assert (
            connection.execute(text("SELECT count(*) FROM checkpoints")).scalar() == 2
        )  # the world sealed twice


def test_rows_written_later_are_sealed_next_and_extend_the_old_checkpoint(
    world: World, session_factory: sessionmaker[Session]
) -> None:
    """New rows take the next positions; the new head extends the old one (consistency proof)."""
    _more_work(session_factory)
    newer = seal(world.engine, world.signer, FixedClock())
    new_rows = 4 + 5 + 3  # playground definitions, history, attribute versions
    assert newer.new_leaves == new_rows
    assert newer.checkpoint is not None
    assert newer.checkpoint.timestamp == "2026-01-01T00:00:00.000000Z"
    size = WORLD_ROWS + new_rows
    assert [p for p, _, _ in _positions(world.engine)] == list(range(size))
    with world.engine.connect() as connection:
        proof = prove_consistency(connection, WORLD_ROWS, size)
        report = verify_checkpoint(connection, world.checkpoint, world.signer.public_key)
    old, new = world.checkpoint, newer.checkpoint
    assert verify_consistency(WORLD_ROWS, size, old.root, new.root, proof)
    assert not verify_consistency(WORLD_ROWS, size, new.root, old.root, proof)
    assert (report.ok, report.leaves_checked, report.newest_size) == (True, WORLD_ROWS, size)
    assert findings(world, new) == Counter()


def test_inclusion_proof_of_each_kind_of_row_verifies(world: World) -> None:
    """A history row, an attribute version and a log row each prove their place in the tree."""
    with world.engine.connect() as connection:
        for table in ("uow_history", "uow_attributes", "interaction_logs", "local_guardians"):
            key = next(t for t in LEDGER_TABLES if t.name == table).key
            row_id = str(connection.execute(select(key).limit(1)).scalar_one())
            proof = prove_inclusion(connection, world.checkpoint, table, row_id)
            assert proof.valid(), table
            assert proof.to_json()["leaf_index"] == proof.leaf_index
            assert proof.leaf_index < WORLD_ROWS


def test_inclusion_proof_of_an_edited_row_does_not_verify(world: World) -> None:
    """A row changed after the checkpoint yields a proof that does not reach the signed root."""
    u = ident(world.engine, world.uows["walked"])
    raw(
        world.engine,
        "UPDATE uow_history SET reasoning = 'x' WHERE uow_id = :u AND sequence = 1",
        u=u,
    )
    with world.engine.connect() as connection:
        history_id = connection.execute(
            text("SELECT history_id FROM uow_history WHERE uow_id = :u AND sequence = 1"), {"u": u}
        ).scalar_one()
        proof = prove_inclusion(connection, world.checkpoint, "uow_history", str(history_id))
    assert proof.valid() is False


def test_proving_an_unsealed_or_unknown_row_is_refused(
    world: World, session_factory: sessionmaker[Session]
) -> None:
    """A row newer than the checkpoint, or no row at all, has no proof: NotFoundError."""
    _more_work(session_factory)
    with world.engine.connect() as connection:
        newest = connection.execute(
            text("SELECT history_id FROM uow_history ORDER BY transition_timestamp DESC LIMIT 1")
        ).scalar_one()
        with pytest.raises(NotFoundError, match="is not sealed yet: the checkpoint covers"):
            prove_inclusion(connection, world.checkpoint, "uow_history", str(newest))
        missing = uuid.uuid4()
        with pytest.raises(NotFoundError, match=f"no uow_history row with id {missing}"):
            prove_inclusion(connection, world.checkpoint, "uow_history", str(missing))


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("UPDATE checkpoints SET frontier = '[]'", "does not hold together"),
        (
            f"DELETE FROM ledger_leaves WHERE position = {WORLD_ROWS - 1}",
            f"positions end at {WORLD_ROWS - 2}",
        ),
        ("DELETE FROM checkpoints", "but there is no checkpoint"),
    ],
)
def test_sealer_refuses_to_grow_a_tampered_tree(world: World, sql: str, message: str) -> None:
    """The sealer checks what it grows from and refuses a rewritten head or cut positions."""
    raw(world.engine, sql)
    with pytest.raises(CheckpointError, match=message):
        seal(world.engine, world.signer)


def test_leaf_data_is_the_same_on_both_back_ends(session: Session) -> None:
    """One log row gives byte-identical leaf data on SQLite and PostgreSQL (floats, keys, text)."""
    log_id = uuid.UUID("00000000-0000-4000-8000-00000000000a")
    session.add(
        InteractionLog(
            log_id=log_id,
            instance_id=uuid.UUID("00000000-0000-4000-8000-00000000000b"),
            timestamp=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
            log_type="ERROR",
            event_details={"z": [1.0, 0.5, 1e21, -0.0], "a": {"é": "ü\n", "b": True}, "n": None},
        )
    )
    session.commit()
    table = Base.metadata.tables["interaction_logs"]
    row = session.connection().execute(select(table).where(table.c.log_id == log_id)).one()
    assert leaf_data("interaction_logs", row._mapping) == (
        b'{"row":{"actor_id":null,"error_metadata":null,"event_details":{"a":{"b":true,'
        b'"\xc3\xa9":"\xc3\xbc\\n"},"n":null,"z":[1,0.5,1e+21,0]},"instance_id":'
        b'"00000000-0000-4000-8000-00000000000b","interaction_id":null,"log_id":'
        b'"00000000-0000-4000-8000-00000000000a","log_type":"ERROR","role_id":null,'
        b'"timestamp":"2026-01-02T03:04:05.678901Z","uow_id":null},"table":"interaction_logs"}'
    )


def test_leaf_data_holds_every_column_of_every_ledger_table(world: World) -> None:
    """Each table's leaf data names exactly the columns the models declare (new ones included)."""
    with world.engine.connect() as connection:
        for ledger in LEDGER_TABLES:
            row = connection.execute(select(ledger.table).limit(1)).one()._mapping
            decoded = json.loads(leaf_data(ledger.name, row))
            assert decoded["table"] == ledger.name
            late = LATE_COLUMNS.get(ledger.name, frozenset())  # left out while NULL
            assert set(decoded["row"]) == {
                c.name
                for c in ledger.table.columns
                if c.name not in late or row[c.name] is not None
            }


def test_proofs_in_a_large_tree_use_the_kept_subtrees(
    engine: Engine, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """Past 256 leaves proofs read kept subtree hashes; without them they fall back and agree."""
    build_ledger(session_factory, 12, 50)
    signer = create_signing_key(tmp_path / "key.pem")
    first = seal(engine, signer).checkpoint
    build_ledger(session_factory, 4, 50)
    newest = seal(engine, signer).checkpoint
    assert first is not None
    assert newest is not None
    size = newest.tree_size
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT level, node_index FROM ledger_nodes")).all()
        rows = (
            connection.execute(
                text(
                    "SELECT row_id FROM ledger_leaves WHERE kind = 'uow_history' ORDER BY position"
                )
            )
            .scalars()
            .all()
        )
    expected = {(lv, i) for lv in range(8, size.bit_length()) for i in range(size >> lv)}
    assert set(kept) == expected
    assert len(kept) == len(expected)

    def proven() -> list[bool]:
        with engine.connect() as connection:
            proofs = [prove_inclusion(connection, newest, "uow_history", r) for r in rows[::97]]
            consistency = prove_consistency(connection, first.tree_size, size)
        ok = verify_consistency(first.tree_size, size, first.root, newest.root, consistency)
        return [ok, *(p.valid() for p in proofs)]

    assert size > 512  # every audit path then passes a kept subtree
    assert proven() == [True] * (1 + len(rows[::97]))
    raw(engine, "UPDATE ledger_nodes SET node_hash = :h", h="00" * 32)
    assert proven() == [False] * (1 + len(rows[::97]))
    raw(engine, "DELETE FROM ledger_nodes")
    assert proven() == [True] * (1 + len(rows[::97]))


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite writers queue
def test_a_row_committed_during_a_seal_is_sealed_by_the_next(world: World) -> None:
    """A log row whose transaction commits after the seal began is left for the next seal."""
    log_id = uuid.uuid4()
    insert = text(
        "INSERT INTO interaction_logs (log_id, timestamp, log_type) VALUES (:i, :t, 'ERROR')"
    )
    with world.engine.connect() as writer:
        writer.execute(insert, {"i": log_id, "t": datetime.now(UTC)})  # open, not committed
        during = seal(world.engine, world.signer)
        writer.commit()
    after = seal(world.engine, world.signer)
    assert (during.new_leaves, after.new_leaves) == (0, 1)
    assert _positions(world.engine)[-1] == (WORLD_ROWS, "interaction_logs", str(log_id))
    assert after.checkpoint is not None
    assert findings(world, after.checkpoint) == Counter()
