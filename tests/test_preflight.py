"""A paper run without the weights stops before anything runs, says what to get and where, and writes nothing."""

from pathlib import Path

import papermill
import pytest

from paper_fixtures import write_paper_weights
from qdgs import preflight
from qdgs.cli import execute_book, main
from qdgs.generators import reference_vae, stylegan2
from qdgs.scorers import openai_clip

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """A fresh artifact cache, downloads off, no weight paths in the environment, an empty hub cache."""
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("QDGS_STYLEGAN2", "QDGS_STYLEGAN2_SHA256", "QDGS_REFERENCE_VAE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(openai_clip, "_cached", lambda: False)
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: pytest.fail("a notebook was executed"))
    return tmp_path


def test_run_without_weights_stops_naming_every_file(no_weights, capsys):
    out, results = no_weights / "out", no_weights / "results"
    code = main(["--root", str(ROOT), "run", "02", "--profile", "paper", "--out", str(out), "--results", str(results)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("qdgs: error: weights are missing (nothing was run or written)")
    lines = err.splitlines()[1:]
    assert len(lines) == 2, err  # StyleGAN2 and CLIP, one line each
    gan, clip = lines
    cached = no_weights / "cache" / "weights" / stylegan2.FILENAME
    assert stylegan2.URL in gan and f"place it at {cached}" in gan and "-p stylegan2_path=PATH" in gan
    assert openai_clip.HF_HUB_ID in clip and "-p clip_weights=PATH" in clip
    assert not out.exists() and not results.exists() and not (no_weights / "cache").exists()


def test_book_without_weights_stops_before_staging_naming_all_three_files(no_weights):
    with pytest.raises(preflight.MissingWeights) as err:
        execute_book("paper", ROOT, no_weights / "build")
    lines = str(err.value).splitlines()[1:]
    assert len(lines) == 3
    assert lines[0].startswith("  - 01_shapes_debiasing (paper): reference shapes VAE weights (vae-shapes.pt")
    assert reference_vae.PRETRAINED.url in lines[0] and "-p reference_vae_path=PATH" in lines[0]
    assert lines[1].startswith("  - 02_face_synthesis (paper): StyleGAN2-FFHQ-256 weights (stylegan2-ffhq-256x256.pkl, "
                               "not in the cache, and downloads are off)")
    assert lines[2].startswith("  - 02_face_synthesis (paper): OpenAI CLIP ViT-B-32-quickgelu weights (HF_HUB_OFFLINE")
    assert not (no_weights / "build").exists()


def test_given_paths_pass_and_a_wrong_one_is_named(no_weights):
    weights = write_paper_weights(no_weights / "weights")
    given = {"stylegan2_path": str(weights.stylegan2), "clip_weights": str(weights.clip)}
    assert preflight.missing_weights("02_face_synthesis", "paper", given) == []
    assert preflight.missing_weights("01_shapes_debiasing", "paper", {"reference_vae_path": str(weights.reference_vae)}) == []
    lines = preflight.missing_weights("02_face_synthesis", "paper", {**given, "stylegan2_path": "/nowhere.pkl"})
    assert len(lines) == 1 and "not found at /nowhere.pkl" in lines[0]


def test_a_checkable_download_or_the_small_backends_need_nothing(no_weights, monkeypatch):
    assert preflight.missing_weights("02_face_synthesis", "default", {}) == []  # dcgan, offline CLIP
    assert preflight.missing_weights("01_shapes_debiasing", "default", {}) == []  # the shapes VAE trained here
    assert preflight.missing_weights("03_face_recognition", "paper", {}) == []
    monkeypatch.delenv("HF_HUB_OFFLINE")  # online, with a sha256 to check the StyleGAN2 download against
    monkeypatch.setenv("QDGS_STYLEGAN2_SHA256", "0" * 64)
    assert preflight.missing_weights("02_face_synthesis", "paper", {}) == []
    assert preflight.missing_weights("01_shapes_debiasing", "paper", {}) == []  # its sha256 is recorded
    monkeypatch.delenv("QDGS_STYLEGAN2_SHA256")  # online, but nothing to check a download against
    assert "no sha256 is known" in preflight.missing_weights("02_face_synthesis", "paper", {})[0]
