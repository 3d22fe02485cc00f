"""`chameleon redact`: erases a value, says what it rewrote; bad input is one line, exit 2."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from chameleon_workflow.cli import app
from chameleon_workflow.demo import run_demo
from chameleon_workflow.models import UnitsOfWork, UOWAttribute
from chameleon_workflow.states import UOWStatus


@pytest.fixture
def uow(database_url: str, session_factory: sessionmaker[Session]) -> str:
    """A UOW with a vendor, after a small demo."""
    run_demo(session_factory, uows=3)
    with session_factory() as session:
        first = session.scalars(
            select(UOWAttribute.uow_id)
            .join(UnitsOfWork, UnitsOfWork.uow_id == UOWAttribute.uow_id)
            .where(UOWAttribute.key == "vendor", UnitsOfWork.status == UOWStatus.COMPLETED)
        ).first()
    return str(first)


def _redact(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["redact", "--database-url", url, *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_redact_reports_the_rows_and_verify_stays_clean(database_url: str, uow: str) -> None:
    """The command names what it rewrote; `verify` exits 0 and notes the redaction."""
    code, output = _redact(database_url, uow, "vendor", "--reason", "erasure request 42")
    assert code == 0, output
    assert f"redacted 'vendor' of UOW {uow}: 1 attribute rows" in output
    result = CliRunner().invoke(app, ["verify", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "was redacted" in result.output


def test_bad_input_is_one_line_and_exit_2(database_url: str, uow: str) -> None:
    """Unknown UOW or key, an empty reason, a second redaction, a malformed id: exit 2."""
    unknown = str(uuid.uuid4())
    cases = [
        ([unknown, "vendor", "--reason", "r"], f"no UOW with id {unknown}"),
        ([uow, "colour", "--reason", "r"], f"UOW {uow} has no attribute 'colour'"),
        ([uow, "vendor", "--reason", "  "], "a redaction needs a reason"),
        (["not-a-uuid", "vendor", "--reason", "r"], "UOW_ID 'not-a-uuid' is not a UUID"),
    ]
    for args, message in cases:
        code, output = _redact(database_url, *args)
        assert (code, message in output) == (2, True), output
    assert _redact(database_url, uow, "vendor", "--reason", "first")[0] == 0
    code, output = _redact(database_url, uow, "vendor", "--reason", "again")
    assert code == 2
    assert f"attribute 'vendor' of UOW {uow} is already redacted" in output
