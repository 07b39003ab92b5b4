"""Where data is read from and derived artifacts are written, atomically and keyed by parameters.

The data root may be read-only (it is in CI), so nothing is ever written there. Trained models,
archives and datasets go to the artifact cache under a directory named by a hash of the
parameters that produce them: a rebuild with unchanged parameters reuses them, and a changed
parameter recomputes only what depends on it. Every write goes to a temporary name first and is
renamed into place when complete, so a killed run never leaves a half-written artifact that a
later run would take as finished.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

#: Bump when a change in the package invalidates every cached artifact.
CACHE_VERSION = 2


def data_root() -> Path:
    """The root holding datasets in their official layouts (``$QDGS_DATA``)."""
    return Path(os.environ.get("QDGS_DATA", Path.home() / ".cache" / "qdgs" / "data")).expanduser()


def cache_root() -> Path:
    """The root of derived artifacts (``$QDGS_CACHE``, default ``~/.cache/qdgs/artifacts``)."""
    default = Path.home() / ".cache" / "qdgs" / "artifacts"
    return Path(os.environ.get("QDGS_CACHE", default)).expanduser()


def params_key(kind: str, params: Mapping[str, Any], code: Iterable[str] = ()) -> str:
    """A short stable hash of an artifact kind, the parameters that produce it and the code that does.

    Args:
        kind: the artifact family.
        params: everything that determines the artifact (JSON-serialisable).
        code: names of the ``qdgs`` modules whose code builds it; see :func:`code_fingerprint`.
    """
    text = json.dumps({"kind": kind, "v": CACHE_VERSION, **params, "code": code_fingerprint(*sorted(set(code)))},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def code_fingerprint(*modules: str) -> str:
    """A hash of the code behind an artifact: the modules, every ``qdgs`` module they import, and the libraries.

    An artifact cached by older code must not be taken for one the current code would build: that is
    how a README once showed numbers no fresh clone reproduced. The hash covers each module's syntax
    tree without docstrings (so prose and comments never invalidate a cache), followed transitively
    through ``qdgs`` imports (top-level and function-level), plus the versions of Python, PyTorch,
    NumPy and pyribs, whose arithmetic is part of the result.
    """
    import numpy
    import ribs
    import torch

    h = hashlib.sha256(f"{sys.version_info[:2]} {torch.__version__} {numpy.__version__} {ribs.__version__}".encode())
    seen: set[str] = set()
    todo = [m for m in modules if _ours(m)]
    while todo:
        name = todo.pop()
        spec = None if name in seen else _module_spec(name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        seen.add(name)
        tree = ast.parse(Path(spec.origin).read_text())
        package = name if spec.submodule_search_locations else name.rpartition(".")[0]
        todo += [m for m in _qdgs_imports(tree, package) if _module_spec(m) is not None]
        for node in ast.walk(tree):  # docstrings are prose: drop them
            body = getattr(node, "body", None)
            if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        h.update(name.encode() + ast.dump(tree, include_attributes=False).encode())
    return h.hexdigest()[:16]


def _module_spec(name: str) -> importlib.machinery.ModuleSpec | None:
    """The spec of module ``name``, or None when ``name`` is an attribute (``from qdgs.cache import artifact``)."""
    parent = name.rpartition(".")[0]
    if parent and not (_module_spec(parent) or _NOT_A_PACKAGE).submodule_search_locations:
        return None
    return importlib.util.find_spec(name)


_NOT_A_PACKAGE = importlib.machinery.ModuleSpec("", None)


def _qdgs_imports(tree: ast.Module, package: str) -> list[str]:
    """The ``qdgs`` modules a syntax tree imports.

    ``from qdgs import shapes`` imports the module ``qdgs.shapes``, not the code of ``qdgs``'s own
    ``__init__`` (whose re-exports change no result); ``from qdgs.cache import artifact`` imports
    ``qdgs.cache``, since ``artifact`` is no module.
    """
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if not _ours(base):
                continue
            submodules = [f"{base}.{a.name}" for a in node.names if _module_spec(f"{base}.{a.name}") is not None]
            names += submodules + ([base] if len(submodules) < len(node.names) else [])
    return [n for n in names if _ours(n)]


#: The package whose code is fingerprinted (a test points it at a throw-away package).
PACKAGE = "qdgs"


def _ours(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def weights_hash(model: "torch.nn.Module") -> str:
    """A short hash of a model's weights: keys an artifact that depends on the model."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def arrays_hash(*arrays: Any) -> str:
    """A short hash of arrays' dtypes, shapes and bytes (NumPy arrays, tensors, or None for "not given").

    Keys an artifact made from in-memory data (a synthetic set's images, labels and latents).
    """
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            a = np.zeros(0)
        elif hasattr(a, "detach"):  # a torch tensor
            a = a.detach().cpu().numpy()
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def fingerprint(path: str | os.PathLike) -> str:
    """A short hash of a file's or a folder's content (names and bytes), never of its location.

    Keys an artifact built from data, so that the same dataset under another path reuses it and
    a changed file rebuilds it. A folder with a ``MANIFEST.sha256`` (the official datasets under
    the data root) is fingerprinted by its manifest, which already lists every file's hash.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"cannot fingerprint {path}: it does not exist")
    if path.is_file():
        files = [path]
    elif (path / "MANIFEST.sha256").is_file():
        files = [path / "MANIFEST.sha256"]
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode())
        with open(f, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def artifact(kind: str, params: Mapping[str, Any], build: Callable[[Path], None],
             code: Iterable[str] = ()) -> Path:
    """Return the directory of a cached artifact, building it first if it is not complete.

    Args:
        kind: a name for the artifact family, e.g. ``"shapes-vae"``.
        params: everything that determines the artifact (JSON-serialisable).
        build: writes the artifact's files into the directory it is given.
        code: further ``qdgs`` modules whose code determines the artifact, beyond the module that
            defines ``build`` (which always counts; see :func:`code_fingerprint`).

    Returns:
        The artifact's directory under :func:`cache_root`; it also holds ``params.json``.
    """
    final = cache_root() / kind / params_key(kind, params, (build.__module__, *code))
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        build(tmp)
        (tmp / "params.json").write_text(json.dumps(dict(params), indent=1, default=str))
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished the same artifact first
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporaries (``.<name>-*``) that a build or write of ``path`` killed mid-way left beside it."""
    for stale in path.parent.glob(f".{path.name}-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` and move it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
