"""What a sandboxed condition may compute: its functions, and the bounds of every operation.

``expressions`` parses and interprets conditions; this module says how large anything a
condition builds may become, and checks it *before* the operation runs (see
``check_binop``): integers by bits, strings and lists by length, and nested values by
their total number of elements and characters (``value_size``, which counts a shared
reference each time it appears, as a comparison or ``str()`` would walk it).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from typing import Any

from chameleon_workflow.errors import ConditionEvaluationError

MAX_POWER_EXPONENT = 100
MAX_INT_BITS = 4096
MAX_STRING_LENGTH = 10_000
MAX_COLLECTION_LENGTH = 1_000
#: Elements plus characters of a value an operation builds, nested values counted in full.
MAX_VALUE_SIZE = 100_000


def round_bounded(value: Any, ndigits: int | None = None) -> Any:
    """Round like ``round``, refusing an ``ndigits`` that would build a huge power of ten."""
    # round(5, -10**9) would build 10**(10**9) internally.
    if ndigits is not None and abs(ndigits) > MAX_POWER_EXPONENT:
        raise ValueError(f"round(): ndigits {ndigits} out of range ±{MAX_POWER_EXPONENT}")
    return round(value, ndigits)


def sum_numbers(values: Any, start: Any = 0) -> Any:
    """Add a list of numbers like ``sum``; anything else is a TypeError."""
    # sum() of lists concatenates quadratically; conditions only ever add numbers.
    numbers = int | float
    if not isinstance(values, list | tuple) or not isinstance(start, numbers):
        raise TypeError("sum() adds a list of numbers")
    if not all(isinstance(item, numbers) for item in values):
        raise TypeError("sum() adds numbers only")
    return sum(values, start)


def str_bounded(value: Any) -> str:
    """Render ``value`` like ``str``, refusing a nested value too large to render."""
    if isinstance(value, list | tuple | dict):
        check_total(value_size(value, MAX_VALUE_SIZE))
    return str(value)


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "min": min,
    "max": max,
    "round": round_bounded,
    "floor": math.floor,
    "ceil": math.ceil,
    "len": len,
    "sum": sum_numbers,
    "int": int,
    "float": float,
    "str": str_bounded,
    "bool": bool,
    "lower": lambda s: _as_str(s).lower(),
    "upper": lambda s: _as_str(s).upper(),
    "strip": lambda s: _as_str(s).strip(),
    "startswith": lambda s, prefix: _as_str(s).startswith(_as_str(prefix)),
    "endswith": lambda s, suffix: _as_str(s).endswith(_as_str(suffix)),
}


def check_size(value: Any) -> Any:
    kind = type(value)
    if kind is int and value.bit_length() > MAX_INT_BITS:
        raise ConditionEvaluationError(f"integer result larger than {MAX_INT_BITS} bits")
    if kind is str and len(value) > MAX_STRING_LENGTH:
        raise ConditionEvaluationError(f"string result longer than {MAX_STRING_LENGTH}")
    if kind in (list, tuple) and len(value) > MAX_COLLECTION_LENGTH:
        raise ConditionEvaluationError(f"list result longer than {MAX_COLLECTION_LENGTH} items")
    return value


def check_binop(op: ast.operator, left: Any, right: Any) -> None:
    """Refuse an operation before running it when its result would be too large."""
    if isinstance(op, ast.Pow) and isinstance(right, int | float):
        if abs(right) > MAX_POWER_EXPONENT:
            raise ConditionEvaluationError(f"exponent {right} exceeds {MAX_POWER_EXPONENT}")
        if isinstance(left, int) and left.bit_length() * right > MAX_INT_BITS:
            raise ConditionEvaluationError(f"power result larger than {MAX_INT_BITS} bits")
    elif isinstance(op, ast.Mult):
        ints = type(left) is int and type(right) is int
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise ConditionEvaluationError(f"integer result larger than {MAX_INT_BITS} bits")
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                check_repetition(seq, times)
    elif isinstance(op, ast.Add) and isinstance(left, str | list | tuple):
        check_concatenation(left, right)
    elif isinstance(op, ast.Mod) and isinstance(left, str):
        raise ConditionEvaluationError("string formatting with % is not allowed in conditions")


def check_repetition(seq: str | list[Any] | tuple[Any, ...], times: int) -> None:
    """Refuse ``seq * times`` when the result would be too long or too large."""
    text = isinstance(seq, str)
    limit = MAX_STRING_LENGTH if text else MAX_COLLECTION_LENGTH
    if len(seq) * times > limit:
        unit = "characters" if text else "items"
        raise ConditionEvaluationError(
            f"repetition would give {len(seq) * times} {unit}; the limit is {limit}"
        )
    if not text and times > 0:
        check_total(value_size(seq, MAX_VALUE_SIZE // times + 1) * times)


def check_concatenation(left: str | list[Any] | tuple[Any, ...], right: Any) -> None:
    """Refuse ``left + right`` when the result would be too long or too large."""
    if type(left) is not type(right):
        return  # Python refuses the mix with a TypeError of its own
    if isinstance(left, str):
        if len(left) + len(right) > MAX_STRING_LENGTH:
            raise ConditionEvaluationError(f"string result longer than {MAX_STRING_LENGTH}")
        return
    if len(left) + len(right) > MAX_COLLECTION_LENGTH:
        raise ConditionEvaluationError(f"list result longer than {MAX_COLLECTION_LENGTH} items")
    first = value_size(left, MAX_VALUE_SIZE)
    check_total(first + value_size(right, max(MAX_VALUE_SIZE - first, 0)))


def check_items(items: list[Any]) -> None:
    """Refuse a list literal whose items together hold too many elements and characters."""
    total = 0
    for item in items:
        total += value_size(item, MAX_VALUE_SIZE - total)
        check_total(total)


def check_total(size: int) -> None:
    """Refuse a value whose elements and characters would number more than allowed."""
    if size > MAX_VALUE_SIZE:
        raise ConditionEvaluationError(
            f"the result would hold more than {MAX_VALUE_SIZE} elements and characters"
        )


def value_size(value: Any, budget: int) -> int:
    """Count the elements and characters of ``value``, stopping once past ``budget``."""
    if isinstance(value, str):
        return len(value) + 1
    if not isinstance(value, list | tuple | dict):
        return 1
    total = 1
    stack: list[Any] = [value]
    while stack and total <= budget:
        items = stack.pop()
        for item in items.items() if isinstance(items, dict) else items:
            if isinstance(item, str):
                total += len(item) + 1
            elif isinstance(item, list | tuple | dict):
                total += 1
                stack.append(item)
            else:
                total += 1
    return total
