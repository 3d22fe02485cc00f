"""`POST /uows/{id}/redactions`: the admin erases a value of a finished UOW; verify stays clean."""

from __future__ import annotations

from pathlib import Path

from http_world import AUDITOR_TOKEN, call, served
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.demo import run_demo
from chameleon_workflow.models import UnitsOfWork, UOWAttribute
from chameleon_workflow.states import UOWStatus


def test_the_admin_redacts_a_finished_uow(
    database_url: str, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """201 with what was rewritten; verify notes it; a second time 422; the auditor 403."""
    run_demo(session_factory, uows=4)
    with session_factory() as session:
        uow = session.scalars(
            select(UnitsOfWork.uow_id)
            .join(UOWAttribute, UOWAttribute.uow_id == UnitsOfWork.uow_id)
            .where(UnitsOfWork.status == UOWStatus.COMPLETED, UOWAttribute.key == "vendor")
        ).first()
    assert uow is not None
    body = {"key": "vendor", "reason": "erasure request 42"}
    with served(database_url, tmp_path) as (server, http):
        call(http, "POST", f"/uows/{uow}/redactions", AUDITOR_TOKEN, 403, json=body)
        done = call(http, "POST", f"/uows/{uow}/redactions", server.admin_token, 201, json=body)
        assert (done["uow_id"], done["key"], done["attribute_rows"]) == (str(uow), "vendor", 1)
        report = call(http, "GET", "/verify", AUDITOR_TOKEN, 200)
        assert report["findings"] == []
        assert any("'vendor' version 1 was redacted" in n for n in report["notices"])
        again = call(http, "POST", f"/uows/{uow}/redactions", server.admin_token, 422, json=body)
        assert again["detail"] == f"attribute 'vendor' of UOW {uow} is already redacted"
