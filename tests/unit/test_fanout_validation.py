"""Import-time validation of decompositions, joins and high-risk rules: every problem at once."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import pytest
import yaml

from chameleon_workflow.errors import InvalidWorkflowError
from chameleon_workflow.workflow import parse_workflow
from chameleon_workflow.workflow.definition import CerberusConfig

PURCHASE_ORDER = (files("chameleon_workflow") / "examples" / "purchase_order.yaml").read_text()


def _data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(PURCHASE_ORDER)
    return data


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidWorkflowError) as caught:
        parse_workflow(data, "po.yaml")
    return caught.value.problems


def _join(data: dict[str, Any]) -> dict[str, Any]:
    for component in data["components"]:
        for guardian in component.get("guardians", []):
            if guardian["name"] == "all_lines_back":
                join: dict[str, Any] = guardian["config"]["join"]
                return join
    raise AssertionError("no join")


def test_the_example_is_valid_and_keeps_its_sections() -> None:
    """The purchase order parses; its stored form carries decompose, join and oversight."""
    document = parse_workflow(_data(), "po.yaml").to_document()
    split = next(r for r in document["roles"] if r["name"] == "split")
    assert split["decompose"]["for_each"] == "line_items"
    assert document["oversight"]["high_risk"][0]["name"] == "large_order"
    intake = next(r for r in document["roles"] if r["name"] == "intake")
    assert "decompose" not in intake  # unset sections are left out: hashes stay as they were


def test_every_problem_is_reported_with_its_location() -> None:
    """Bad start, decomposing non-BETA, join exits, merge/collect overlap, rules: all at once."""
    data = _data()
    data["roles"][1]["decompose"]["start"] = "nowhere"
    data["roles"][0]["decompose"] = {"for_each": "x", "start": "submitted"}
    join = _join(data)
    join["on_failed"] = "failed"
    join["merge"] = ["line_totals"]
    data["oversight"]["high_risk"] += [
        {"name": "ghost", "role": "nobody", "status": "COMPLETED"},
        {"name": "vague", "role": "split"},
        {"name": "odd", "role": "split", "status": "COMPLETED", "reject_to": "nope"},
        {"name": "odd", "role": "approval", "condition": "total >"},
    ]
    assert _problems(data) == [
        "po.yaml: oversight, rule 'vague': a high-risk rule needs a status, a condition or both",
        "po.yaml: oversight, rule 'odd', field 'condition': syntax error in "
        "'total >': invalid syntax",
        "po.yaml: interaction 'line_checks': no producer (no role has an OUTBOUND component to it)",
        "po.yaml: component 'awaiting_lines->consolidate', guardian 'all_lines_back', field "
        "'config.join.on_failed': 'failed' is not an exit of role 'consolidate' (exits: "
        "ready_for_approval, needs_attention)",
        "po.yaml: component 'awaiting_lines->consolidate', guardian 'all_lines_back', field "
        "'config.join': key 'line_totals' is both merged and collected",
        "po.yaml: role 'intake', field 'decompose': only a BETA role may decompose, not ALPHA",
        "po.yaml: role 'split', field 'decompose.start': unknown interaction 'nowhere'",
        "po.yaml: oversight, rule 'ghost', field 'role': unknown role 'nobody'",
        "po.yaml: oversight, rule 'odd', field 'status': a BETA role never moves a UOW to "
        "COMPLETED",
        "po.yaml: oversight, rule 'odd', field 'reject_to': unknown interaction 'nope'",
    ]


def test_a_decomposing_beta_needs_a_join_downstream() -> None:
    """Without a join on its exit, a decomposition is refused (and the join's producer too)."""
    data = _data()
    for component in data["components"]:
        if component.get("interaction") == "awaiting_lines" and component["direction"] == "INBOUND":
            component["guardians"] = [{"name": "gate", "type": "PASS_THRU"}]
    problems = _problems(data)
    assert any("a decomposing BETA needs exactly one exit, the interaction of a join" in p
               for p in problems)  # fmt: skip


def test_a_join_fed_by_a_role_that_does_not_decompose() -> None:
    """A join whose interaction another, non-decomposing role feeds is refused."""
    data = _data()
    data["components"].append(
        {"role": "buyer", "interaction": "awaiting_lines", "direction": "OUTBOUND"}
    )
    problems = _problems(data)
    assert any("role 'buyer' sends UOWs to join interaction 'awaiting_lines'" in p
               for p in problems)  # fmt: skip


def test_a_cerberus_needs_heads_or_a_join() -> None:
    """A CERBERUS with neither heads nor a join is refused; a join alone is fine."""
    with pytest.raises(ValueError, match="at least one head"):
        CerberusConfig.model_validate({})
    config = CerberusConfig.model_validate({"join": {"on_completed": "a", "on_failed": "b"}})
    assert config.heads == ()


def test_decompose_needs_one_shape() -> None:
    """for_each and kinds together, or for_each without start, are refused."""
    data = _data()
    data["roles"][1]["decompose"]["kinds"] = [{"kind": "a", "start": "line_checks"}]
    problems = _problems(data)
    assert any("give either for_each (with start) or kinds, not both" in p for p in problems)
