"""Workflow definitions: the YAML model, its topology rules, and the import into an instance."""

from chameleon_workflow.workflow.definition import WorkflowDefinition
from chameleon_workflow.workflow.importer import (
    CompiledWorkflow,
    find_local_workflow,
    import_workflow,
    load_local_workflow,
)
from chameleon_workflow.workflow.loading import load_workflow, parse_workflow, parse_workflow_text

__all__ = [
    "CompiledWorkflow",
    "WorkflowDefinition",
    "find_local_workflow",
    "import_workflow",
    "load_local_workflow",
    "load_workflow",
    "parse_workflow",
    "parse_workflow_text",
]
