"""The fan-out and oversight example in docs/workflows.md runs as written, on both back ends."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.ledger.service import UOWPersistenceService

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"


def test_the_oversight_example_runs(session_factory: sessionmaker[Session]) -> None:
    """Every Python block of the oversight section runs; the ledger verifies clean after."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Pilot oversight") :]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1
    namespace = {"factory": session_factory}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)  # our own document
    with session_factory() as session:
        assert UOWPersistenceService().verify_database(session).ok
