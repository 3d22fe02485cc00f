"""One problem type per kind of error, always with one status, each listed in docs/server.md."""

from __future__ import annotations

import re
from pathlib import Path

from chameleon_workflow.errors import InvalidValueError, MalformedRequestError, NotFoundError
from chameleon_workflow.server.problems import (
    ERROR_STATUS,
    HTTP_TYPES,
    invalid_request,
    problem,
    problem_of,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "server.md"
ROW = re.compile(r"^\| `urn:chameleon:problem:([a-z-]+)` \| (\d{3}) \|", re.MULTILINE)


def produced() -> dict[str, set[int]]:
    """Return every problem type the server can answer, with the statuses it comes with."""
    found: dict[str, set[int]] = {}
    pairs = [(slug, status) for _, status, slug in ERROR_STATUS]
    pairs += [(slug, status) for status, slug in HTTP_TYPES.items()]
    pairs.append(("internal-error", problem_of(RuntimeError("x")).status))
    for slug, status in pairs:
        found.setdefault(slug, set()).add(status)
    return found


def test_each_type_has_one_status_and_is_documented() -> None:
    """The documented table and the server's types agree, type by type and status by status."""
    documented = {slug: {int(status)} for slug, status in ROW.findall(DOC.read_text("utf-8"))}
    assert produced() == documented


def test_invalid_input_has_one_type_however_it_is_found() -> None:
    """Input FastAPI refuses and input the engine refuses share invalid-value; bad JSON is 400."""
    by_fastapi = invalid_request([{"loc": ("body", "name"), "msg": "Field required"}])
    by_engine = problem_of(InvalidValueError("amount: too deep"))
    assert (by_fastapi.type, by_fastapi.status) == ("urn:chameleon:problem:invalid-value", 422)
    assert (by_engine.type, by_engine.status) == ("urn:chameleon:problem:invalid-value", 422)
    not_json = invalid_request([{"type": "json_invalid", "loc": ("body", 1), "msg": "bad"}])
    import_not_json = problem_of(MalformedRequestError("the body is not valid JSON"))
    assert {not_json.type, import_not_json.type} == {"urn:chameleon:problem:malformed-request"}
    assert {not_json.status, import_not_json.status} == {400}
    assert problem(404, "no route").type == problem_of(NotFoundError("x")).type
