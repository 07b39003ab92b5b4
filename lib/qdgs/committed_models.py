"""``make models`` for the committed artifacts: what is committed, how it is rebuilt, and the check that it is current.

Chapter 01 trains three shapes VAEs on ``default`` (its generator at colour bias 0.95, the
quarter-length one of its drawable check, the balanced contrast generator): about 5 minutes of a
cold 2-core build, measured at 127, 28 and 141 s. :func:`rebuild` (``python -m qdgs.committed_models``)
trains them from scratch through the code the chapter calls, in an empty cache and with the
chapter's two torch threads (another count rounds differently in the last bits), and replaces the
committed entries (:mod:`qdgs.committed`). Keys hold the versions of Python, PyTorch, NumPy and
pyribs, so with other versions the chapter trains afresh (its arithmetic differs) and the check
does not apply (:func:`made_with`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from qdgs.committed import COMMITTED, artifact_source, write_sums
from qdgs.project import environment

__all__ = ["RECIPES", "check", "libraries", "made_with", "rebuild"]

#: The library versions the committed entries were made with (their keys hold them).
LIBRARIES = COMMITTED / "libraries.json"


def shapes_vaes() -> None:
    """Chapter 01's three VAEs on ``default``: the generator, its drawable check's shorter twin, the contrast."""
    from qdgs.generators.shapes_vae import cached_vae
    from qdgs.profiles import SHAPES
    from qdgs.shapes.generator import short_steps

    p = SHAPES.resolve("default")
    for steps, bias in ((p.vae_steps, p.generator_bias), (short_steps(p.vae_steps), p.generator_bias),
                        (p.vae_steps, p.contrast_bias)):
        cached_vae(steps, p.seed, bias=bias, progress_bar=False)


#: name → (the artifact kinds it makes, a function that builds or loads them through the chapters' code).
#: A rebuild replaces every committed entry of those kinds.
RECIPES: dict[str, tuple[tuple[str, ...], Callable[[], None]]] = {
    "chapter 01's shapes VAEs": (("shapes-vae",), shapes_vaes),
}


def libraries() -> dict[str, str]:
    """The versions an artifact key holds (as :func:`qdgs.cache.code_fingerprint` reads them)."""
    import numpy
    import ribs

    return {"python": ".".join(map(str, sys.version_info[:2])), "torch": torch.__version__,
            "numpy": numpy.__version__, "ribs": ribs.__version__}


def made_with() -> dict[str, str]:
    """The versions ``make models`` recorded beside the committed entries."""
    return json.loads(LIBRARIES.read_text()) if LIBRARIES.is_file() else {}


def check() -> None:
    """Load every recipe's artifacts from the committed entries alone (``LookupError`` names a stale one)."""
    with tempfile.TemporaryDirectory() as cache, environment(QDGS_CACHE=cache), artifact_source("committed"):
        for _, recipe in RECIPES.values():
            recipe()


def rebuild(committed: Path = COMMITTED, threads: int = 2) -> dict[str, float]:
    """Build every recipe from scratch in an empty cache and replace the committed entries of its kinds.

    Returns the seconds each recipe took.
    """
    seconds, before = {}, torch.get_num_threads()
    committed.mkdir(parents=True, exist_ok=True)
    (committed / LIBRARIES.name).write_text(json.dumps(libraries(), indent=1) + "\n")
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory() as cache, environment(QDGS_CACHE=cache), artifact_source("build"):
            for name, (kinds, recipe) in RECIPES.items():
                t0 = time.perf_counter()
                recipe()
                seconds[name] = time.perf_counter() - t0
                for kind in kinds:
                    shutil.rmtree(committed / kind, ignore_errors=True)
                    for built in sorted(p for p in (Path(cache) / kind).iterdir() if p.is_dir() and not p.name.startswith(".")):
                        shutil.copytree(built, committed / kind / built.name)
                        write_sums(committed / kind / built.name)
    finally:
        torch.set_num_threads(before)
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m qdgs.committed_models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (chapter 01 uses 2)")
    args = parser.parse_args(argv)
    for name, s in rebuild(threads=args.threads).items():
        print(f"{name}: {s / 60:.1f} minutes, written under {COMMITTED}")


if __name__ == "__main__":
    main()
