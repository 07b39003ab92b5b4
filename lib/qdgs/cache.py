"""Where data is read from and derived artifacts are written, atomically and keyed by parameters.

The data root may be read-only (it is in CI), so nothing is ever written there. Trained models,
archives and datasets go to the artifact cache under a directory named by a hash of the
parameters that produce them: a rebuild with unchanged parameters reuses them, and a changed
parameter recomputes only what depends on it. Every write goes to a temporary name first and is
renamed into place when complete, so a killed run never leaves a half-written artifact that a
later run would take as finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

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


def params_key(kind: str, params: Mapping[str, Any]) -> str:
    """A short stable hash of an artifact kind and the parameters that produce it."""
    text = json.dumps({"kind": kind, "v": CACHE_VERSION, **params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def weights_hash(model: "torch.nn.Module") -> str:
    """A short hash of a model's weights: keys an artifact that depends on the model."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
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


def artifact(kind: str, params: Mapping[str, Any], build: Callable[[Path], None]) -> Path:
    """Return the directory of a cached artifact, building it first if it is not complete.

    Args:
        kind: a name for the artifact family, e.g. ``"shapes-vae"``.
        params: everything that determines the artifact (JSON-serialisable).
        build: writes the artifact's files into the directory it is given.

    Returns:
        The artifact's directory under :func:`cache_root`; it also holds ``params.json``.
    """
    final = cache_root() / kind / params_key(kind, params)
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
