"""Attacks the in-database chain cannot see are caught against a signed checkpoint.

Each attack runs after the checkpoint was taken, as the database owner (triggers lifted),
and is then reported by ``verify_checkpoint`` and by `chameleon verify --checkpoint`
(exit 1, the finding named) on both back ends.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from checkpoint_world import (
    WORLD_ROWS,
    World,
    build_world,
    cli_verify,
    delete_uow,
    findings,
    ident,
    raw,
    recompute_chain,
    rewind,
)
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.checkpoints import create_signing_key, public_pem, seal
from chameleon_workflow.checkpoints.leaves import BY_KIND, leaf_data, rows_by_id
from chameleon_workflow.checkpoints.merkle import leaf_hash
from chameleon_workflow.testing import append_only_disabled

H, A, L = "uow_history", "uow_attributes", "interaction_logs"
MISSING, CHANGED = "LEAF_MISSING", "LEAF_CHANGED"


@pytest.fixture
def world(
    database_url: str, engine: Engine, session_factory: sessionmaker[Session], tmp_path: Path
) -> World:
    """Give each test the sealed world on its own database."""
    return build_world(database_url, engine, session_factory, tmp_path)


def _caught(world: World, expected: Counter[tuple[str, str]]) -> None:
    """Assert the API reports exactly ``expected`` and the CLI exits 1 naming each kind."""
    assert findings(world) == expected
    code, output = cli_verify(world)
    assert code == 1, output
    for kind, _ in expected:
        assert kind in output
    assert f"{expected.total()} checkpoint findings" in output


def test_clean_database_verifies_clean(world: World) -> None:
    """Nothing changed since the checkpoint: no finding, and the CLI exits 0."""
    assert findings(world) == Counter()
    code, output = cli_verify(world)
    assert code == 0, output
    assert f"checkpoint of {WORLD_ROWS} leaves: {WORLD_ROWS} rows recomputed" in output
    assert "checkpoint verification clean" in output


def test_rewind_of_a_uow_is_caught(world: World) -> None:
    """Deleting a UOW's last two rows and copying the new last row into its head is caught."""
    rewind(world.engine, world.uows["walked"], 3)
    _caught(world, Counter({(MISSING, H): 2}))


def test_erased_approval_is_caught(world: World) -> None:
    """Deleting the approval's two rows and its `approved` attribute, head rewound, is caught."""
    drop = "DELETE FROM uow_attributes WHERE uow_id = :u AND key = 'approved'"
    rewind(world.engine, world.uows["approval"], 2, drop)
    _caught(world, Counter({(MISSING, H): 2, (MISSING, A): 1}))


@pytest.mark.parametrize("with_logs", [False, True])
def test_deleted_uow_is_caught(world: World, with_logs: bool) -> None:
    """Deleting a whole UOW (row, history, attributes, with or without its logs) is caught."""
    delete_uow(world.engine, world.uows["doomed"], with_logs=with_logs)
    expected = Counter({(MISSING, H): 5, (MISSING, A): 3})
    if with_logs:
        expected[(MISSING, L)] = 2
    _caught(world, expected)


def test_deleted_error_logs_are_caught(world: World) -> None:
    """Deleting the ERROR rows of the interaction log after dropping its trigger is caught."""
    raw(world.engine, "DELETE FROM interaction_logs WHERE log_type = 'ERROR'")
    _caught(world, Counter({(MISSING, L): 2}))


def test_full_recompute_of_a_chain_is_caught(
    world: World, session_factory: sessionmaker[Session]
) -> None:
    """Rewriting a reason and recomputing the UOW's chain and head is caught, row by row."""
    rows = recompute_chain(session_factory, world.engine, world.uows["walked"], 2, "forged")
    assert rows == 5
    # All five leaves: without the ledger key even the untouched first row's link changes.
    _caught(world, Counter({(CHANGED, H): 5}))


def test_edited_definition_is_caught(world: World) -> None:
    """Editing a guardian's configuration (a workflow definition row) is caught."""
    raw(world.engine, "UPDATE local_guardians SET name = 'forged' WHERE name = 'amount_router'")
    _caught(world, Counter({(CHANGED, "local_guardians"): 1}))


def test_rewritten_leaf_hash_is_caught_by_the_root(world: World) -> None:
    """Editing a row and its stored leaf hash to match leaves only the signed root to object."""
    engine, uow = world.engine, ident(world.engine, world.uows["walked"])
    raw(
        engine,
        "UPDATE uow_history SET reasoning = 'forged' WHERE uow_id = :u AND sequence = 2",
        u=uow,
    )
    forged = _leaf_hash_now(world)
    raw(engine, "UPDATE ledger_leaves SET leaf_hash = :h WHERE position = :p", **forged)
    _caught(world, Counter({("CHECKPOINT_MISMATCH", ""): 1}))


def test_resealed_history_does_not_extend(world: World) -> None:
    """A history rewritten and sealed afresh (even with the key) does not extend the checkpoint."""
    engine = world.engine
    raw(engine, "UPDATE interaction_logs SET log_type = 'TELEMETRY' WHERE log_type = 'ERROR'")
    with append_only_disabled(engine), engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM checkpoints")
        connection.exec_driver_sql("DELETE FROM ledger_leaves")
    assert seal(engine, world.signer).new_leaves == WORLD_ROWS
    _caught(world, Counter({("CHECKPOINT_MISMATCH", ""): 1, ("NOT_EXTENDING", ""): 1}))


def test_deleted_checkpoints_are_reported(world: World) -> None:
    """Emptying the checkpoint table leaves nothing the given checkpoint could be extended by."""
    raw(world.engine, "DELETE FROM checkpoints")
    _caught(world, Counter({("NOT_EXTENDING", ""): 1}))


def test_bad_signature_is_reported(world: World, tmp_path: Path) -> None:
    """A checkpoint whose signature was altered is reported SIGNATURE_INVALID."""
    document = world.checkpoint.to_json()
    document["signature"] = ("0" if document["signature"][0] != "0" else "1") + document[
        "signature"
    ][1:]
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    code, output = cli_verify(world, forged)
    assert code == 1
    assert f"SIGNATURE_INVALID: the checkpoint (size {WORLD_ROWS}) is not signed by key" in output
    assert "1 checkpoint findings" in output


def test_wrong_public_key_is_reported(world: World, tmp_path: Path) -> None:
    """Verifying with another key reports KEY_MISMATCH for the checkpoint and the newest one."""
    other = create_signing_key(tmp_path / "other.pem")
    world.public_key_file.write_bytes(public_pem(other.public_key))
    code, output = cli_verify(world)
    assert code == 1
    expected = (
        f"KEY_MISMATCH: the checkpoint (size {WORLD_ROWS}) names key {world.signer.key_id}; "
        f"the public key given is {other.key_id}"
    )
    assert expected in output
    assert "2 checkpoint findings" in output


def _leaf_hash_now(world: World) -> dict[str, object]:
    """Return the position and the current leaf hash of the walked UOW's second history row."""
    with world.engine.connect() as connection:
        history_id = connection.execute(
            text("SELECT history_id FROM uow_history WHERE uow_id = :u AND sequence = 2"),
            {"u": ident(world.engine, world.uows["walked"])},
        ).scalar_one()
        row = rows_by_id(connection, BY_KIND[H], [str(history_id)])[str(history_id)]
        position = connection.execute(
            text("SELECT position FROM ledger_leaves WHERE row_id = :r"), {"r": str(history_id)}
        ).scalar_one()
    return {"p": position, "h": leaf_hash(leaf_data(H, row)).hex()}


def test_key_ledger_rows_are_covered(world: World) -> None:
    """Deleting the key ledger's seal row as the owner is caught against the checkpoint."""
    with append_only_disabled(world.engine), world.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM ledger_keys")
    _caught(world, Counter({(MISSING, "ledger_keys"): 1}))
