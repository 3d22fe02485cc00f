"""The workflow engine: checkout, submit, fail, heartbeat, sweep and remediation."""

from chameleon_workflow.engine.service import WorkflowEngine
from chameleon_workflow.engine.views import SweepResult, UOWView

__all__ = ["SweepResult", "UOWView", "WorkflowEngine"]
