"""`chameleon export`: every ledger row with its hashes, streamed, filtered, checkable by others."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from chameleon_workflow.checkpoints import create_signing_key, seal
from chameleon_workflow.checkpoints.records import LedgerLeaf
from chameleon_workflow.cli import app
from chameleon_workflow.db import make_engine
from chameleon_workflow.demo import run_demo
from chameleon_workflow.models import InstanceContext


@pytest.fixture
def ran(database_url: str, session_factory: sessionmaker[Session]) -> str:
    """A database after two small demos (two instances)."""
    run_demo(session_factory, uows=6)
    run_demo(session_factory, uows=4)
    return database_url


def _export(url: str, *args: str) -> tuple[int, bytes]:
    result = CliRunner().invoke(app, ["export", "--database-url", url, *args])
    return result.exit_code, result.stdout_bytes


def test_each_jsonl_line_is_the_leaf_a_checkpoint_signs(ran: str, tmp_path: Path) -> None:
    """SHA-256(0x00 || line) is the row's leaf hash: an auditor checks rows without our code."""
    engine = make_engine(ran)
    try:
        seal(engine, create_signing_key(tmp_path / "key.pem"))
        with Session(engine) as session:
            sealed = {
                (leaf.kind, leaf.row_id): leaf.leaf_hash
                for leaf in session.scalars(select(LedgerLeaf))
            }
    finally:
        engine.dispose()
    code, out = _export(ran)
    assert code == 0
    lines = out.splitlines()
    kinds = {json.loads(line)["table"] for line in lines}
    assert kinds == {"uow_history", "uow_attributes", "interaction_logs", "admin_events"}
    checked = 0
    for line in lines:
        doc = json.loads(line)
        key = next(
            iter(c for c in ("history_id", "attribute_id", "log_id", "sequence") if c in doc["row"])
        )
        leaf = sealed.get((doc["table"], str(doc["row"][key])))
        if leaf is not None:  # the seal's own admin record came after the seal
            assert hashlib.sha256(b"\x00" + line).hexdigest() == leaf
            checked += 1
    assert checked == len(lines) - 1


def test_filters_by_instance_and_table(ran: str, session_factory: sessionmaker[Session]) -> None:
    """--instance (name or id) and --what narrow the rows; nothing of the other instance leaks."""
    with session_factory() as session:
        first, second = session.scalars(select(InstanceContext)).all()
    code, out = _export(ran, "--what", "history", "--instance", first.name)
    assert code == 0
    rows = [json.loads(line)["row"] for line in out.splitlines()]
    assert rows
    assert {row["instance_id"] for row in rows} == {str(first.instance_id)}
    assert {json.loads(line)["table"] for line in out.splitlines()} == {"uow_history"}
    code, out = _export(ran, "--what", "admin", "--instance", str(second.instance_id))
    assert code == 0
    assert {json.loads(line)["row"]["instance_id"] for line in out.splitlines()} == {
        str(second.instance_id)
    }


def test_csv_has_a_header_and_one_line_per_row(ran: str, tmp_path: Path) -> None:
    """One table per CSV file, written whole to --output; JSON cells are canonical JSON text."""
    target = tmp_path / "history.csv"
    result = CliRunner().invoke(
        app,
        [
            "export",
            "--database-url",
            ran,
            "--what",
            "history",
            "--format",
            "csv",
            "--output",
            str(target),
        ],
    )
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(target.read_text())))
    code, out = _export(ran, "--what", "history")
    assert (code, len(table)) == (0, len(out.splitlines()))
    assert json.loads(table[0]["changes"])["added"]
    assert not (tmp_path / "history.csv.partial").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "unknown format 'xml': choose from jsonl, csv, parquet"),
        (["--format", "parquet"], "parquet holds one table: name it with --what"),
        (["--format", "csv"], "csv holds one table: name it with --what"),
        (
            ["--what", "secrets"],
            "cannot export 'secrets': choose from history, attributes, logs, admin",
        ),
        (["--since", "2026-01-02", "--until", "2026-01-01"], "the time range is empty"),
        (["--instance", "nobody"], "no instance named or with id 'nobody'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(ran: str, args: list[str], message: str) -> None:
    """Every refusal names what was wrong; nothing is written."""
    result = CliRunner().invoke(app, ["export", "--database-url", ran, *args])
    assert result.exit_code == 2
    assert message in result.output


def test_parquet_reads_back_typed_with_every_row(ran: str, tmp_path: Path) -> None:
    """One table per Parquet file, typed columns, the same rows and links as JSON Lines."""
    import pyarrow as pa  # noqa: PLC0415 - the dev extra installs it; imported where used
    import pyarrow.parquet as pq  # noqa: PLC0415

    target = tmp_path / "history.parquet"
    code, _ = _export(ran, "--what", "history", "--format", "parquet", "--output", str(target))
    assert code == 0
    table = pq.read_table(target)
    code, out = _export(ran, "--what", "history")
    expected = [json.loads(line)["row"] for line in out.splitlines()]
    assert table.num_rows == len(expected)
    assert table.schema.field("sequence").type == pa.int64()
    assert table.schema.field("transition_timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("history_id").type == pa.string()
    got = table.to_pylist()
    assert [r["chain_hash"] for r in got] == [r["chain_hash"] for r in expected]
    assert [r["history_id"] for r in got] == [r["history_id"] for r in expected]
    first = got[0]
    stamp = first["transition_timestamp"].isoformat(timespec="microseconds")[:-6] + "Z"
    assert stamp == expected[0]["transition_timestamp"]
    assert json.loads(first["changes"]) == expected[0]["changes"]


def test_parquet_of_a_large_table_has_a_row_group_per_page(
    ran: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are written a page at a time: a small page gives several row groups, no row lost."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    from chameleon_workflow import exporting  # noqa: PLC0415

    monkeypatch.setattr(exporting, "PAGE", 7)
    target = tmp_path / "attributes.parquet"
    code, _ = _export(ran, "--what", "attributes", "--format", "parquet", "--output", str(target))
    assert code == 0
    code, out = _export(ran, "--what", "attributes")
    rows = len(out.splitlines())
    meta = pq.ParquetFile(target).metadata
    assert (meta.num_rows, meta.num_row_groups) == (rows, -(-rows // 7))


def test_parquet_without_pyarrow_is_exit_2(ran: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the parquet extra the export says what to install, and writes nothing."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    result = CliRunner().invoke(
        app, ["export", "--database-url", ran, "--what", "logs", "--format", "parquet"]
    )
    assert result.exit_code == 2
    assert "parquet export needs pyarrow: install chameleon-workflow[parquet]" in result.output
    assert result.stdout_bytes.count(b"PAR1") == 0
