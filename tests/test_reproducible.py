"""A fresh clone's cold build gives the same artifacts as any other: built twice, in two empty caches.

Each build runs in its own interpreter (as on a new machine), one of them after drawing from the
global random streams first, so neither the order of work in a process nor a warm cache can hide
a difference. The pipeline is the shapes chapter's, at toy sizes: VAE, offline scorer, search,
random baseline.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BUILD = r"""
import hashlib, json, sys
import numpy as np, torch
if sys.argv[1] == "noisy":  # whatever ran before in a notebook must not matter
    torch.rand(17); np.random.rand(5)
from qdgs.cache import weights_hash
from qdgs.generators.shapes_vae import cached_vae
from qdgs.scoring import BoundedLatent, PromptScoring
from qdgs.search import SearchConfig, cached_search, random_archive
from qdgs import shapes

vae, _ = cached_vae(12, seed=3, output_size=32, progress_bar=False)
scorer, _ = shapes.cached_scorer(vae, 4, seed=3, size=32, progress_bar=False)
gen = BoundedLatent(vae, 3.0)
scoring = PromptScoring(gen, scorer, shapes.OBJECTIVE_PROMPTS, shapes.MEASURE_PROMPTS)
config = SearchConfig(iterations=6, archive_dims=(5, 5), measure_ranges=((-0.5, 0.5), (-0.5, 0.5)), seed=3,
                      init_batches=2, init_batch_size=4, checkpoint_every=3)
qd = cached_search(scoring, config, extra={"latent_bound": 3.0}, progress_bar=False)
rand = random_archive(scoring, config, n_samples=24)
digest = lambda r: hashlib.sha256(np.ascontiguousarray(r.archive.data()["solution"]).tobytes()
                                  + np.ascontiguousarray(r.archive.data()["objective"]).tobytes()).hexdigest()
print(json.dumps({"vae": weights_hash(vae), "scorer": weights_hash(scorer), "search": digest(qd),
                  "random": digest(rand), "global_rng": hashlib.sha256(torch.get_rng_state().numpy().tobytes()).hexdigest()}))
"""


def _build(cache: Path, mode: str) -> dict:
    env = {"QDGS_CACHE": str(cache), "QDGS_PROGRESS": "0", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", BUILD, mode], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_cold_builds_in_fresh_processes_give_identical_artifacts(tmp_path):
    first = _build(tmp_path / "a", "quiet")
    second = _build(tmp_path / "b", "noisy")
    warm = _build(tmp_path / "a", "noisy")  # the same cache again: everything is reloaded, nothing differs
    for key in ("vae", "scorer", "search", "random"):
        assert first[key] == second[key] == warm[key], key
    assert any((tmp_path / "a" / "search").rglob("6.ckpt"))
