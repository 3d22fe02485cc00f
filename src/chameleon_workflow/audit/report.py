"""What verification reports: the kinds of finding, each finding, and the whole report."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from chameleon_workflow.keys import LegacyTally
from chameleon_workflow.redactions import Redactions


class FindingKind(enum.StrEnum):
    """Kinds of problems verification reports."""

    DRIFT = "DRIFT"
    ATTRIBUTE_VERSION_GAP = "ATTRIBUTE_VERSION_GAP"
    SEQUENCE_GAP = "SEQUENCE_GAP"
    CHAIN_BROKEN = "CHAIN_BROKEN"
    DISCONTINUITY = "DISCONTINUITY"
    HEAD_MISMATCH = "HEAD_MISMATCH"
    NO_HISTORY = "NO_HISTORY"
    ORPHANED = "ORPHANED"
    PROTECTION_MISSING = "PROTECTION_MISSING"
    DEFINITION_ALTERED = "DEFINITION_ALTERED"
    ATTRIBUTE_MISMATCH = "ATTRIBUTE_MISMATCH"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    KEY_LEDGER = "KEY_LEDGER"
    LOG_STREAM = "LOG_STREAM"
    ADMIN_LEDGER = "ADMIN_LEDGER"
    #: An archived segment missing, truncated, edited, or not the one its manifest names.
    ARCHIVE = "ARCHIVE"


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken item: what, on which UOW (empty for the database), at which sequence, how."""

    kind: FindingKind
    uow_id: str
    sequence: int | None
    detail: str

    def __str__(self) -> str:
        """Render as one line for logs and the CLI."""
        if not self.uow_id:
            return f"{self.kind}: {self.detail}"
        at = f" #{self.sequence}" if self.sequence is not None else ""
        return f"{self.kind} uow {self.uow_id}{at}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """The result of a verification run."""

    uows_checked: int
    history_rows_checked: int
    attribute_rows_checked: int
    findings: tuple[Finding, ...]
    elapsed_s: float
    #: What else a whole-database run checked (0 when the run was scoped).
    log_rows_checked: int = 0
    streams_checked: int = 0
    admin_events_checked: int = 0
    definitions_checked: int = 0
    #: What is worth knowing but is not tampering: streams whose writer stopped without
    #: closing them (telemetry lost), streams still open.
    notices: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Tell whether nothing was found."""
        return not self.findings

    def rows_per_second(self) -> float:
        """Return history rows verified per second."""
        return self.history_rows_checked / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(slots=True)
class Tally:
    """Counts and findings gathered while a verification run goes on."""

    uows: int = 0
    history: int = 0
    attributes: int = 0
    findings: list[Finding] = field(default_factory=list)
    #: Rows in the unkeyed format: history rows (count and digest of their links) and
    #: attribute rows without a digest, compared with the seal on whole-database runs.
    legacy: LegacyTally = field(default_factory=LegacyTally)
    legacy_attributes: int = 0
    #: Keyed rows whose key the keyring does not hold, per key id.
    unknown_keys: dict[str, int] = field(default_factory=dict)
    log_rows: int = 0
    streams: int = 0
    admin_events: int = 0
    definitions: int = 0
    notices: list[str] = field(default_factory=list)
    #: What the admin ledger records as redacted: such rows are noted, not reported.
    redactions: Redactions = field(default_factory=Redactions)

    def add(self, kind: FindingKind, uow_id: str, sequence: int | None, detail: str) -> None:
        self.findings.append(Finding(kind, uow_id, sequence, detail))
