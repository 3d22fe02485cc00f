"""The UOW row a new unit of work is inserted with names every column of the table."""

from __future__ import annotations

from chameleon_workflow.ledger.backend import UOW_COLUMNS
from chameleon_workflow.models import UnitsOfWork


def test_the_insert_names_every_uow_column_once() -> None:
    """A column added to the model but not to the driver INSERT would be left NULL."""
    table_columns = [column.name for column in UnitsOfWork.__table__.columns]
    assert sorted(UOW_COLUMNS) == sorted(table_columns)
    assert len(set(UOW_COLUMNS)) == len(UOW_COLUMNS)
