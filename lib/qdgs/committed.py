"""Committed artifacts: cache entries the project ships because building them is too slow for a cold build.

A few models of the default book train for minutes on two cores (chapter 01's VAEs). The project's
own code made them, so they are committed, laid out as in the artifact cache
(``lib/qdgs/committed/<kind>/<key>/``) with a :data:`SUMS` file of their sha256, and
:func:`artifact` copies a committed entry into the cache instead of building it. The key is the
cache's own (parameters and code), so after a change the entry is built afresh and the test of
:func:`qdgs.committed_models.check` fails until ``make models`` has rebuilt the committed copy: a
committed model is never taken for one the current code would not make.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from qdgs.cache import artifact as cached_artifact
from qdgs.cache import cache_root, params_key

__all__ = ["COMMITTED", "SUMS", "artifact", "artifact_source", "copy_committed", "write_sums"]

#: The committed entries, ``<kind>/<key>/`` as in the cache, each with :data:`SUMS`.
COMMITTED = Path(__file__).with_name("committed")
#: The file of a committed entry listing each of its files' sha256 (``sha256sum`` format).
SUMS = "SHA256SUMS"
#: Where :func:`artifact` takes what is not in the cache from: see :func:`artifact_source`.
_SOURCE: contextvars.ContextVar[str] = contextvars.ContextVar("artifact_source", default="any")


@contextlib.contextmanager
def artifact_source(source: str) -> Iterator[None]:
    """Within the block, :func:`artifact` ignores committed entries and builds (``"build"``: ``make
    models``), or takes committed entries only and raises ``LookupError`` for any other
    (``"committed"``: the check that they are current); ``"any"``, the default, prefers a committed entry."""
    if source not in ("any", "build", "committed"):
        raise ValueError(f"artifact source must be 'any', 'build' or 'committed', not {source!r}")
    token = _SOURCE.set(source)
    try:
        yield
    finally:
        _SOURCE.reset(token)


def artifact(kind: str, params: Mapping[str, Any], build: Callable[[Path], None], code: Iterable[str] = ()) -> Path:
    """:func:`qdgs.cache.artifact`, copying a committed entry of the same key instead of building when there is one.

    The key covers this module's code beside the builder's (the cache keys ``build_or_copy``, defined here).
    """
    code = (build.__module__, *code)
    key = params_key(kind, params, (__name__, *code))
    committed = COMMITTED / kind / key
    source = _SOURCE.get()
    use_committed = source != "build" and committed.is_dir()
    if source == "committed" and not use_committed and not (cache_root() / kind / key).is_dir():
        raise LookupError(f"no committed {kind} artifact {key} for {json.dumps(dict(params), default=str)}: the "
                          "code or the default parameters changed since it was made; run `make models` and commit "
                          f"{COMMITTED}")

    def build_or_copy(folder: Path) -> None:
        if use_committed:
            copy_committed(committed, folder)
        else:
            build(folder)

    return cached_artifact(kind, params, build_or_copy, code=code)


def write_sums(folder: Path) -> None:
    """Write :data:`SUMS` for every other file of ``folder`` (committing an entry)."""
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.name != SUMS)
    (folder / SUMS).write_text("".join(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n" for f in files))


def copy_committed(source: Path, target: Path) -> None:
    """Copy a committed entry's files into ``target``, each checked against its :data:`SUMS`."""
    sums = source / SUMS
    if not sums.is_file():
        raise RuntimeError(f"committed artifact {source} has no {SUMS}; restore it (git checkout -- {source}) "
                           "or rebuild it (make models)")
    for line in sums.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        data = (source / name).read_bytes() if (source / name).is_file() else b""
        if hashlib.sha256(data).hexdigest() != digest:
            raise RuntimeError(f"committed artifact {source} is damaged: {name} is missing or differs from its "
                               f"sha256 in {SUMS}; restore it (git checkout -- {source}) or rebuild it (make models)")
        if name != "params.json":  # the cache writes its own
            (target / name).write_bytes(data)
