"""Sandboxed guard conditions: a strict AST whitelist and a small tree-walking evaluator.

Conditions are Python-like expressions over a UOW's attributes. The text is parsed with
``ast.parse`` and every node is checked against a whitelist *before* anything runs; the
checked tree is then interpreted node by node here. Nothing is ever handed to ``eval``,
``exec`` or ``compile``, so there is no path from a condition to Python objects other than
the plain values it computes (attribute access, dunders, comprehensions, lambdas,
f-strings, walrus and calls of unregistered names are refused at parse time).

Every operation that can grow a value (``+``, ``*``, ``**``, list literals, ``sum``) is
checked *before* it runs against what it would build: integers by bits, strings and
lists by length, and nested values by their total size (every element and every
character, shared references counted each time they appear, since that is what a
comparison or ``str()`` walks). ``%`` on a string (printf-style formatting, whose width
can be any number) is refused outright. With every single operation bounded, the
wall-clock budget checked before each node is a hard deadline: the evaluation cannot
overrun it by more than one small operation, so a condition cannot exhaust memory or
CPU inside the write transaction that runs it.
"""

from __future__ import annotations

import ast
import functools
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
from chameleon_workflow.sandbox import FUNCTIONS as _FUNCTIONS
from chameleon_workflow.sandbox import (
    MAX_POWER_EXPONENT,
    check_binop,
    check_items,
    check_size,
)

MAX_EXPRESSION_LENGTH = 2000
MAX_NODES = 300
MAX_DEPTH = 32
MAX_EVALUATION_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    """A parsed, whitelist-checked condition, ready to evaluate any number of times."""

    text: str
    tree: ast.expr
    names: frozenset[str]
    functions: frozenset[str]


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
            check_size(node.value)
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
            check_binop(node.op, left, right)
            return check_size(_BIN_OPS[type(node.op)](left, right))
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
            check_items(items)
            return check_size(items if isinstance(node, ast.List) else tuple(items))
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
        return check_size(fn(*[self.run(arg) for arg in node.args]))


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
