"""What a worker runs: a handler named ``module:function`` or ``module:Class``, and its result.

A handler takes the checked-out UOW and returns what to submit: a ``Result`` (attribute
changes and reasoning), a mapping (attribute changes only) or None (nothing to change).
An exception it raises fails the UOW with the exception's message. A class is built once,
with no arguments, and its ``handle(uow)`` method is the handler.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chameleon_workflow.client.models import UOW
from chameleon_workflow.errors import ConfigurationError

Handler = Callable[[UOW], Any]


@dataclass(frozen=True, slots=True)
class Result:
    """What a handler hands back: attribute changes (a key set to None is removed) and why."""

    attributes: Mapping[str, Any] = field(default_factory=dict)
    reasoning: str | None = None


def result_of(returned: object) -> Result:
    """Read a handler's return value as a Result; anything else is a clear error."""
    if returned is None:
        return Result()
    result = Result(attributes=dict(returned)) if isinstance(returned, Mapping) else returned
    if isinstance(result, Result):
        try:
            json.dumps(dict(result.attributes), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"the handler's attributes are not JSON: {exc}") from None
        return result
    raise TypeError(
        "a handler returns a Result, a mapping of attributes or None, "
        f"not {type(returned).__name__}"
    )


def load_handler(spec: str) -> Handler:
    """Import ``module:function`` or ``module:Class`` (the current directory is searched too)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"--handler {spec!r} is not module:function or module:Class")
    if "" not in sys.path:
        sys.path.insert(0, "")  # as `python -m` does: a handler beside the caller is found
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"--handler {spec!r}: cannot import {module_name}: {exc}") from exc
    target = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigurationError(
                f"--handler {spec!r}: {module_name} has no {attribute}"
            ) from None
    return _callable(spec, target)


def _callable(spec: str, target: object) -> Handler:
    if inspect.isclass(target):
        try:
            instance = target()
        except TypeError as exc:
            raise ConfigurationError(
                f"--handler {spec!r}: cannot build it without arguments: {exc}"
            ) from exc
        handle = getattr(instance, "handle", None)
        if not callable(handle):
            raise ConfigurationError(f"--handler {spec!r}: the class has no handle(uow) method")
        return handle  # type: ignore[no-any-return]
    if not callable(target):
        raise ConfigurationError(f"--handler {spec!r} is neither a function nor a class")
    return target
