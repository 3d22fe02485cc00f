"""Loading a workflow: YAML text or a file, parsed strictly, then every rule checked.

YAML from anyone but the operator goes through ``parse_workflow_text``, which never
touches the file system; duplicate keys are refused instead of keeping the last one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from chameleon_workflow.errors import InvalidWorkflowError
from chameleon_workflow.workflow.definition import WorkflowDefinition
from chameleon_workflow.workflow.rules import collect_problems


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate mapping keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping, raising on a key that appears twice."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_workflow(source: str | Path) -> WorkflowDefinition:
    """Load and fully validate a workflow from a YAML file path or YAML text (trusted input).

    A ``Path``, or a one-line string ending in ``.yaml``/``.yml``, is read as a file: only
    for callers that choose the file (the CLI, tests, scripts). Text from anyone else goes
    through ``parse_workflow_text``, which never touches the file system.
    """
    if isinstance(source, str) and ("\n" in source or not source.endswith((".yaml", ".yml"))):
        return parse_workflow_text(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidWorkflowError([f"{path.name}: cannot read file: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        raise InvalidWorkflowError(
            [f"{path.name}: not UTF-8 text (byte {exc.start}); a workflow is a YAML file"]
        ) from exc
    return parse_workflow_text(text, path.name)


def parse_workflow_text(text: str, source: str = "<string>") -> WorkflowDefinition:
    """Parse and fully validate YAML text as a workflow; ``source`` labels every problem."""
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "malformed YAML"
        if exc.problem and exc.context:
            problem = f"{exc.problem} ({exc.context})"
        raise InvalidWorkflowError([f"{source}: {where}YAML syntax error: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise InvalidWorkflowError([f"{source}: YAML error: {exc}"]) from None
    return parse_workflow(data, source)


def parse_workflow(data: Any, source: str = "<data>") -> WorkflowDefinition:
    """Validate already-parsed data (e.g. a dict) as a workflow; report every problem."""
    problems = collect_problems(data, source)
    if problems:
        raise InvalidWorkflowError(problems)
    assert isinstance(data, Mapping)  # collect_problems reports anything else
    return WorkflowDefinition.model_validate(data)
