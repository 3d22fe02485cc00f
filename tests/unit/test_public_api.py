"""The package's public names: what ``chameleon_workflow`` exports and where errors live."""

from __future__ import annotations

import chameleon_workflow
from chameleon_workflow import demo, errors, workflow
from chameleon_workflow.engine import service as engine
from chameleon_workflow.engine import views
from chameleon_workflow.server import auth, problems


def test_every_exported_name_exists() -> None:
    """Each name in __all__ is importable from the package, and __all__ has no duplicates."""
    missing = [name for name in chameleon_workflow.__all__ if not hasattr(chameleon_workflow, name)]
    assert missing == []
    assert len(set(chameleon_workflow.__all__)) == len(chameleon_workflow.__all__)


def test_engine_names_are_exported() -> None:
    """The engine, its views, the demo and the workflow loaders come from the package root."""
    exported = {
        name: getattr(chameleon_workflow, name)
        for name in (
            "WorkflowEngine",
            "UOWView",
            "SweepResult",
            "run_demo",
            "DemoSummary",
            "load_workflow",
            "parse_workflow",
            "parse_workflow_text",
            "WorkflowDefinition",
        )
    }
    assert exported == {
        "WorkflowEngine": engine.WorkflowEngine,
        "UOWView": views.UOWView,
        "SweepResult": views.SweepResult,
        "run_demo": demo.run_demo,
        "DemoSummary": demo.DemoSummary,
        "load_workflow": workflow.load_workflow,
        "parse_workflow": workflow.parse_workflow,
        "parse_workflow_text": workflow.parse_workflow_text,
        "WorkflowDefinition": workflow.WorkflowDefinition,
    }


def test_not_authenticated_lives_in_errors() -> None:
    """NotAuthenticatedError is defined in errors, exported by the root, and not by auth."""
    assert errors.NotAuthenticatedError.__module__ == "chameleon_workflow.errors"
    assert chameleon_workflow.NotAuthenticatedError is errors.NotAuthenticatedError
    assert "NotAuthenticatedError" not in auth.__all__
    assert issubclass(errors.NotAuthenticatedError, errors.ChameleonError)


def test_not_authenticated_is_a_401_problem() -> None:
    """The API renders NotAuthenticatedError as a 401 problem with its message."""
    problem = problems.problem_of(errors.NotAuthenticatedError("missing bearer token"))
    assert problem.model_dump(exclude_none=True) == {
        "type": "urn:chameleon:problem:not-authenticated",
        "title": "Unauthorized",
        "status": 401,
        "detail": "missing bearer token",
    }
