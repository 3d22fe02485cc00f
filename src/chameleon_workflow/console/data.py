"""What the console's pages read: counts by status, a UOW's timeline, the latest checkpoint.

A timeline row is a ledger entry (``engine.history``) with what a reviewer asks of it:
the verification findings that name its sequence, its position in the Merkle tree and
whether the latest signed checkpoint covers that position.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chameleon_workflow.audit.report import Finding, VerificationReport
from chameleon_workflow.checkpoints import store
from chameleon_workflow.checkpoints.heads import Checkpoint
from chameleon_workflow.db import translated_errors
from chameleon_workflow.engine.history import HistoryEntry, history_page
from chameleon_workflow.engine.paging import Page
from chameleon_workflow.models import UnitsOfWork, UnitsOfWorkHistory
from chameleon_workflow.states import UOWStatus

HISTORY_TABLE = "uow_history"


@dataclass(frozen=True, slots=True)
class Change:
    """One attribute change of a row: its key, old and new value (None when absent)."""

    key: str
    old: Any
    new: Any
    kind: str  # "added", "removed" or "changed"


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """A ledger row of a UOW with its findings and its checkpoint coverage."""

    entry: HistoryEntry
    changes: tuple[Change, ...]
    guardian: str | None
    error: Any
    findings: tuple[Finding, ...]
    position: int | None
    covered: bool

    @property
    def verified(self) -> bool:
        """Tell whether verification found nothing wrong with this row."""
        return not self.findings


@dataclass(frozen=True, slots=True)
class Timeline:
    """A page of a UOW's timeline and the UOW-wide findings (those naming no row)."""

    rows: tuple[TimelineRow, ...]
    next_cursor: str | None
    uow_findings: tuple[Finding, ...]
    checkpoint: Checkpoint | None


def status_counts(
    session: Session, instance_id: uuid.UUID | None, workflow_id: uuid.UUID | None
) -> dict[str, int]:
    """Count UOWs by status (of one instance and workflow when given), every status listed."""
    query = select(UnitsOfWork.status, func.count()).group_by(UnitsOfWork.status)
    if instance_id is not None:
        query = query.where(UnitsOfWork.instance_id == instance_id)
    if workflow_id is not None:
        query = query.where(UnitsOfWork.local_workflow_id == workflow_id)
    with translated_errors():
        found = {str(status): int(count) for status, count in session.execute(query).all()}
    return {status.value: found.get(status.value, 0) for status in UOWStatus}


def uow_instance(session: Session, uow_id: uuid.UUID) -> uuid.UUID | None:
    """Return the instance of a UOW, or None when there is no such UOW."""
    with translated_errors():
        return session.scalar(select(UnitsOfWork.instance_id).where(UnitsOfWork.uow_id == uow_id))


def latest_checkpoint(session: Session) -> Checkpoint | None:
    """Return the newest signed checkpoint, or None before the first seal."""
    with translated_errors():
        row = store.newest(session.connection())
    return None if row is None else store.as_checkpoint(row)


def checkpoint_age_s(checkpoint: Checkpoint, now: datetime) -> float:
    """Return how many seconds ago a checkpoint was signed."""
    signed = datetime.fromisoformat(checkpoint.timestamp.replace("Z", "+00:00"))
    if signed.tzinfo is None:
        signed = signed.replace(tzinfo=UTC)
    return (now - signed).total_seconds()


def timeline(
    session: Session,
    uow_id: uuid.UUID,
    report: VerificationReport,
    cursor: str | None,
    limit: int,
) -> Timeline:
    """Return a page of a UOW's timeline, each row marked by ``report`` and the checkpoint."""
    page: Page[HistoryEntry] = history_page(session, uow_id, cursor, limit)
    head = latest_checkpoint(session)
    connection = session.connection()
    by_sequence: dict[int, list[Finding]] = {}
    for finding in report.findings:
        if finding.sequence is not None:
            by_sequence.setdefault(finding.sequence, []).append(finding)
    rows = []
    for entry in page.items:
        with translated_errors():
            position = store.position_of(connection, HISTORY_TABLE, str(entry.history_id))
        covered = head is not None and position is not None and position < head.tree_size
        rows.append(
            TimelineRow(
                entry=entry,
                changes=changes_of(entry.changes),
                guardian=guardian_of(entry.metadata),
                error=error_of(entry.metadata),
                findings=tuple(by_sequence.get(entry.sequence, ())),
                position=position,
                covered=covered,
            )
        )
    loose = tuple(f for f in report.findings if f.sequence is None)
    return Timeline(tuple(rows), page.next_cursor, loose, head)


def changes_of(diff: Any) -> tuple[Change, ...]:
    """Flatten a stored diff (``added``, ``removed``, ``changed``) into old -> new changes."""
    if not isinstance(diff, Mapping):
        return ()
    found: list[Change] = []
    for key, value in sorted(_mapping(diff.get("added")).items()):
        found.append(Change(str(key), None, value, "added"))
    for key, given in sorted(_mapping(diff.get("changed")).items()):
        pair = _mapping(given)
        found.append(Change(str(key), pair.get("old"), pair.get("new"), "changed"))
    for key, value in sorted(_mapping(diff.get("removed")).items()):
        found.append(Change(str(key), value, None, "removed"))
    return tuple(found)


def guardian_of(metadata: Any) -> str | None:
    """Return the guardian whose decision a row records, or None when it records none."""
    if not isinstance(metadata, Mapping):
        return None
    route = metadata.get("route")
    named = route.get("guardian") if isinstance(route, Mapping) else metadata.get("guardian")
    return named if isinstance(named, str) else None


def error_of(metadata: Any) -> Any:
    """Return the error a row records (a failed condition, a guardian's errors), or None."""
    if not isinstance(metadata, Mapping):
        return None
    route = _mapping(metadata.get("route"))
    for found in (metadata.get("error"), metadata.get("errors"), route.get("error")):
        if found:
            return found
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def findings_by_kind(findings: Sequence[Finding]) -> dict[str, list[Finding]]:
    """Group findings by their kind, kinds in alphabetical order."""
    grouped: dict[str, list[Finding]] = {}
    for finding in sorted(findings, key=lambda f: (str(f.kind), f.uow_id, f.sequence or 0)):
        grouped.setdefault(str(finding.kind), []).append(finding)
    return grouped


def history_owner(session: Session, history_id: uuid.UUID) -> uuid.UUID | None:
    """Return the UOW a ledger row belongs to, or None when there is no such row."""
    table = UnitsOfWorkHistory
    with translated_errors():
        return session.scalar(select(table.uow_id).where(table.history_id == history_id))
