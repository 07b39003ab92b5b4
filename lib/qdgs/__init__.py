"""qdgs: Quality-Diversity Generative Sampling (Chang et al., AAAI 2024), reproduced.

The method, in the order Algorithm 1 uses it:

- :class:`PromptScoring` (:mod:`qdgs.scoring`): objective, measures and their Jacobian in one pass;
  :func:`prompt_values` is the one prompt-pair score, :class:`BoundedLatent` keeps latents in a box.
- :class:`SearchConfig`, :func:`run_search`, :func:`cached_search`, :func:`random_archive`
  (:mod:`qdgs.search`): CMA-MAEGA over pyribs with checkpoints, and the random baseline.
- :func:`load_generator` / :func:`list_generators` and :func:`load_scorer` / :func:`list_scorers`:
  the backends by name (:mod:`qdgs.generators`, :mod:`qdgs.scorers`).

The book's plumbing: :func:`chapter_parameters` (every chapter's parameters, :mod:`qdgs.profiles`),
:func:`record` / :func:`load` / :class:`Claim` / :data:`CHAPTERS` (:mod:`qdgs.results`), the seed
policy (:mod:`qdgs.seeds`), the artifact cache (:mod:`qdgs.cache`) and the archive explorer
(:func:`archive_explorer`). The domains are subpackages: :mod:`qdgs.shapes`, :mod:`qdgs.faces`,
:mod:`qdgs.recognition`.

Names are imported on first use (PEP 562), so ``import qdgs`` (and the command line) stays light
while ``from qdgs import PromptScoring`` works as an eager import would.
"""

import importlib
import warnings
from typing import Any

# tqdm.auto, imported by dependencies, warns in kernels without ipywidgets; our bars are plain tqdm.
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"

_EXPORTS = {
    "qdgs.scoring": ("PromptScoring", "BoundedLatent", "Evaluation", "prompt_values", "remap_objective",
                     "spherical_distance"),
    "qdgs.search": ("SearchConfig", "SearchResult", "run_search", "cached_search", "random_archive",
                    "project_archive"),
    "qdgs.generators": ("load_generator", "list_generators"),
    "qdgs.scorers": ("load_scorer", "list_scorers"),
    "qdgs.profiles": ("chapter_parameters",),
    "qdgs.params": ("ParameterError",),
    "qdgs.results": ("record", "load", "Claim", "CHAPTERS"),
    "qdgs.seeds": ("derive", "numpy_rng", "torch_generator", "seeded_init"),
    "qdgs.explorer": ("archive_explorer",),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'qdgs' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
