"""Condition bombs are refused before they build anything, well inside the time budget."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chameleon_workflow.errors import ConditionEvaluationError
from chameleon_workflow.expressions import MAX_EVALUATION_SECONDS, evaluate

TOO_LARGE = "the result would hold more than 100000 elements and characters"
BOMBS = [
    ("'%1000000000d' % 1", {}, "string formatting with % is not allowed in conditions"),
    ("fmt % 1", {"fmt": "%1000000000d"}, "string formatting with % is not allowed in conditions"),
    ("'%*d' % (10 ** 9, 1)", {}, "string formatting with % is not allowed in conditions"),
    ("sum([[1] * 1000] * 1000, [])", {}, TOO_LARGE),
    ("sum(xs, [])", {"xs": [[1] * 10] * 10}, "TypeError: sum() adds a list of numbers"),
    ("sum(['a', 'b'])", {}, "TypeError: sum() adds numbers only"),
    ("[[[1] * 100] * 100] * 100", {}, TOO_LARGE),
    ("[big, big, big, big, big, big]", {"big": [0] * 20_000}, TOO_LARGE),
    ("str([s] * 1000)", {"s": "a" * 5000}, TOO_LARGE),
    ("str(x)", {"x": [[0] * 1000] * 200}, TOO_LARGE),
    ("l + l", {"l": [[0] * 900] * 100}, TOO_LARGE),
    ("s + s", {"s": "a" * 6000}, "string result longer than 10000"),
    ("n * n", {"n": 2**4000}, "integer result larger than 4096 bits"),
]


@pytest.mark.parametrize(("text", "variables", "message"), BOMBS)
def test_bomb_is_refused_fast(text: str, variables: dict[str, Any], message: str) -> None:
    """Each bomb fails with its own message before its result exists, in milliseconds."""
    started = time.perf_counter()
    with pytest.raises(ConditionEvaluationError) as caught:
        evaluate(text, variables)
    elapsed = time.perf_counter() - started
    assert str(caught.value) == message
    assert elapsed < 0.5  # unbounded, the first took seconds or gigabytes


def test_a_long_condition_stops_at_the_deadline() -> None:
    """A condition of many bounded but slow steps ends near its 50 ms budget, not after all."""
    chained = " and ".join(["x == y"] * 40)
    variables = {"x": list(range(300_000)), "y": list(range(300_000))}
    started = time.perf_counter()
    with pytest.raises(ConditionEvaluationError) as caught:
        evaluate(chained, variables)
    elapsed = time.perf_counter() - started
    assert str(caught.value) == f"evaluation exceeded {MAX_EVALUATION_SECONDS}s"
    assert elapsed < MAX_EVALUATION_SECONDS + 0.1  # overrun by at most one step


def test_ordinary_conditions_still_work() -> None:
    """Sums, concatenation, repetition and str() of small values behave as in Python."""
    variables = {"xs": [1, 2.5, 3], "s": "ab"}
    assert evaluate("sum(xs) == 6.5", variables) is True
    assert evaluate("s * 3 + 'c'", variables) == "abababc"
    assert evaluate("[0] * 3 + [1]", variables) == [0, 0, 0, 1]
    assert evaluate("str(xs)", variables) == "[1, 2.5, 3]"
    assert evaluate("10 % 3", variables) == 1
