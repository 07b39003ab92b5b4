"""Before a chapter runs: are the weight files its parameters name at hand?

The ``paper`` profile runs on weights that qdgs does not ship and partly cannot download
(NVIDIA publishes no checksum for its StyleGAN2 pickle). Without this check a paper run would
train, calibrate and search for minutes before a cell failed on a missing file. The commands
(:mod:`qdgs.cli`) call :func:`check` with a chapter's parameters before papermill starts, so a run
without the weights stops at once, writes nothing, and says in one message, file by file, what
to download and where to put it. Nothing is downloaded or loaded here: a file that the loader can
still fetch and check (a known sha256, downloads on) counts as at hand.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

from qdgs import downloads
from qdgs.profiles import spec_for_notebook

__all__ = ["MissingWeights", "missing_weights", "check"]


class MissingWeights(FileNotFoundError):
    """Weight files a chapter needs are absent and cannot be fetched; the message lists each."""


def _weight_file(entry: downloads.WeightFile, what: str, path: str, env: str, param: str,
                 sha256_env: str | None = None) -> list[str]:
    """The line for ``entry`` when :func:`qdgs.downloads.weights_file` would neither find nor fetch it."""
    path = path or os.environ.get(env, "")
    if path:
        if os.path.isfile(path):
            return []
        state = f"not found at {path}"
    elif downloads.cached_path(entry).is_file():
        return []
    elif downloads.offline():
        state = "not in the cache, and downloads are off"
    elif entry.sha256 or (sha256_env and os.environ.get(sha256_env)):
        return []  # the loader fetches it and keeps it only if its sha256 matches
    else:
        state = f"not in the cache, and no sha256 is known to check a download against (set {sha256_env})"
    return [f"{what} ({entry.filename}, {state}): {downloads.placement_hint(entry, env)} (-p {param}=PATH)"]


def _faces(p: SimpleNamespace) -> list[str]:
    lines = []
    if p.generator == "stylegan2":
        from qdgs.generators import stylegan2

        lines += _weight_file(stylegan2.PRETRAINED["ffhq-256"], "StyleGAN2-FFHQ-256 weights", p.stylegan2_path,
                              "QDGS_STYLEGAN2", "stylegan2_path", sha256_env="QDGS_STYLEGAN2_SHA256")
    if p.scorer == "openai-clip":
        from qdgs.scorers import openai_clip

        reason = openai_clip.missing_weights(p.clip_weights)
        if reason:
            lines.append(f"OpenAI CLIP {openai_clip.MODEL_NAME} weights ({reason}): {openai_clip.DOWNLOAD_HINT} "
                         "(-p clip_weights=PATH)")
    return lines


def _shapes(p: SimpleNamespace) -> list[str]:
    if p.generator != "reference-vae":
        return []
    from qdgs.generators import reference_vae

    return _weight_file(reference_vae.PRETRAINED, "reference shapes VAE weights", p.reference_vae_path,
                        "QDGS_REFERENCE_VAE", "reference_vae_path")


#: Each chapter's weight check on its resolved parameters; a chapter not listed needs no weights.
_CHECKS = {"shapes": _shapes, "faces": _faces}


def missing_weights(notebook: str, profile: str, params: Mapping[str, Any]) -> list[str]:
    """One line per weight file that the chapter of ``notebook`` (a stem) would not find, on ``profile``
    with the overrides ``params``; empty when all are at hand or the notebook is no chapter."""
    spec = spec_for_notebook(notebook)
    if spec is None or spec.chapter not in _CHECKS:
        return []
    return _CHECKS[spec.chapter](spec.resolve(profile, **{k: v for k, v in params.items() if k != "profile"}))


def check(runs: Iterable[tuple[str, str, Mapping[str, Any]]]) -> None:
    """Raise :class:`MissingWeights`, listing every missing file, before any of ``runs`` (notebook stem,
    profile, overrides) starts without them."""
    lines = [f"{notebook} ({profile}): {line}" for notebook, profile, params in runs
             for line in missing_weights(notebook, profile, params)]
    if lines:
        raise MissingWeights("weights are missing (nothing was run or written):\n"
                             + "\n".join(f"  - {line}" for line in lines))
