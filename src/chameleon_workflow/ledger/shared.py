"""``SharedMethod``: a method callable on an instance, or on the class as the seed's code calls it.

The seed's ``UOWPersistenceService`` had static methods (``UOWPersistenceService.save_uow(
session, uow, ...)``); ours keep a clock and the ledger keys per instance. Called on the
class, a shared method runs on one default instance of that class (the real clock, the
keys each database's settings name); called on an instance, it is an ordinary method.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import MethodType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

S = TypeVar("S")
P = ParamSpec("P")
R = TypeVar("R")

_defaults: dict[type[Any], Any] = {}
_lock = threading.Lock()


def default_instance(owner: type[S]) -> S:
    """Return the one instance of ``owner`` that calls on the class run on (made on first use)."""
    found = _defaults.get(owner)
    if found is None:
        with _lock:
            found = _defaults.get(owner)
            if found is None:
                found = _defaults[owner] = owner()
    return found


class SharedMethod(Generic[S, P, R]):
    """Wrap a method so ``Class.method(...)`` runs it on ``default_instance(Class)``."""

    def __init__(self, func: Callable[Concatenate[S, P], R]) -> None:
        self.func = func
        self.__doc__ = func.__doc__
        self.__name__ = func.__name__
        self.__wrapped__ = func

    def __set_name__(self, owner: type[S], name: str) -> None:
        """Remember the attribute name, under which an instance keeps its bound method."""
        self.name = name

    def __get__(self, instance: S | None, owner: type[S]) -> Callable[P, R]:
        """Bind to the instance, or to the class's default instance.

        An instance keeps the bound method in its ``__dict__``, which Python looks in
        before a non-data descriptor: from the second call on, the hot path (``save_uow``)
        costs less than an ordinary method lookup.
        """
        if instance is None:
            return MethodType(self.func, default_instance(owner))
        bound = MethodType(self.func, instance)
        vars(instance)[self.name] = bound
        return bound
