"""Handlers for `chameleon worker` on the invoice_approval workflow (docs/workers.md).

    chameleon worker --role triage --handler invoice_worker:triage
    chameleon worker --role approval --handler invoice_worker:Approver

Run from this directory (or with it on PYTHONPATH). A handler gets the checked-out UOW
and returns a Result (attribute changes and reasoning); an exception fails the UOW with
its message, and the UOW waits for remediation.
"""

from __future__ import annotations

from chameleon_workflow.client import UOW
from chameleon_workflow.worker import Result


def triage(uow: UOW) -> Result:
    """Check that an invoice names its vendor; the workflow routes it by amount."""
    vendor = uow.attributes.get("vendor")
    if not vendor:
        raise ValueError(f"invoice {uow.attributes.get('invoice_id')} names no vendor")
    return Result(attributes={"triaged": True}, reasoning=f"vendor {vendor} is known")


class Approver:
    """Approve invoices up to a limit (a class: built once, its handle() runs per UOW)."""

    def __init__(self) -> None:
        """Set the approval limit."""
        self.limit = 10_000

    def handle(self, uow: UOW) -> Result:
        """Approve the invoice when its amount is within the limit."""
        amount = uow.attributes["amount"]
        if amount > self.limit:
            raise ValueError(f"amount {amount} is over the approval limit {self.limit}")
        return Result(attributes={"approved": True}, reasoning=f"{amount} is within the limit")
