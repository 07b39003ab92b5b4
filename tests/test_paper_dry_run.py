"""A dry run of the ``paper`` profile: chapters 01–03 through the CLI on the paper's backends.

The weight files are tiny same-format stand-ins (:mod:`paper_fixtures`), passed as a user passes
the real ones; iterations, epochs and archives are cut to a handful so the run takes minutes.
The run proves the wiring, not the paper's numbers: every stage of each chapter is reached
(search, dataset writer, audit, recognition, results table) and recorded with the paper profile
and its backends. The CUDA variant runs the same command on a GPU (``-m gpu``, with
``CUDA_VISIBLE_DEVICES`` set: the test suite hides CUDA by default).
"""

import os
from pathlib import Path

import pytest
import torch

from paper_fixtures import paper_overrides, write_paper_weights
from qdgs.cli import main
from qdgs.faces.ita import DARK_ITA
from qdgs.results import load, run_times

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("01_shapes_debiasing", "02_face_synthesis", "03_face_recognition")
DEVICES = [pytest.param("cpu"),
           pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
               not torch.cuda.is_available(), reason="no CUDA device visible (set CUDA_VISIBLE_DEVICES to run it)")])]


def _cli_args(params: dict) -> list[str]:
    """``-p name=value`` pairs as a user types them (strings bare, everything else as a Python literal)."""
    return [a for k, v in params.items() for a in ("-p", f"{k}={v if isinstance(v, str) else v!r}")]


@pytest.fixture(params=DEVICES, scope="module")
def dry_run(request, tmp_path_factory):
    """Run the three chapters on ``paper`` in reading order; return the results folder and the executed notebooks."""
    if not Path(os.environ.get("QDGS_DATA", "")).is_dir():
        pytest.skip("QDGS_DATA does not point at the shared datasets (UTKFace, LFW)")
    tmp = tmp_path_factory.mktemp(f"paper-{request.param}")
    overrides = paper_overrides(write_paper_weights(tmp / "weights"), request.param)
    results, out = tmp / "results", tmp / "runs"
    for notebook in CHAPTERS:
        code = main(["--root", str(ROOT), "run", notebook, "--profile", "paper", "--out", str(out),
                     "--results", str(results), *_cli_args(overrides[notebook])])
        assert code == 0, f"qdgs run {notebook} --profile paper failed"
    return results, out


def test_every_chapter_ran_on_paper_and_recorded_its_results(dry_run):
    results, out = dry_run
    assert {p.stem for p in out.glob("*.ipynb")} == set(CHAPTERS)
    timed = run_times(results)
    assert set(timed.query("profile == 'paper'").notebook) == set(CHAPTERS)
    for chapter in ("shapes", "faces", "recognition"):
        assert load(chapter, results).meta["profile"] == "paper"


def test_shapes_searched_the_reference_vae_and_debiased(dry_run):
    r = load("shapes", dry_run[0])
    assert r.meta["backends"]["generator"].startswith("reference-vae")
    assert "reference-vae" in r.meta["claims"][0].note  # the claim says which generator made it
    assert r.table.coverage_searched_qdgs.iloc[0] > 0 and r.table.qd_score_searched_qdgs.iloc[0] > 0  # a non-empty archive
    assert {"+ QDGS", "+ random VAE"} <= set(r.table.condition)  # fine-tuned on both written sets
    assert r.table.mean_acc.between(0, 1).all()


def test_faces_searched_stylegan2_with_openai_clip_wrote_and_audited_datasets(dry_run):
    r = load("faces", dry_run[0])
    assert r.meta["backends"] == {"generator": "stylegan2", "scorer": "openai-clip"}
    t = r.table.set_index("quantity")
    assert t.loc["archive coverage", "QD"] > 0 and t.loc["QD score", "QD"] > 0
    for name, folder in r.meta["datasets"].items():
        written = list(Path(folder).glob("images/*/*.png"))
        assert len(written) == t.loc["images", name] > 0, name
    audit = t.loc[["dark-skinned share (audit classifier)", f"dark-skinned share (ITA < {DARK_ITA:g}°, normalised)"], ["Rand", "QD"]]
    assert audit.notna().all().all() and ((audit >= 0) & (audit <= 1)).all().all()


def test_recognition_trained_on_those_datasets_and_verified_lfw(dry_run):
    results = dry_run[0]
    r = load("recognition", results)
    assert r.meta["datasets"] == load("faces", results).meta["datasets"]  # chapter 02's paper sets
    assert all("stylegan2 generator, openai-clip scorer" in c.note for c in r.meta["claims"])
    lfw = r.table.query("benchmark == 'lfw'").set_index("model")
    assert {"pixels", "untrained", "QD", "Rand"} <= set(lfw.index)
    assert (lfw.loc[["QD", "Rand"], "count"] == 1).all() and lfw["mean"].between(0, 1).all()
    assert r.meta["images_per_s"] > 0 and r.meta["seconds"]["training"] > 0
