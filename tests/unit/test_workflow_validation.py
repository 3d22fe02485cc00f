"""Loading and validating workflow definitions: every problem reported, with its location."""

from __future__ import annotations

from pathlib import Path

import pytest

from chameleon_workflow.errors import InvalidWorkflowError
from chameleon_workflow.states import Direction, GuardianType, RoleType
from chameleon_workflow.workflow.definition import (
    CerberusGuardian,
    DirectionalFilterGuardian,
    WorkflowDefinition,
)
from chameleon_workflow.workflow.loading import load_workflow, parse_workflow, parse_workflow_text

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "chameleon_workflow" / "examples"

MINIMAL = """
name: tiny
roles:
  - {name: start, type: ALPHA}
  - {name: finish, type: OMEGA}
  - {name: fixer, type: EPSILON}
  - {name: sweeper, type: TAU}
interactions:
  - {name: work}
  - {name: failed}
components:
  - {role: start, interaction: work, direction: OUTBOUND}
  - role: finish
    interaction: work
    direction: INBOUND
    guardians: [{name: ok, type: PASS_THRU}]
  - {role: fixer, interaction: failed, direction: INBOUND}
"""


def _problems(source: str | Path) -> list[str]:
    with pytest.raises(InvalidWorkflowError) as info:
        load_workflow(source)
    return info.value.problems


def test_minimal_example_is_valid() -> None:
    """The minimal example loads: ALPHA -> OMEGA with EPSILON and TAU."""
    wf = load_workflow(EXAMPLES / "minimal.yaml")
    assert (wf.name, wf.version) == ("minimal", "1")
    assert [(r.name, r.type) for r in wf.roles] == [
        ("start", RoleType.ALPHA),
        ("finish", RoleType.OMEGA),
        ("fixer", RoleType.EPSILON),
        ("sweeper", RoleType.TAU),
    ]
    assert [c.name for c in wf.components] == ["start->work", "work->finish", "failed->fixer"]


def test_invoice_example_is_valid_and_routes_by_amount() -> None:
    """The invoice example has a triage policy: high amounts to review, errors to review."""
    wf = load_workflow(EXAMPLES / "invoice_approval.yaml")
    policy = wf.routing_policy("triage")
    assert isinstance(policy, DirectionalFilterGuardian)
    assert [(b.condition, b.next_interaction) for b in policy.config.branches] == [
        ("amount > 10000", "needs_review")
    ]
    assert (policy.config.default, policy.config.on_error) == ("ready_for_approval", "needs_review")
    assert [c.interaction for c in wf.components_of("triage", Direction.OUTBOUND)] == [
        "needs_review",
        "ready_for_approval",
    ]
    assert wf.routing_policy("manual_review") is None
    final = wf.components_of("approval", Direction.INBOUND)[0].guardians[0]
    assert isinstance(final, CerberusGuardian)
    assert final.config.heads == ("amount > 0", "amount <= 1000000", "len(invoice_id) > 0")
    assert final.guardian_type == GuardianType.CERBERUS


def test_yaml_text_loads_like_a_file() -> None:
    """YAML text is accepted as well as a path, and component names default from their ends."""
    wf = load_workflow(MINIMAL)
    assert isinstance(wf, WorkflowDefinition)
    assert [c.name for c in wf.components] == ["start->work", "work->finish", "failed->fixer"]


def test_string_path_loads_a_file() -> None:
    """A single-line string ending in .yaml is read as a path."""
    wf = load_workflow(str(EXAMPLES / "minimal.yaml"))
    assert wf.name == "minimal"


def test_text_parser_never_reads_a_file(tmp_path: Path) -> None:
    """parse_workflow_text reads a path-like line as YAML text even when the file exists."""
    target = tmp_path / "real.yaml"
    target.write_text(MINIMAL, encoding="utf-8")
    with pytest.raises(InvalidWorkflowError) as info:
        parse_workflow_text(str(target), "<request>")
    assert info.value.problems == [
        "<request>: workflow: the document must be a mapping with name, roles, interactions, "
        "components"
    ]


def test_text_parser_labels_syntax_errors_with_the_source() -> None:
    """A YAML syntax error in text is reported under the label the caller gave."""
    with pytest.raises(InvalidWorkflowError) as info:
        parse_workflow_text("name: [unclosed", "<request>")
    assert info.value.problems == [
        "<request>: line 1, column 16: YAML syntax error: "
        "expected ',' or ']', but got '<stream end>' (while parsing a flow sequence)"
    ]


def test_text_parser_accepts_yaml_text() -> None:
    """parse_workflow_text returns the same definition as loading the text."""
    assert parse_workflow_text(MINIMAL) == load_workflow(MINIMAL)


def test_definition_round_trips_through_its_document() -> None:
    """The stored JSON document parses back to an equal definition."""
    wf = load_workflow(EXAMPLES / "invoice_approval.yaml")
    assert parse_workflow(wf.to_document()) == wf


def test_invalid_topology_reports_every_problem() -> None:
    """Two ALPHAs, no TAU, an unrouted BETA, an unguarded OMEGA inbound, a dangling interaction."""
    assert _problems(EXAMPLES / "invalid" / "topology.yaml") == [
        "topology.yaml: workflow: needs exactly one ALPHA role, found 2 ('start', 'second_start')",
        "topology.yaml: workflow: needs exactly one TAU role, found 0",
        "topology.yaml: role 'sorter': BETA with 2 exits needs a routing policy "
        "(a DIRECTIONAL_FILTER guardian on one of its OUTBOUND components)",
        "topology.yaml: component 'left->finish': OMEGA's inbound component needs a guardian",
        "topology.yaml: role 'fixer': EPSILON needs exactly one INBOUND component "
        "(its queue of failed UOWs), found 0",
        "topology.yaml: interaction 'nowhere': "
        "no producer (no role has an OUTBOUND component to it)",
        "topology.yaml: interaction 'nowhere': "
        "no consumer (no role has an INBOUND component from it)",
    ]


def test_invalid_names_reports_every_problem() -> None:
    """Duplicates, unknown roles/interactions and policy targets that are not exits."""
    assert _problems(EXAMPLES / "invalid" / "names.yaml") == [
        "names.yaml: role 'review': duplicate role name",
        "names.yaml: interaction 'done': duplicate interaction name",
        "names.yaml: guardian 'router': duplicate guardian name "
        "(guardian names are unique in a workflow)",
        "names.yaml: component 'audit_log->auditor', field 'role': unknown role 'auditor'",
        "names.yaml: component 'audit_log->auditor', field 'interaction': "
        "unknown interaction 'audit_log'",
        "names.yaml: component 'review->done', guardian 'router', "
        "field 'config.branches[0].next_interaction': "
        "'archive' is not an exit of role 'review' (exits: done)",
        "names.yaml: component 'review->done', guardian 'router', field 'config.on_error': "
        "'queue' is not an exit of role 'review' (exits: done)",
    ]


def test_invalid_guardians_reports_every_problem() -> None:
    """Wrong config shapes, unsafe conditions, unknown types and a misplaced policy."""
    assert _problems(EXAMPLES / "invalid" / "guardians.yaml") == [
        "guardians.yaml: role 'sweeper', field 'colour': Extra inputs are not permitted",
        "guardians.yaml: component 'queue->check', guardian 'sneaky', field 'config.condition': "
        "attribute access is not allowed in conditions: 'amount.__class__ is not None'",
        "guardians.yaml: component 'queue->check', guardian 'expiry', "
        "field 'config.max_age_seconds': Input should be greater than 0",
        "guardians.yaml: component 'queue->check', guardian 'missing_condition', "
        "field 'config.condition': Field required",
        "guardians.yaml: component 'checked->finish', guardian 'heads', field 'config.heads[1]': "
        "comprehension is not allowed in conditions: '[x for x in items]'",
        "guardians.yaml: component 'checked->finish', guardian 'either', field 'config.mode': "
        "Input should be 'all' or 'any'",
        "guardians.yaml: component 'checked->finish', guardian 'either', guardian 'child': "
        "Input tag 'MAGIC' found using 'type' does not match any of the expected tags: "
        "'PASS_THRU', 'CRITERIA_GATE', 'TTL_CHECK', 'CERBERUS', 'COMPOSITE'",
        "guardians.yaml: component 'queue->check', guardian 'misplaced_router': "
        "DIRECTIONAL_FILTER (routing policy) belongs on an OUTBOUND component",
    ]


def test_yaml_syntax_error_reports_its_line() -> None:
    """A file that is not YAML gives one problem with line and column."""
    assert _problems(EXAMPLES / "invalid" / "syntax.yaml") == [
        "syntax.yaml: line 6, column 3: YAML syntax error: expected <block end>, but found '?' "
        "(while parsing a block collection)"
    ]


def test_duplicate_yaml_keys_are_refused() -> None:
    """A key given twice in one mapping is an error, not a silent overwrite."""
    assert _problems("name: a\nname: b\n") == [
        "<string>: line 2, column 1: YAML syntax error: duplicate key 'name'"
    ]


def test_missing_file_is_reported() -> None:
    """A path that does not exist is a clear problem."""
    assert _problems(EXAMPLES / "absent.yaml") == [
        "absent.yaml: cannot read file: No such file or directory"
    ]


def test_document_that_is_not_a_mapping_is_refused() -> None:
    """A YAML list or scalar is not a workflow."""
    assert _problems("- just\n- a list\n") == [
        "<string>: workflow: the document must be a mapping with name, roles, interactions, "
        "components"
    ]


def test_empty_mapping_reports_each_missing_section() -> None:
    """Every missing part is named, and with no roles each singleton role is missing."""
    assert _problems("version: 1\nextra: 2\n") == [
        "<string>: workflow: unknown key 'extra' "
        "(expected one of name, version, description, roles, interactions, components, oversight)",
        "<string>: workflow, field 'name': Field required",
        "<string>: workflow: missing section 'roles' (a list of roles)",
        "<string>: workflow: missing section 'interactions' (a list of interactions)",
        "<string>: workflow: missing section 'components' (a list of components)",
        "<string>: workflow: needs exactly one ALPHA role, found 0",
        "<string>: workflow: needs exactly one OMEGA role, found 0",
        "<string>: workflow: needs exactly one EPSILON role, found 0",
        "<string>: workflow: needs exactly one TAU role, found 0",
    ]


def test_bad_role_type_does_not_hide_other_problems() -> None:
    """An unknown role type is reported and the rest of the document is still checked."""
    text = MINIMAL.replace("{name: sweeper, type: TAU}", "{name: sweeper, type: GAMMA}")
    text = text.replace("{name: failed}", "{name: failed}\n  - {name: spare}")
    assert _problems(text) == [
        "<string>: role 'sweeper', field 'type': "
        "Input should be 'ALPHA', 'BETA', 'OMEGA', 'EPSILON' or 'TAU'",
        "<string>: workflow: needs exactly one TAU role, found 0",
        "<string>: interaction 'spare': no producer (no role has an OUTBOUND component to it)",
        "<string>: interaction 'spare': no consumer (no role has an INBOUND component from it)",
    ]


def test_alpha_and_omega_shape_rules() -> None:
    """ALPHA has one exit and no inbound; OMEGA has no exits."""
    text = MINIMAL + (
        "  - {role: start, interaction: failed, direction: INBOUND}\n"
        "  - {role: start, interaction: failed, direction: OUTBOUND}\n"
        "  - {role: finish, interaction: failed, direction: OUTBOUND}\n"
    )
    assert _problems(text) == [
        "<string>: role 'start': ALPHA takes no INBOUND components "
        "(the root UOW starts at its exit)",
        "<string>: role 'start': ALPHA needs exactly one exit (OUTBOUND component), found 2",
        "<string>: role 'finish': OMEGA finishes UOWs and has no exits, found 1",
    ]


def test_beta_needs_inbound_and_exit_and_one_policy() -> None:
    """A BETA without inbound or exit is reported, and two routing policies are one too many."""
    policy = (
        "    guardians:\n      - name: {name}\n        type: DIRECTIONAL_FILTER\n"
        "        config: {{default: work}}\n"
    )
    extra_roles = "\n  - {name: idle, type: BETA}\n  - {name: busy, type: BETA}"
    text = MINIMAL.replace("{name: sweeper, type: TAU}", "{name: sweeper, type: TAU}" + extra_roles)
    text += "  - role: busy\n    interaction: work\n    direction: OUTBOUND\n" + policy.format(
        name="p1"
    )
    text += "  - role: busy\n    interaction: failed\n    direction: OUTBOUND\n" + policy.format(
        name="p2"
    )
    assert _problems(text) == [
        "<string>: role 'idle': BETA needs at least one INBOUND component",
        "<string>: role 'idle': BETA needs at least one exit (OUTBOUND component)",
        "<string>: role 'busy': BETA needs at least one INBOUND component",
        "<string>: role 'busy': 2 routing policies; a role has at most one",
    ]


def test_duplicate_component_for_same_role_and_interaction() -> None:
    """Two components joining the same role and interaction the same way are refused."""
    text = MINIMAL + "  - {name: again, role: fixer, interaction: failed, direction: INBOUND}\n"
    assert _problems(text) == [
        "<string>: role 'fixer': 2 INBOUND components for interaction 'failed'",
        "<string>: role 'fixer': EPSILON needs exactly one INBOUND component "
        "(its queue of failed UOWs), found 2",
    ]


def test_composite_cannot_hold_a_routing_policy() -> None:
    """Children of a COMPOSITE are gates; a DIRECTIONAL_FILTER among them is refused."""
    text = MINIMAL.replace(
        "guardians: [{name: ok, type: PASS_THRU}]",
        "guardians:\n      - name: both\n        type: COMPOSITE\n        config:\n"
        "          mode: all\n          guardians:\n"
        "            - {name: inner, type: DIRECTIONAL_FILTER, config: {default: work}}\n",
    )
    assert _problems(text) == [
        "<string>: component 'work->finish', guardian 'both', guardian 'inner': "
        "Input tag 'DIRECTIONAL_FILTER' found using 'type' does not match any of the expected "
        "tags: 'PASS_THRU', 'CRITERIA_GATE', 'TTL_CHECK', 'CERBERUS', 'COMPOSITE'"
    ]
