"""Attacks by someone with write access but without the ledger key are found by verification.

Each attack is applied as that attacker would (plain SQL; the project's own hashing code to
recompute what it can) and checked through the Python API and through `chameleon verify`.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

import pytest
from forgery import (
    attributes_digest_at,
    guessed_key,
    keyed_with,
    records,
    rewrite,
    unkeyed,
)
from ledger_walks import walked
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from chameleon_workflow.chain import value_digest
from chameleon_workflow.cli import app
from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import AppendOnlyViolationError
from chameleon_workflow.hashing import content_hash
from chameleon_workflow.keys import Keyring, LedgerKey
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import LocalActor, UnitsOfWork
from chameleon_workflow.states import ActorType
from chameleon_workflow.testing import Playground, append_only_disabled, make_playground

Found = list[tuple[str, int | None]]


def _sql(engine: Engine, sql: str, **params: Any) -> None:
    with translated_errors(), engine.begin() as conn:
        conn.execute(text(sql), params)


def _id(engine: Engine, value: uuid.UUID) -> Any:
    return str(value) if engine.dialect.name == "sqlite" else value


def _salt(session: Session, version: int) -> str:
    """Read a salt as the attacker can, and end the read (DDL waits for open reads)."""
    salt = session.scalars(
        text("SELECT salt FROM uow_attributes WHERE key = 'amount' AND version = :v"),
        {"v": version},
    ).one()
    session.rollback()
    return str(salt)


def _found(service: UOWPersistenceService, session: Session, **scope: Any) -> Found:
    session.rollback()
    report = service.verify_database(session, **scope)
    session.rollback()
    return [(f.kind.value, f.sequence) for f in report.findings]


def _cli(engine: Engine, *args: str) -> tuple[int, str]:
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["verify", *args, "--database-url", url])
    return result.exit_code, result.output


def _assert_cli_finds(engine: Engine, kinds: set[str], *args: str) -> None:
    code, output = _cli(engine, *args)
    assert code == 1, output
    named = set(re.findall(r"^\s*- ([A-Z_]+)[ :]", output, re.MULTILINE))
    assert kinds <= named, output


def test_an_edited_superseded_version_is_found(service, engine, session, play) -> None:
    """Editing version 1 of 2 of an attribute is found though only version 2 is current."""
    uow = walked(service, session, play)
    with append_only_disabled(engine):
        _sql(engine, "UPDATE uow_attributes SET value = '5' WHERE key = 'amount' AND version = 1")
    assert _found(service, session) == [
        ("ATTRIBUTE_MISMATCH", 1),  # the value no longer matches its salted digest
        ("ATTRIBUTE_MISMATCH", 1),  # the creation recorded amount 100 being added
        ("ATTRIBUTE_MISMATCH", 3),  # the adjustment recorded 100 -> 120
    ]
    assert service.verify_state_hash(session, uow) is True  # the current state is untouched
    _assert_cli_finds(engine, {"ATTRIBUTE_MISMATCH"})


def test_a_superseded_version_rewritten_with_its_digest_is_found(
    service, engine, session, play
) -> None:
    """Recomputing the edited version's salted digest still breaks its history row's digest."""
    uow = walked(service, session, play)
    salt = _salt(session, 1)
    with append_only_disabled(engine):
        _sql(
            engine,
            "UPDATE uow_attributes SET value = '5', value_digest = :d "
            "WHERE key = 'amount' AND version = 1",
            d=value_digest(salt, 5),
        )
    assert _found(service, session) == [
        ("ATTRIBUTE_MISMATCH", 1),  # the digest row 1 commits to
        ("ATTRIBUTE_MISMATCH", 1),  # the change row 1 records
        ("ATTRIBUTE_MISMATCH", 3),  # the change row 3 records
    ]
    assert service.verify_uow(session, uow.uow_id).ok is False
    _assert_cli_finds(engine, {"ATTRIBUTE_MISMATCH"})


@pytest.mark.parametrize("column", ["actor_id", "reasoning"])
def test_an_edited_attribute_actor_or_reasoning_is_found(
    service, engine, session, play, column
) -> None:
    """Who wrote an attribute version, and why, are covered by the history row that wrote it."""
    walked(service, session, play)
    value = _id(engine, uuid.uuid4()) if column == "actor_id" else "forged"
    with append_only_disabled(engine):
        _sql(engine, f"UPDATE uow_attributes SET {column} = :v WHERE key = 'owner'", v=value)
    assert _found(service, session) == [("ATTRIBUTE_MISMATCH", 1)]
    _assert_cli_finds(engine, {"ATTRIBUTE_MISMATCH"})


def _rewritten_value(
    service: UOWPersistenceService, engine: Engine, session: Session, play: Playground
) -> tuple[UnitsOfWork, list[Any]]:
    """Set amount 120 -> 999 everywhere it shows: the row, its digest, the hashes, the diff."""
    uow = walked(service, session, play)
    salt = _salt(session, 2)
    with append_only_disabled(engine):
        _sql(
            engine,
            "UPDATE uow_attributes SET value = '999', value_digest = :d "
            "WHERE key = 'amount' AND version = 2",
            d=value_digest(salt, 999),
        )
    forged_hash = content_hash({"amount": 999, "owner": "ann"})
    forged = []
    for record in records(session, uow.uow_id):
        change: dict[str, Any] = {}
        if record.sequence >= 3:
            change["new_state_hash"] = forged_hash
        if record.sequence > 3:
            change["previous_state_hash"] = forged_hash
        if record.sequence == 3:
            change["attributes_digest"] = attributes_digest_at(session, uow.uow_id, 3)
            change["changes"] = {
                "added": {},
                "removed": {},
                "changed": {"amount": {"old": 100, "new": 999}},
            }
        forged.append(dataclasses.replace(record, **change))
    session.rollback()
    return uow, forged


def test_a_chain_recomputed_without_the_key_is_found(service, engine, session, play) -> None:
    """A value rewritten and every hash and link after it recomputed under a guessed key fails."""
    uow, forged = _rewritten_value(service, engine, session, play)
    rewrite(engine, forged, keyed_with(guessed_key(forged[0].key_id)), start=3)
    assert service.verify_state_hash(session, uow) is True  # attributes and hash agree
    assert _found(service, session) == [
        ("CHAIN_BROKEN", 3),
        ("CHAIN_BROKEN", 4),
        ("CHAIN_BROKEN", 5),
    ]
    _assert_cli_finds(engine, {"CHAIN_BROKEN"})


def test_a_chain_recomputed_in_the_unkeyed_format_is_found(service, engine, session, play) -> None:
    """Recomputing the whole chain as format 1 (no key needed) breaks the seal and the digests."""
    _uow, forged = _rewritten_value(service, engine, session, play)
    rewrite(engine, forged, unkeyed)
    assert _found(service, session) == [
        ("ATTRIBUTE_MISMATCH", 1),  # attribute rows name history rows that no longer
        ("ATTRIBUTE_MISMATCH", 3),  # commit to them (format 1 rows commit to none)
        ("KEY_LEDGER", 0),  # five unkeyed rows appeared after the seal
    ]
    _assert_cli_finds(engine, {"ATTRIBUTE_MISMATCH", "KEY_LEDGER"})


def _forged_approval(engine: Engine, uow: UnitsOfWork, chain: str, version: int, key: str) -> None:
    """INSERT a sixth history row (ACTIVE -> COMPLETED) and point the UOW row at it."""
    values = {
        "h": _id(engine, uuid.uuid4()),
        "i": _id(engine, uow.instance_id),
        "u": _id(engine, uow.uow_id),
        "s": uow.content_hash,
        "n": _id(engine, uow.current_interaction_id),
        "t": "2026-06-01T00:00:00.000000Z",
        "c": chain,
        "v": version,
        "k": key,
    }
    stamp = ":t" if engine.dialect.name == "sqlite" else "CAST(:t AS timestamptz)"
    _sql(
        engine,
        "INSERT INTO uow_history (history_id, instance_id, uow_id, sequence, event_type, "
        "previous_status, new_status, previous_state_hash, new_state_hash, "
        "previous_interaction_id, new_interaction_id, transition_timestamp, reasoning, "
        "chain_hash, link_version, key_id, retry_count) VALUES (:h, :i, :u, 6, 'TRANSITION', "
        f"'ACTIVE', 'COMPLETED', :s, :s, :n, :n, {stamp}, 'approved', :c, :v, :k, 0)",
        **values,
    )
    _sql(
        engine,
        "UPDATE units_of_work SET status = 'COMPLETED', history_sequence = 6, chain_head = :c, "
        "version = version + 1 WHERE uow_id = :u",
        c=chain,
        u=values["u"],
    )


@pytest.mark.parametrize(
    ("version", "key", "expected"),
    [
        (1, None, [("CHAIN_BROKEN", 6), ("KEY_LEDGER", 0)]),  # the unkeyed format, after keyed
        (2, "real", [("CHAIN_BROKEN", 6)]),  # the ledger key's id, a made-up MAC
        (2, "0123456789abcdef", [("UNKNOWN_KEY", None)]),  # a key of the attacker's own
    ],
)
def test_an_appended_approval_is_found(
    service, engine, session, play, version, key, expected
) -> None:
    """An approval appended with INSERT (triggers in place) plus an UPDATE of the UOW fails."""
    uow = walked(service, session, play)
    real = service.ledger_keys(engine).current_id
    key_id = real if key == "real" else key
    _forged_approval(engine, uow, "f" * 64, version, key_id)  # type: ignore[arg-type]
    assert _found(service, session) == expected
    _assert_cli_finds(engine, {kind for kind, _ in expected})


def _actor(session: Session, play: Playground, name: str) -> uuid.UUID:
    actor = LocalActor(
        instance_id=play.instance_id, identity_key=name, name=name, actor_type=ActorType.HUMAN
    )
    session.add(actor)
    session.flush()
    return actor.actor_id


def test_a_reassigned_holder_is_found(service, engine, session, play) -> None:
    """UPDATE of held_by_actor_id on an ACTIVE UOW disagrees with the holder its history records."""
    ann, bob = _actor(session, play, "ann"), _actor(session, play, "bob")
    uow = walked(service, session, play)
    service.save_uow(session, uow, holder=ann, reasoning="claimed by ann")  # a history event
    session.commit()
    assert [(r.holder_id, r.new_status) for r in service.get_uow_history(session, uow.uow_id)][
        -1
    ] == (ann, "ACTIVE")
    _sql(
        engine,
        "UPDATE units_of_work SET held_by_actor_id = :b WHERE uow_id = :u",
        b=_id(engine, bob),
        u=_id(engine, uow.uow_id),
    )
    assert _found(service, session) == [("HEAD_MISMATCH", 6)]
    _assert_cli_finds(engine, {"HEAD_MISMATCH"})


@pytest.mark.parametrize("column", ["instance_id", "local_workflow_id", "parent_id", "created_at"])
def test_the_database_refuses_a_new_identity(service, engine, session, play, column) -> None:
    """An UPDATE that changes a UOW row's instance, workflow, parent or creation time fails."""
    uow = walked(service, session, play)
    other = make_playground(session)
    session.commit()
    values = {
        "instance_id": _id(engine, other.instance_id),
        "local_workflow_id": _id(engine, other.workflow_id),
        "parent_id": _id(engine, uow.uow_id),
        "created_at": "2020-01-01T00:00:00.000000Z",
    }
    stamped = column == "created_at" and engine.dialect.name != "sqlite"
    value = "CAST(:v AS timestamptz)" if stamped else ":v"
    with pytest.raises(AppendOnlyViolationError, match="never change"):
        _sql(engine, f"UPDATE units_of_work SET {column} = {value}", v=values[column])
    assert _found(service, session) == []


def test_a_uow_moved_to_another_instance_is_found(service, engine, session) -> None:
    """With the identity trigger lifted, a moved UOW is found by whole and instance runs."""
    home, away = make_playground(session), make_playground(session)
    session.commit()
    uow = walked(service, session, home)
    with append_only_disabled(engine):
        _sql(
            engine,
            "UPDATE units_of_work SET instance_id = :a WHERE uow_id = :u",
            a=_id(engine, away.instance_id),
            u=_id(engine, uow.uow_id),
        )
    assert _found(service, session) == [("HEAD_MISMATCH", 5)]
    assert _found(service, session, instance_id=home.instance_id) == [
        ("ORPHANED", None),  # its history rows, whose UOW row left the instance
        ("ORPHANED", None),  # its attribute rows
    ]
    assert _found(service, session, instance_id=away.instance_id) == [
        ("DRIFT", None),  # none of its attribute rows is in this instance
        ("NO_HISTORY", None),
    ]
    _assert_cli_finds(engine, {"ORPHANED"}, "--instance", str(home.instance_id))


def test_a_wrong_key_is_reported(service, engine, session, play) -> None:
    """Verifying under a key that did not make the links names the key it would need."""
    walked(service, session, play)
    real = service.ledger_keys(engine).current_id
    wrong = UOWPersistenceService(keys=Keyring.of(LedgerKey.of(b"\x02" * 32)))
    session.rollback()
    report = wrong.verify_database(session)
    assert [(f.kind.value, f.detail) for f in report.findings] == [
        (
            "UNKNOWN_KEY",
            f"5 rows are linked under ledger key {real}, which in memory does not hold "
            "(a wrong key, or an old key missing from it): their links were not checked",
        )
    ]


def test_holder_and_retry_changes_are_history_heartbeats_are_not(
    service, engine, session, play
) -> None:
    """A new holder or retry count appends a row recording it; a heartbeat appends none."""
    ann = _actor(session, play, "ann")
    uow = walked(service, session, play)
    service.save_uow(session, uow, holder=ann, reasoning="claimed by ann")
    service.save_uow(session, uow)  # a heartbeat: only last_heartbeat_at (and version) move
    service.save_uow(session, uow, retry_count=2, reasoning="retried")
    service.save_uow(session, uow, holder=None, reasoning="handed back")
    session.commit()
    rows = service.get_uow_history(session, uow.uow_id)[5:]
    assert [(r.sequence, r.new_status, r.holder_id, r.retry_count) for r in rows] == [
        (6, "ACTIVE", ann, 0),
        (7, "ACTIVE", ann, 2),
        (8, "ACTIVE", None, 2),
    ]
    assert (uow.version, uow.history_sequence) == (9, 8)
    assert _found(service, session) == []
