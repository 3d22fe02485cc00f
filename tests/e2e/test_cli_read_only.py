"""Read-only commands never create, migrate or alter a database; only init and upgrade do."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from chameleon_workflow.cli import app
from chameleon_workflow.db import make_engine
from chameleon_workflow.schema import current_revision, upgrade_database

READ_ONLY = (["verify"], ["history", "00000000-0000-4000-8000-000000000001"], ["logs"])
HEAD = "0009"


def _cli(*args: str, url: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--database-url", url])
    return result.exit_code, result.output


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", READ_ONLY)
def test_a_missing_file_is_an_error_and_is_not_created(tmp_path: Path, command: list[str]) -> None:
    """A read-only command on a mistyped SQLite path exits 2 and leaves no file behind."""
    missing = tmp_path / "typo.db"
    code, output = _cli(*command, url=f"sqlite:///{missing}")
    assert (code, output.strip()) == (
        2,
        f"error: no database at {missing}: create it with `chameleon init`",
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [*READ_ONLY, ["import", "examples/minimal.yaml"]])
def test_a_foreign_database_is_refused_untouched(tmp_path: Path, command: list[str]) -> None:
    """A SQLite file that is not Chameleon's is refused (exit 2) and not changed by a byte."""
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE invoices (n INTEGER)")
    before = _digest(foreign)
    code, output = _cli(*command, url=f"sqlite:///{foreign}")
    assert code == 2
    assert (
        output.strip()
        == f"error: sqlite:///{foreign} is not a Chameleon database (no schema revision)"
    )
    assert _digest(foreign) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_an_in_memory_url_is_refused() -> None:
    """An in-memory database holds nothing to read: exit 2, one line."""
    code, output = _cli("verify", url="sqlite://")
    assert (code, output.strip()) == (
        2,
        "error: 'sqlite://' is an in-memory database: it holds nothing",
    )


@pytest.mark.parametrize("command", READ_ONLY)
def test_an_empty_database_is_refused(empty_database_url: str, command: list[str]) -> None:
    """A database that was never migrated is refused on both back ends, and stays empty."""
    if empty_database_url.startswith("sqlite"):
        Path(empty_database_url.removeprefix("sqlite:///")).touch()  # an empty SQLite file
    code, output = _cli(*command, url=empty_database_url)
    assert code == 2
    assert output.strip().endswith("is empty: create it with `chameleon init`")
    engine = make_engine(empty_database_url)
    assert current_revision(engine) is None
    engine.dispose()


def test_an_older_revision_is_refused_until_upgraded(empty_database_url: str) -> None:
    """At an older revision verify exits 2 naming `db upgrade`; after the upgrade it is clean."""
    engine = make_engine(empty_database_url)
    upgrade_database(engine, "0001")
    code, output = _cli("verify", url=empty_database_url)
    assert code == 2
    assert output.strip().endswith(
        f"is at schema revision 0001, older than {HEAD}: upgrade it with `chameleon db upgrade`"
    )
    assert current_revision(engine) == "0001"
    code, output = _cli("db", "upgrade", url=empty_database_url)
    assert code == 0, output
    assert current_revision(engine) == HEAD
    engine.dispose()
    code, output = _cli("verify", url=empty_database_url)
    assert code == 0, output
    assert "verification clean" in output


def test_an_unknown_revision_is_refused(database_url: str) -> None:
    """A revision this version does not know (a newer one) is an error, not findings."""
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    engine.dispose()
    code, output = _cli("verify", url=database_url)
    assert code == 2
    assert "is at schema revision f00d, which this version of Chameleon does not know" in output


def test_an_unknown_instance_is_an_error(database_url: str) -> None:
    """`verify --instance` with an instance that does not exist exits 2, by name or by id."""
    for name in ("nope", "00000000-0000-4000-8000-000000000001"):
        code, output = _cli("verify", "--instance", name, url=database_url)
        assert (code, output.strip()) == (2, f"error: no instance named or with id {name!r}")


def test_upgrade_never_creates_a_database(tmp_path: Path) -> None:
    """`chameleon db upgrade` on a missing file exits 2 without creating it; init creates."""
    target = tmp_path / "new.db"
    code, _ = _cli("db", "upgrade", url=f"sqlite:///{target}")
    assert code == 2
    assert not target.exists()
    code, output = _cli("init", url=f"sqlite:///{target}")
    assert code == 0, output
    assert target.is_file()


def test_read_only_connection_cannot_write(database_url: str) -> None:
    """The engine read-only commands use refuses a write on both back ends."""
    engine = make_engine(database_url, read_only=True)
    with pytest.raises(Exception, match=r"(?i)read.?only"), engine.begin() as conn:
        conn.execute(text("CREATE TABLE scratch (n INTEGER)"))
    engine.dispose()
