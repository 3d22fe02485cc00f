"""The workflow engine: checkout, submit, fail, heartbeat, sweep and remediation."""

from chameleon_workflow.engine.service import SweepResult, UOWView, WorkflowEngine

__all__ = ["SweepResult", "UOWView", "WorkflowEngine"]
