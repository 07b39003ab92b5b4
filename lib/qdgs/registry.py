"""Named factories of one kind of model, as open_clip's ``create_model``: one entry point per kind.

:mod:`qdgs.generators` and :mod:`qdgs.scorers` each keep a :class:`Registry` of backend names;
an unknown name or argument stops with the allowed values instead of a ``KeyError`` or a
``TypeError`` from deep inside a constructor.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from qdgs.params import ParameterError


class Registry:
    """Factories by name.

    Args:
        kind: what the factories make ("generator"), for messages.
        factories: name → a callable taking the backend's keyword arguments.
    """

    def __init__(self, kind: str, factories: Mapping[str, Callable[..., Any]]) -> None:
        self.kind, self.factories = kind, dict(factories)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self.factories)

    def load(self, name: str, **kwargs: Any) -> Any:
        """Call the factory ``name`` with ``kwargs``, or say which names and arguments it takes."""
        if name not in self.factories:
            allowed = ", ".join(repr(n) for n in self.names())
            raise ParameterError(f"unknown {self.kind} {name!r}; allowed values: {allowed}")
        factory = self.factories[name]
        signature = inspect.signature(factory)
        try:
            signature.bind(**kwargs)
        except TypeError as err:
            raise ParameterError(f"{self.kind} {name!r} takes {signature}: {err}") from None
        return factory(**kwargs)
