"""Verification of the ledger: the hash chain, attributes and UOW rows, read back and checked."""

from chameleon_workflow.audit.report import Finding, FindingKind, VerificationReport
from chameleon_workflow.audit.verify import verify

__all__ = ["Finding", "FindingKind", "VerificationReport", "verify"]
