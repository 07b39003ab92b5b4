"""Reading downloaded pickles without running code from them: one restricted unpickler.

``pickle.load`` imports and calls whatever a file names, so a downloaded pickle can run any code.
:class:`RestrictedUnpickler` resolves only the globals it is told are inert and refuses the rest
with one message naming the global; the StyleGAN2 loader extends it with stubs for NVIDIA's
classes, and InsightFace verification ``.bin`` files (a pickle of JPEG bytes and booleans, or of
NumPy arrays) load with :func:`load` and :data:`NUMPY_ARRAYS`.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import IO, Any

#: What protocol-2 pickles of ``bytes`` call (``codecs.encode`` of a latin-1 string: inert).
BYTES = frozenset({("_codecs", "encode")})
#: The globals a pickle of NumPy arrays and scalars needs (inert constructors, and :data:`BYTES`).
NUMPY_ARRAYS = BYTES | frozenset({
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
})
#: Inert containers of the standard library.
CONTAINERS = frozenset({("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"),
                        ("builtins", "slice")})


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only ``allowed`` ``(module, name)`` globals.

    Args:
        file: a binary file.
        allowed: the globals to resolve; every other one raises ``pickle.UnpicklingError``.
        what: how the refusal names the file's kind ("the StyleGAN2 pickle").
        **kwargs: passed to :class:`pickle.Unpickler` (``encoding="bytes"`` for Python 2 pickles).
    """

    def __init__(self, file: IO[bytes], allowed: Iterable[tuple[str, str]] = (), what: str = "the pickle",
                 **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.allowed, self.what = frozenset(allowed), what

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.allowed:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{self.what} references {module}.{name}, which the restricted loader does "
                                     "not allow (it would run code from the file)")


def load(file: IO[bytes], allowed: Iterable[tuple[str, str]] = (), what: str = "the pickle", **kwargs: Any) -> Any:
    """``pickle.load`` that resolves only ``allowed`` globals (see :class:`RestrictedUnpickler`)."""
    return RestrictedUnpickler(file, allowed, what, **kwargs).load()
