"""Redaction and archives together: a redacted UOW is archived, verified and restored with
its value still erased; an archived UOW is refused (restore, redact, archive again)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from archive_world import ArchiveWorld, build_archive_world, rows_of
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from chameleon_workflow.archive.cuts import archived_map, load_cuts
from chameleon_workflow.archive.manifest import SignedManifest, read_manifest, write_manifest
from chameleon_workflow.archive.restore import restore
from chameleon_workflow.archive.run import archive
from chameleon_workflow.archive.segment import read_lines, segment_name, write_segment
from chameleon_workflow.archive.storage import DirectoryStore
from chameleon_workflow.archive.verify import check_archive, check_segment
from chameleon_workflow.checkpoints import seal, verify_checkpoint
from chameleon_workflow.checkpoints.merkle import leaf_hash
from chameleon_workflow.checkpoints.store import latest_checkpoint
from chameleon_workflow.cli import app
from chameleon_workflow.erasure import redact_value
from chameleon_workflow.hashing import canonical_json
from chameleon_workflow.keys import find_keys
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import AdminEvent, UnitsOfWork, UOWAttribute
from chameleon_workflow.redactions import REDACTED_MARKER
from chameleon_workflow.server.app import create_app
from chameleon_workflow.server.services import Archiver
from chameleon_workflow.server.settings import ServerSettings
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.telemetry.entry import TelemetryEntry

ADMIN = "admin-" + "b2" * 16


@pytest.fixture
def world(
    database_url: str,
    engine: Engine,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> ArchiveWorld:
    """The archive world, with a log row of ``done`` quoting its amount (120), sealed."""
    built = build_archive_world(database_url, engine, session_factory, tmp_path)
    done = built.uows["done"]
    with session_factory() as session:
        instance = session.scalars(
            select(UnitsOfWork.instance_id).where(UnitsOfWork.uow_id == done)
        ).one()
        buffer = TelemetryBuffer()
        buffer.record(
            TelemetryEntry(instance, done, None, None, None, "TELEMETRY", {"amount": 120})
        )
        buffer.flush_all(session)
        session.commit()
    seal(engine, built.signer)
    return built


def _redact(factory: sessionmaker[Session], uow_id: uuid.UUID) -> list[tuple[str, str]]:
    """Redact ``amount`` of a UOW; return the (table, row id) pairs the event records."""
    with factory.begin() as session:
        done = redact_value(session, uow_id, "amount", "erasure request 7")
        details = session.scalars(
            select(AdminEvent.details).where(AdminEvent.sequence == done.admin_sequence)
        ).one()
    assert done.attribute_rows == 2
    assert done.history_rows >= 2
    assert done.log_rows == 1
    return sorted((row["table"], row["row_id"]) for row in details["rows"])


def _archive(world: ArchiveWorld) -> tuple[DirectoryStore, str]:
    store = DirectoryStore.for_writing(world.archive_dir)
    result = archive(world.engine, store, world.signer, world.scope())
    assert result.uows == 3
    return store, result.segments[0]


def _rows_of(store: DirectoryStore, segment: str, uow_id: uuid.UUID) -> list[dict[str, Any]]:
    """Return the segment's lines (parsed) of one UOW."""
    found = []
    for line in read_lines(store, segment_name(segment)):
        document = orjson.loads(line)
        if document["row"].get("uow_id") == str(uow_id):
            found.append(document)
    return found


def _check(world: ArchiveWorld, store: DirectoryStore) -> tuple[list[Any], list[Any]]:
    with world.engine.connect() as connection:
        checked = check_archive(connection, store, world.signer.public_key, find_keys(world.url))
    return checked.problems, checked.notes


def _live_findings(factory: sessionmaker[Session]) -> tuple[Any, ...]:
    with factory() as session:
        return UOWPersistenceService().verify_database(session).findings


def test_a_redacted_uow_is_archived_and_its_segment_verifies(
    world: ArchiveWorld, session_factory: sessionmaker[Session], database_url: str
) -> None:
    recorded = _redact(session_factory, world.uows["done"])
    store, segment = _archive(world)
    lines = _rows_of(store, segment, world.uows["done"])
    text = b"\n".join(orjson.dumps(line) for line in lines)
    assert b":120" not in text
    assert b":100" not in text
    amounts = [line["row"] for line in lines if line["row"].get("key") == "amount"]
    assert [row["value"] for row in amounts] == [REDACTED_MARKER, REDACTED_MARKER]
    manifest = read_manifest(store, segment).body
    named = sorted((entry["table"], entry["row_id"]) for entry in manifest["redacted"])
    assert named == recorded
    problems, notes = _check(world, store)
    assert problems == []
    assert len(notes) == len(recorded)
    assert all("a value was redacted" in note for _, note in notes)
    assert _live_findings(session_factory) == ()
    with world.engine.connect() as connection:
        head = latest_checkpoint(connection)
        sealed = verify_checkpoint(
            connection, head, world.signer.public_key, archived_map(connection)
        )
    assert sealed.ok, sealed.findings
    result = CliRunner().invoke(
        app,
        [
            "verify",
            "--archive",
            str(world.archive_dir),
            "--public-key",
            str(world.public_key_file),
            "--database-url",
            database_url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "a value was redacted" in result.output


def test_a_redacted_segment_is_restored_as_redacted_and_archived_again(
    world: ArchiveWorld, session_factory: sessionmaker[Session]
) -> None:
    _redact(session_factory, world.uows["done"])
    store, segment = _archive(world)
    counts = restore(world.engine, store, segment, world.signer.public_key)
    assert counts["uow_attributes"] > 0
    with session_factory() as session:
        values = session.scalars(
            select(UOWAttribute.value).where(
                UOWAttribute.uow_id == world.uows["done"], UOWAttribute.key == "amount"
            )
        ).all()
    assert values == [REDACTED_MARKER, REDACTED_MARKER]
    assert _live_findings(session_factory) == ()
    seal(world.engine, world.signer)
    with world.engine.connect() as connection:
        assert verify_checkpoint(
            connection, latest_checkpoint(connection), world.signer.public_key
        ).ok
    _archive(world)
    problems, notes = _check(world, store)
    assert problems == []
    assert notes


Forgery = Callable[[dict[str, Any], dict[str, Any]], None]


def _other_amount(line: dict[str, Any], _body: dict[str, Any]) -> None:
    if line["row"].get("key") == "amount" and line["row"]["value"] == 120:
        line["row"]["value"] = 121


def _redacted_again(line: dict[str, Any], _body: dict[str, Any]) -> None:
    if line["row"].get("value") == REDACTED_MARKER:
        line["row"]["value"] = "[erased]"


def _unrecorded_redaction(line: dict[str, Any], body: dict[str, Any]) -> None:
    """Redact another UOW's amount in the segment and name it in the manifest as redacted."""
    row = line["row"]
    if row.get("key") == "amount" and row["value"] == 120 and not body["redacted"][-1]["forged"]:
        sealed = leaf_hash(canonical_json(line, "line")).hex()
        row["value"] = REDACTED_MARKER
        body["redacted"].append(
            {
                "forged": True,
                "table": "uow_attributes",
                "row_id": str(row["attribute_id"]),
                "sealed_leaf": sealed,
                "leaf": leaf_hash(canonical_json(line, "line")).hex(),
            }
        )


def _dropped_record(_line: dict[str, Any], body: dict[str, Any]) -> None:
    body["redacted"] = [{"forged": True}]


FORGERIES: dict[str, tuple[Forgery, str]] = {
    "another value edited": (_other_amount, "differ from the leaves sealed"),
    "a redacted row edited again": (_redacted_again, "not the redacted form"),
    "a redaction the ledger never made": (_unrecorded_redaction, "no redaction in the admin"),
    "the redaction records dropped": (_dropped_record, "differ from the leaves sealed"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_any_other_edit_of_a_redacted_segment_is_found(
    world: ArchiveWorld, session_factory: sessionmaker[Session], forgery: str
) -> None:
    """The segment is rewritten and its manifest re-signed to match the file: the row checks
    still find every edit but the recorded redaction."""
    _redact(session_factory, world.uows["done"])
    store, segment = _archive(world)
    edit, expected = FORGERIES[forgery]
    body = dict(read_manifest(store, segment).body)
    body["redacted"] = [*body["redacted"], {"forged": False}]
    raw = list(read_lines(store, segment_name(segment)))
    positions = [p for start, end in body["positions"] for p in range(start, end)]
    ledger = [line for line in raw if not line.endswith(b'"table":"units_of_work"}')]
    by_leaf = {leaf_hash(line).hex(): p for line, p in zip(ledger, positions, strict=True)}
    out = []
    for line in raw:
        document = orjson.loads(line)
        edit(document, body)
        out.append(line if document == orjson.loads(line) else canonical_json(document, "line"))
    body["redacted"] = [
        {
            k: v
            for k, v in {**entry, "position": by_leaf[entry["sealed_leaf"]]}.items()
            if k != "forged"
        }
        if entry.get("forged")
        else entry
        for entry in body["redacted"]
        if "sealed_leaf" in entry
    ]
    written = write_segment(store, segment_name(segment), out)
    body["file"] = {**body["file"], "bytes": written.size, "sha256": written.sha256}
    forged = SignedManifest.sign(body, world.signer)
    write_manifest(store, forged)
    with world.engine.connect() as connection:
        problems = check_segment(
            connection, store, forged, world.signer.public_key, find_keys(world.url)
        )
    assert any(expected in problem for problem in problems), problems


def _refused_by_cli(database_url: str, uow_id: uuid.UUID) -> str:
    result = CliRunner().invoke(
        app,
        ["redact", str(uow_id), "amount", "--reason", "erasure", "--database-url", database_url],
    )
    assert result.exit_code == 2, result.output
    return result.output


def test_an_archived_uow_is_refused_until_restored(
    world: ArchiveWorld, session_factory: sessionmaker[Session], database_url: str
) -> None:
    store, segment = _archive(world)
    output = _refused_by_cli(database_url, world.uows["done"])
    assert len(output.strip().splitlines()) == 1
    assert f"is archived (segment {segment})" in output
    assert "restore" in output
    settings = ServerSettings.model_validate(
        {"database_url": world.url, "admin_token": ADMIN, "signing_key_file": str(world.key_file)}
    )
    server = create_app(settings)
    body = {"key": "amount", "reason": "erasure"}
    headers = {"Authorization": f"Bearer {ADMIN}"}
    try:
        with TestClient(server) as client:
            refused = client.post(
                f"/uows/{world.uows['done']}/redactions", json=body, headers=headers
            )
            restore(world.engine, store, segment, world.signer.public_key)
            done = client.post(f"/uows/{world.uows['done']}/redactions", json=body, headers=headers)
    finally:
        server.state.services.engine.engine.dispose()
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "is archived" in refused.json()["detail"]
    assert done.status_code == 201, done.text
    assert rows_of(world.engine, world.uows["done"])["uow_attributes"] == 2
    again = archive(world.engine, store, world.signer, world.scope())
    assert again.uows == 3
    old = [segment_name(segment), f"{segment}.manifest.json"]
    assert sorted(again.removed_restored) == sorted(old)  # they held the value
    assert not any((world.archive_dir / name).exists() for name in old)
    problems, notes = _check(world, store)
    assert problems == []
    assert notes
    assert _live_findings(session_factory) == ()


def test_the_retention_archiver_takes_a_redacted_uow(
    world: ArchiveWorld, session_factory: sessionmaker[Session]
) -> None:
    _redact(session_factory, world.uows["done"])
    due = Archiver(world.engine, world.signer, world.archive_dir, 0, 3600.0)
    due.run_once()
    assert due.last is not None
    assert due.last.uows == 3
    assert rows_of(world.engine, world.uows["done"])["uow_history"] == 0


def _segment_text(world: ArchiveWorld) -> bytes:
    """Return every line of every segment file in the archive directory."""
    store = DirectoryStore.for_reading(world.archive_dir)
    names = [n for n in store.names() if n.endswith(".jsonl.zst")]
    return b"\n".join(line for name in names for line in read_lines(store, name))


def test_the_cli_redacts_an_archived_uow_given_the_archive(
    world: ArchiveWorld, session_factory: sessionmaker[Session], database_url: str
) -> None:
    """Restored, redacted, archived again under a new signed manifest; the old files are gone
    and verify --archive passes with notes."""
    store, segment = _archive(world)
    assert b'"value":120' in _segment_text(world)
    result = CliRunner().invoke(
        app,
        [
            "redact",
            str(world.uows["done"]),
            "amount",
            "--reason",
            "erasure request 9",
            "--archive-dir",
            str(world.archive_dir),
            "--database-url",
            database_url,
        ],
        env={"CHAMELEON_SIGNING_KEY_FILE": str(world.key_file)},
    )
    assert result.exit_code == 0, result.output
    assert f"segment {segment} restored" in result.output
    assert not (world.archive_dir / segment_name(segment)).exists()
    assert not (world.archive_dir / f"{segment}.manifest.json").exists()
    assert rows_of(world.engine, world.uows["done"])["uow_history"] == 0  # archived again
    with world.engine.connect() as connection:
        manifests = [m.body for m in load_cuts(connection).manifests.values()]
    assert len(manifests) == 1
    assert str(world.uows["done"]) in manifests[0]["uows"]
    done_rows = [
        line
        for line in _rows_of(store, manifests[0]["segment_id"], world.uows["done"])
        if line["row"].get("key") == "amount"
    ]
    assert [line["row"]["value"] for line in done_rows] == [REDACTED_MARKER, REDACTED_MARKER]
    problems, notes = _check(world, store)
    assert problems == []
    assert notes
    assert _live_findings(session_factory) == ()


def test_the_server_redacts_an_archived_uow_in_its_archive(world: ArchiveWorld) -> None:
    store, segment = _archive(world)
    settings = ServerSettings.model_validate(
        {
            "database_url": world.url,
            "admin_token": ADMIN,
            "signing_key_file": str(world.key_file),
            "archive_dir": str(world.archive_dir),
        }
    )
    server = create_app(settings)
    body = {"key": "amount", "reason": "erasure"}
    headers = {"Authorization": f"Bearer {ADMIN}"}
    try:
        with TestClient(server) as client:
            done = client.post(f"/uows/{world.uows['done']}/redactions", json=body, headers=headers)
    finally:
        server.state.services.engine.engine.dispose()
    assert done.status_code == 201, done.text
    assert done.json()["restored_segments"] == [segment]
    assert len(done.json()["archived_segments"]) == 1
    assert not (world.archive_dir / segment_name(segment)).exists()
    problems, notes = _check(world, store)
    assert problems == []
    assert notes


def test_a_refused_redaction_of_an_archived_uow_leaves_it_archived(
    world: ArchiveWorld, session_factory: sessionmaker[Session], database_url: str
) -> None:
    store, segment = _archive(world)
    result = CliRunner().invoke(
        app,
        [
            "redact",
            str(world.uows["done"]),
            "no_such_key",
            "--reason",
            "erasure",
            "--archive-dir",
            str(world.archive_dir),
            "--database-url",
            database_url,
        ],
        env={"CHAMELEON_SIGNING_KEY_FILE": str(world.key_file)},
    )
    assert result.exit_code == 2, result.output
    assert "no_such_key" in result.output
    assert rows_of(world.engine, world.uows["done"])["uow_history"] == 0  # archived again
    assert not (world.archive_dir / segment_name(segment)).exists()
    problems, _ = _check(world, store)
    assert problems == []
    assert _live_findings(session_factory) == ()
