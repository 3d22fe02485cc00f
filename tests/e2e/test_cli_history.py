"""`chameleon history` prints a UOW's timeline: one block per history row, diffs and hashes."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from chameleon_workflow import (
    UOWPersistenceService,
    make_engine,
    make_session_factory,
    upgrade_database,
)
from chameleon_workflow.cli import app
from chameleon_workflow.testing import make_uow


def test_history_shows_each_row_with_its_diff_and_hashes(tmp_path: Path) -> None:
    """Creation, a move and an attribute edit appear in order with statuses, diffs, hashes."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    engine = make_engine(url)
    upgrade_database(engine)
    service = UOWPersistenceService()
    with make_session_factory(engine)() as session:
        attributes = {"amount": 10, "note": "[bold]x"}
        uow = make_uow(session, attributes=attributes, service=service, commit=False)
        service.save_uow(session, uow, "ACTIVE", reasoning="claimed", metadata={"by": "t"})
        service.set_attributes(session, uow, {"amount": 12}, None, "fixed", remove=["note"])
        session.commit()
        rows = service.get_uow_history(session, uow.uow_id)
    engine.dispose()

    result = CliRunner().invoke(app, ["history", str(uow.uow_id), "--database-url", url])

    assert result.exit_code == 0, result.output
    lines = [line.rstrip() for line in result.output.splitlines()]
    assert lines[0] == f"UOW {uow.uow_id} — 3 history rows, oldest first"
    blocks = [line.split("  ")[-1] for line in lines if line.startswith("#")]
    assert blocks == ["CREATED", "TRANSITION", "ATTRIBUTES"]
    body = [line.strip() for line in lines if line.startswith("    ")]
    assert "+ amount     10" in body
    assert '+ note       "[bold]x"' in body  # user text is printed, never taken as markup
    assert "status       PENDING → ACTIVE" in body
    assert 'metadata     {"by":"t"}' in body
    assert "~ amount     10 → 12" in body
    assert '- note       was "[bold]x"' in body
    hashes = [line for line in body if line.startswith("hashes")]
    assert hashes == [
        f"hashes       state {r.new_state_hash[:12]}  chain {r.chain_hash[:12]}" for r in rows
    ]
