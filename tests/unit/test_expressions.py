"""The sandboxed condition language: what it computes and everything it refuses."""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chameleon_workflow import expressions
from chameleon_workflow.errors import (
    ConditionEvaluationError,
    ConditionSyntaxError,
    ExpressionError,
)
from chameleon_workflow.expressions import (
    evaluate,
    parse_condition,
    register_function,
    registered_functions,
)


@pytest.fixture
def restore_registry() -> Iterator[None]:
    """Undo registrations a test makes."""
    saved = dict(expressions._FUNCTIONS)
    yield
    expressions._FUNCTIONS.clear()
    expressions._FUNCTIONS.update(saved)
    expressions._parse_cached.cache_clear()


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("amount > 10000", {"amount": 12000}, True),
        ("amount > 10000", {"amount": 10000}, False),
        ("0 < amount <= 100", {"amount": 100}, True),
        ("0 < amount <= 100 < cap", {"amount": 100, "cap": 50}, False),
        ("a == b != c", {"a": 1, "b": 1, "c": 2}, True),
        ("x is None", {"x": None}, True),
        ("x is not None", {"x": 0}, True),
        ("status in ['new', 'open']", {"status": "open"}, True),
        ("status not in ('new', 'open')", {"status": "open"}, False),
        ("'vip' in tags", {"tags": ["vip", "eu"]}, True),
        ("'ab' in name", {"name": "cabin"}, True),
        ("a and b", {"a": 1, "b": 0}, 0),
        ("a or b", {"a": 0, "b": "x"}, "x"),
        ("not a", {"a": []}, True),
        ("(a + b) * c - d / 4", {"a": 1, "b": 2, "c": 3, "d": 2}, 8.5),
        ("7 // 2 + 7 % 2", {}, 4),
        ("-x + +y", {"x": 2, "y": 5}, 3),
        ("2 ** 10", {}, 1024),
        ("'a' + 'b' * 2", {}, "abb"),
        ("[1, 2] + [3]", {}, [1, 2, 3]),
        ("'high' if amount > 5 else 'low'", {"amount": 9}, "high"),
        ("customer['tier'] == 'gold'", {"customer": {"tier": "gold"}}, True),
        ("items[-1]", {"items": [1, 2, 3]}, 3),
        ("True and None is None", {}, True),
        ("1.5e3", {}, 1500.0),
    ],
)
def test_conditions_evaluate_like_python(
    text: str, variables: dict[str, Any], expected: Any
) -> None:
    """Comparisons (chained too), logic, arithmetic, membership and literals follow Python."""
    assert evaluate(text, variables) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abs(-3)", 3),
        ("min(4, 2, 9)", 2),
        ("max([4, 2, 9])", 9),
        ("round(2.675, 1)", 2.7),
        ("round(7.5)", 8),
        ("floor(2.7)", 2),
        ("ceil(2.1)", 3),
        ("len('abcd')", 4),
        ("sum([1, 2, 3])", 6),
        ("lower('AbC')", "abc"),
        ("upper('AbC')", "ABC"),
        ("strip('  x ')", "x"),
        ("startswith('invoice-7', 'inv')", True),
        ("endswith('invoice-7', '-7')", True),
        ("int('42') + float('0.5')", 42.5),
        ("str(12) + '!'", "12!"),
        ("bool(0)", False),
    ],
)
def test_registered_functions(text: str, expected: Any) -> None:
    """Every built-in registered function computes what its name says."""
    assert evaluate(text, {}) == expected


def test_default_registry_lists_the_safe_functions() -> None:
    """The default registry holds exactly the documented functions."""
    assert registered_functions() == {
        "abs", "min", "max", "round", "floor", "ceil", "len", "sum", "int", "float", "str",
        "bool", "lower", "upper", "strip", "startswith", "endswith",
    }  # fmt: skip


@pytest.mark.usefixtures("restore_registry")
def test_register_function_makes_it_callable() -> None:
    """A registered function can be called, and a condition parsed before sees it too."""
    with pytest.raises(ConditionSyntaxError):
        parse_condition("double(x) > 5")
    register_function("double", lambda value: value * 2)
    assert evaluate("double(x) > 5", {"x": 3}) is True


@pytest.mark.parametrize("name", ["__import__", "_hidden", "not an identifier", ""])
def test_register_function_refuses_private_or_bad_names(name: str) -> None:
    """Only public identifiers can be registered."""
    with pytest.raises(ExpressionError, match="not a public identifier"):
        register_function(name, abs)


def test_register_function_refuses_non_callables() -> None:
    """Registering something that cannot be called is refused."""
    with pytest.raises(ExpressionError, match="is not callable"):
        register_function("answer", 42)  # type: ignore[arg-type]


def test_parsed_conditions_are_cached() -> None:
    """Parsing the same text twice returns the same compiled object."""
    first = parse_condition("amount > 1 and vip")
    assert parse_condition("amount > 1 and vip") is first
    assert (first.names, first.functions) == (frozenset({"amount", "vip"}), frozenset())


def test_compiled_condition_records_functions() -> None:
    """A compiled condition lists the functions it calls, separately from its variables."""
    compiled = parse_condition("max(a, b) > len(c)")
    assert (compiled.names, compiled.functions) == ({"a", "b", "c"}, {"max", "len"})


_HINT = (
    " (registered functions: abs, bool, ceil, endswith, float, floor, int, len, lower, max,"
    " min, round, startswith, str, strip, sum, upper)"
)
REFUSED_AT_PARSE = [
    ("().__class__.__bases__", "attribute access"),
    (
        "().__class__.__bases__[0].__subclasses__()",
        "calling anything but a registered function by name",
    ),
    ("amount.real", "attribute access"),
    ("name.upper()", "calling anything but a registered function by name"),
    ("'abc'.__len__()", "calling anything but a registered function by name"),
    ("[x for x in items]", "comprehension"),
    ("{x for x in items}", "comprehension"),
    ("(x for x in items)", "comprehension"),
    ("{k: 1 for k in items}", "comprehension"),
    ("lambda: 1", "lambda"),
    ("(lambda x: x)(1)", "calling anything but a registered function by name"),
    ("__import__('os')", "calling '__import__'"),
    ("exec('1')", "calling 'exec'"),
    ("eval('1')", "calling 'eval'"),
    ("compile('1', 'f', 'eval')", "calling 'compile'"),
    ("open('/etc/passwd')", "calling 'open'"),
    ("getattr(x, 'y')", "calling 'getattr'"),
    ("globals()", "calling 'globals'"),
    ("__builtins__", "the name '__builtins__' (leading underscore)"),
    ("_secret > 1", "the name '_secret' (leading underscore)"),
    ("f'{amount}'", "f-string"),
    ("(n := 5)", "assignment (:=)"),
    ("items[1:2]", "slicing"),
    ("max(*items)", "star unpacking"),
    ("round(number=1)", "a keyword argument"),
    ("{'a': 1}", "dict literal"),
    ("b'raw'", "the literal b'raw'"),
    ("9 ** 1000", "an exponent above 100"),
    ("-" * 40 + "1", "nesting deeper than 32 levels"),
    ("[" * 40 + "]" * 40, "nesting deeper than 32 levels"),
    ("+".join(["x"] * 200), "nesting deeper than 32 levels"),
    (" or ".join(["x > 1"] * 120), "an expression of more than 300 nodes"),
]


@pytest.mark.parametrize(("text", "why"), REFUSED_AT_PARSE)
def test_unsafe_conditions_are_refused_at_parse_time(text: str, why: str) -> None:
    """Dunder walks, attribute/method access, comprehensions, lambdas and more never parse."""
    hint = _HINT if why.startswith("calling '") else ""
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition(text)
    assert str(info.value) == f"{why} is not allowed in conditions: {text!r}{hint}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x" * 2001, "condition is 2001 characters long; the limit is 2000"),
        ("1 +", "syntax error in '1 +': invalid syntax"),
        ("x = 1", "syntax error in 'x = 1': invalid syntax"),
        ("import os", "syntax error in 'import os': invalid syntax"),
        ("   ", "empty condition"),
    ],
)
def test_malformed_conditions_are_refused_at_parse_time(text: str, message: str) -> None:
    """Over-long, empty and syntactically broken conditions are refused with their reason."""
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition(text)
    assert str(info.value) == message


@pytest.mark.usefixtures("restore_registry")
def test_refused_condition_never_runs_any_part() -> None:
    """A condition refused at parse time calls none of its functions."""
    calls: list[int] = []
    register_function("spy", lambda value: calls.append(value) or value)
    with pytest.raises(ConditionSyntaxError, match="attribute access"):
        evaluate("spy(1) and spy(2).__class__", {})
    assert calls == []


REFUSED_AT_RUN = [
    ("9 ** 9 ** 9", "exponent 387420489 exceeds 100"),
    ("(2 ** 100) ** 50", "power result larger than 4096 bits"),
    ("'a' * 10 ** 9", "repetition would give 1000000000 characters; the limit is 10000"),
    ("10 ** 9 * 'a'", "repetition would give 1000000000 characters; the limit is 10000"),
    ("[0] * 10 ** 6", "repetition would give 1000000 items; the limit is 1000"),
    ("s + s", "string result longer than 10000"),
    ("round(5, -10 ** 9)", "ValueError: round(): ndigits -1000000000 out of range ±100"),
    ("x ** 100 * x ** 100", "integer result larger than 4096 bits"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED_AT_RUN)
def test_oversized_results_are_refused_before_they_are_built(text: str, message: str) -> None:
    """Huge powers, strings and lists fail fast with a clear error instead of eating memory."""
    started = time.monotonic()
    with pytest.raises(ConditionEvaluationError) as info:
        evaluate(text, {"s": "a" * 6000, "x": 2**30})
    assert str(info.value) == message
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("text", "variables", "message"),
    [
        ("amount > 1", {}, "undefined name 'amount'"),
        (
            "amount > 10000",
            {"amount": "12000"},
            "TypeError: '>' not supported between instances of 'str' and 'int'",
        ),
        ("1 / count", {"count": 0}, "ZeroDivisionError: division by zero"),
        ("items[5]", {"items": [1]}, "IndexError: list index out of range"),
        ("int(code)", {"code": "x"}, "ValueError: invalid literal for int() with base 10: 'x'"),
        ("lower(1)", {}, "TypeError: expected a string, got int"),
        ("n[0]", {"n": 5}, "cannot index a int"),
    ],
)
def test_evaluation_failures_raise_one_clear_error(
    text: str, variables: dict[str, Any], message: str
) -> None:
    """Undefined names, type errors and division by zero become ConditionEvaluationError."""
    with pytest.raises(ConditionEvaluationError) as info:
        evaluate(text, variables)
    assert str(info.value) == message


def test_evaluation_has_a_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Evaluation stops with an error once its wall-clock budget is spent."""
    monkeypatch.setattr(expressions, "MAX_EVALUATION_SECONDS", -1.0)
    with pytest.raises(ConditionEvaluationError, match=r"evaluation exceeded -1.0s"):
        evaluate("1 + 1", {})


def test_non_string_condition_is_refused() -> None:
    """A condition must be text."""
    with pytest.raises(ConditionSyntaxError, match="a condition must be a string, not int"):
        parse_condition(5)  # type: ignore[arg-type]


_OPS: dict[str, Callable[[int, int], int]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}


@st.composite
def _arithmetic(draw: st.DrawFn, depth: int = 3) -> tuple[str, int]:
    """Draw a small integer expression together with its value computed by Python."""
    if depth == 0 or draw(st.booleans()):
        value = draw(st.integers(min_value=-50, max_value=50))
        return f"({value})", value
    symbol = draw(st.sampled_from(sorted(_OPS)))
    left_text, left = draw(_arithmetic(depth - 1))
    right_text, right = draw(_arithmetic(depth - 1))
    return f"({left_text} {symbol} {right_text})", _OPS[symbol](left, right)


@given(_arithmetic())
def test_integer_arithmetic_matches_python(case: tuple[str, int]) -> None:
    """Any small integer expression evaluates to what Python's operators compute."""
    text, expected = case
    assert evaluate(text, {}) == expected


@given(st.integers(-1000, 1000), st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_chained_comparison_matches_python(a: int, b: int, c: int) -> None:
    """A chained comparison equals the conjunction of its pairs."""
    assert evaluate("a < b <= c", {"a": a, "b": b, "c": c}) == ((a < b) and (b <= c))  # noqa: PLR1716 - the pairwise oracle
