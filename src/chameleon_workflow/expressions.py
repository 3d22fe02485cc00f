"""Sandboxed guard conditions: a strict AST whitelist and a small tree-walking evaluator.

Conditions are Python-like expressions over a UOW's attributes. The text is parsed with
``ast.parse`` and every node is checked against a whitelist *before* anything runs; the
checked tree is then interpreted node by node here. Nothing is ever handed to ``eval``,
``exec`` or ``compile``, so there is no path from a condition to Python objects other than
the plain values it computes (attribute access, dunders, comprehensions, lambdas,
f-strings, walrus and calls of unregistered names are refused at parse time).

Every result is size-checked (integers, strings, lists) and evaluation has a wall-clock
budget, so a condition cannot exhaust memory or CPU.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chameleon_workflow.errors import (
    ConditionEvaluationError,
    ConditionSyntaxError,
    ExpressionError,
)

MAX_EXPRESSION_LENGTH = 2000
MAX_NODES = 300
MAX_DEPTH = 32
MAX_POWER_EXPONENT = 100
MAX_INT_BITS = 4096
MAX_STRING_LENGTH = 10_000
MAX_COLLECTION_LENGTH = 1_000
MAX_EVALUATION_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    """A parsed, whitelist-checked condition, ready to evaluate any number of times."""

    text: str
    tree: ast.expr
    names: frozenset[str]
    functions: frozenset[str]


def _round(value: Any, ndigits: int | None = None) -> Any:
    # round(5, -10**9) would build 10**(10**9) internally.
    if ndigits is not None and abs(ndigits) > MAX_POWER_EXPONENT:
        raise ValueError(f"round(): ndigits {ndigits} out of range ±{MAX_POWER_EXPONENT}")
    return round(value, ndigits)


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "min": min,
    "max": max,
    "round": _round,
    "floor": math.floor,
    "ceil": math.ceil,
    "len": len,
    "sum": sum,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "lower": lambda s: _as_str(s).lower(),
    "upper": lambda s: _as_str(s).upper(),
    "strip": lambda s: _as_str(s).strip(),
    "startswith": lambda s, prefix: _as_str(s).startswith(_as_str(prefix)),
    "endswith": lambda s, suffix: _as_str(s).endswith(_as_str(suffix)),
}


def register_function(name: str, fn: Callable[..., Any]) -> None:
    """Make ``fn`` callable from conditions as ``name(...)``; replaces an earlier one."""
    if not name.isidentifier() or name.startswith("_"):
        raise ExpressionError(f"cannot register {name!r}: not a public identifier")
    if not callable(fn):
        raise ExpressionError(f"cannot register {name!r}: {fn!r} is not callable")
    _FUNCTIONS[name] = fn
    # Cached parses were checked against the old registry.
    _parse_cached.cache_clear()


def registered_functions() -> frozenset[str]:
    """Return the names conditions may call."""
    return frozenset(_FUNCTIONS)


_BIN_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_COMPARE_OPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
# Context markers and operator tokens are inert; they are checked through their parent.
_INERT: tuple[type[ast.AST], ...] = (
    ast.Load,
    ast.And,
    ast.Or,
    *_BIN_OPS,
    *_UNARY_OPS,
    *_COMPARE_OPS,
)
_ALLOWED = (
    ast.BoolOp,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Constant,
    ast.Name,
    ast.List,
    ast.Tuple,
    ast.Subscript,
)
_REFUSED_NAMES = {
    ast.Attribute: "attribute access",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "comprehension",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.NamedExpr: "assignment (:=)",
    ast.Starred: "star unpacking",
    ast.Slice: "slicing",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Dict: "dict literal",
    ast.Set: "set literal",
}


def parse_condition(text: str) -> CompiledCondition:
    """Parse and whitelist-check ``text``; raise ConditionSyntaxError naming what is refused."""
    if not isinstance(text, str):
        raise ConditionSyntaxError(f"a condition must be a string, not {type(text).__name__}")
    return _parse_cached(text)


@functools.lru_cache(maxsize=1024)
def _parse_cached(text: str) -> CompiledCondition:
    if not text.strip():
        raise ConditionSyntaxError("empty condition")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ConditionSyntaxError(
            f"condition is {len(text)} characters long; the limit is {MAX_EXPRESSION_LENGTH}"
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionSyntaxError(f"syntax error in {text!r}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ConditionSyntaxError(f"cannot parse {text!r}: {type(exc).__name__}") from None
    checker = _Checker(text)
    checker.visit(tree.body, 1)
    return CompiledCondition(
        text, tree.body, frozenset(checker.names), frozenset(checker.functions)
    )


class _Checker:
    """Walk a parsed tree once, refusing every node outside the whitelist."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.count = 0
        self.names: set[str] = set()
        self.functions: set[str] = set()

    def refuse(self, why: str, hint: str = "") -> ConditionSyntaxError:
        return ConditionSyntaxError(f"{why} is not allowed in conditions: {self.text!r}{hint}")

    def visit(self, node: ast.AST, depth: int) -> None:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.refuse(f"an expression of more than {MAX_NODES} nodes")
        if depth > MAX_DEPTH:
            raise self.refuse(f"nesting deeper than {MAX_DEPTH} levels")
        if isinstance(node, _INERT):
            return
        if not isinstance(node, _ALLOWED):
            raise self.refuse(_REFUSED_NAMES.get(type(node), type(node).__name__))
        if isinstance(node, ast.Call):
            self.check_call(node, depth)
            return
        self.check_node(node)
        for child in ast.iter_child_nodes(node):
            self.visit(child, depth + 1)

    def check_node(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise self.refuse(f"the name {node.id!r} (leading underscore)")
            self.names.add(node.id)
        elif isinstance(node, ast.Constant):
            if type(node.value) not in (int, float, str, bool, type(None)):
                raise self.refuse(f"the literal {node.value!r}")
            _check_size(node.value)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            exponent = node.right
            if (
                isinstance(exponent, ast.Constant)
                and isinstance(exponent.value, int | float)
                and abs(exponent.value) > MAX_POWER_EXPONENT
            ):
                raise self.refuse(f"an exponent above {MAX_POWER_EXPONENT}")

    def check_call(self, node: ast.Call, depth: int) -> None:
        if not isinstance(node.func, ast.Name):
            raise self.refuse("calling anything but a registered function by name")
        if node.func.id not in _FUNCTIONS:
            known = ", ".join(sorted(_FUNCTIONS))
            raise self.refuse(f"calling {node.func.id!r}", f" (registered functions: {known})")
        if node.keywords:
            raise self.refuse("a keyword argument")
        self.functions.add(node.func.id)
        # The callee is visited here, not generically, so it is not taken for a variable.
        for arg in node.args:
            self.visit(arg, depth + 1)


def _check_size(value: Any) -> Any:
    kind = type(value)
    if kind is int and value.bit_length() > MAX_INT_BITS:
        raise ConditionEvaluationError(f"integer result larger than {MAX_INT_BITS} bits")
    if kind is str and len(value) > MAX_STRING_LENGTH:
        raise ConditionEvaluationError(f"string result longer than {MAX_STRING_LENGTH}")
    if kind in (list, tuple) and len(value) > MAX_COLLECTION_LENGTH:
        raise ConditionEvaluationError(f"list result longer than {MAX_COLLECTION_LENGTH} items")
    return value


def _check_binop(op: ast.operator, left: Any, right: Any) -> None:
    """Refuse an operation before running it when its result would be too large."""
    if isinstance(op, ast.Pow) and isinstance(right, int | float):
        if abs(right) > MAX_POWER_EXPONENT:
            raise ConditionEvaluationError(f"exponent {right} exceeds {MAX_POWER_EXPONENT}")
        if isinstance(left, int) and left.bit_length() * right > MAX_INT_BITS:
            raise ConditionEvaluationError(f"power result larger than {MAX_INT_BITS} bits")
    if isinstance(op, ast.Mult):
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                _check_repetition(seq, times)


def _check_repetition(seq: str | list[Any] | tuple[Any, ...], times: int) -> None:
    text = isinstance(seq, str)
    limit = MAX_STRING_LENGTH if text else MAX_COLLECTION_LENGTH
    if len(seq) * times > limit:
        unit = "characters" if text else "items"
        raise ConditionEvaluationError(
            f"repetition would give {len(seq) * times} {unit}; the limit is {limit}"
        )


class _Evaluator:
    """Interpret a checked tree against one set of variables within a time budget."""

    def __init__(self, variables: Mapping[str, Any], text: str) -> None:
        self.variables = variables
        self.text = text
        self.deadline = time.monotonic() + MAX_EVALUATION_SECONDS

    def run(self, node: ast.expr) -> Any:  # noqa: PLR0911 - one branch per node kind
        if time.monotonic() > self.deadline:
            raise ConditionEvaluationError(f"evaluation exceeded {MAX_EVALUATION_SECONDS}s")
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.BinOp):
            left, right = self.run(node.left), self.run(node.right)
            _check_binop(node.op, left, right)
            return _check_size(_BIN_OPS[type(node.op)](left, right))
        if isinstance(node, ast.UnaryOp):
            return _UNARY_OPS[type(node.op)](self.run(node.operand))
        if isinstance(node, ast.BoolOp):
            return self.bool_op(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.IfExp):
            return self.run(node.body if self.run(node.test) else node.orelse)
        if isinstance(node, ast.List | ast.Tuple):
            items = [self.run(item) for item in node.elts]
            return _check_size(items if isinstance(node, ast.List) else tuple(items))
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise ConditionEvaluationError(f"unexpected node {type(node).__name__}")

    def name(self, name: str) -> Any:
        try:
            return self.variables[name]
        except KeyError:
            raise ConditionEvaluationError(f"undefined name {name!r}") from None

    def bool_op(self, node: ast.BoolOp) -> Any:
        want_true = isinstance(node.op, ast.Or)
        value: Any = None
        for operand in node.values:
            value = self.run(operand)
            if bool(value) is want_true:
                return value
        return value

    def compare(self, node: ast.Compare) -> bool:
        left = self.run(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.run(comparator)
            if not _COMPARE_OPS[type(op)](left, right):
                return False
            left = right
        return True

    def subscript(self, node: ast.Subscript) -> Any:
        container = self.run(node.value)
        # Only JSON containers: indexing an arbitrary object could reach __getitem__ code.
        if type(container) not in (dict, list, tuple, str):
            raise ConditionEvaluationError(f"cannot index a {type(container).__name__}")
        return container[self.run(node.slice)]

    def call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)  # guaranteed by the checker
        fn = _FUNCTIONS.get(node.func.id)
        if fn is None:
            raise ConditionEvaluationError(f"function {node.func.id!r} is no longer registered")
        return _check_size(fn(*[self.run(arg) for arg in node.args]))


def evaluate(condition: str | CompiledCondition, variables: Mapping[str, Any]) -> Any:
    """Evaluate a condition against ``variables``; raise ExpressionError on any failure."""
    compiled = condition if isinstance(condition, CompiledCondition) else parse_condition(condition)
    evaluator = _Evaluator(variables, compiled.text)
    try:
        return evaluator.run(compiled.tree)
    except ExpressionError:
        raise
    except RecursionError:
        raise ConditionEvaluationError(f"{compiled.text!r}: nested too deeply") from None
    except Exception as exc:  # every runtime failure becomes one clear error
        raise ConditionEvaluationError(f"{type(exc).__name__}: {exc}") from exc
