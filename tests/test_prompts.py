"""Prompts as chapter parameters: validation, archive dims, what the offline scorers understand, and a new user's run."""

import json
import warnings
from pathlib import Path

import nbformat
import pytest
import torch

from qdgs import faces, shapes
from qdgs.params import ParameterError
from qdgs.profiles import spec
from qdgs.prompts import FACES_PAPER, SHAPES_PAPER, Prompts, check_prompts, vocabulary_table
from qdgs.results import load
from qdgs.scorers.offline_clip import OfflineClipScorer, UnknownPromptWarning, load_trained, make_clip, save_clip
from qdgs.scorers.openai_clip import load_openai_clip
from paper_fixtures import write_clip_folder

ROOT = Path(__file__).resolve().parents[1]
GLASSES = ["glasses", "A person wearing glasses.", "A person without glasses."]
SKIN_GENDER = [[m.name, m.first, m.second] for m in FACES_PAPER.measures[:2]]


# --- parameters -------------------------------------------------------------------------------

def test_defaults_are_the_papers_prompts_and_archive():
    p = spec("faces").resolve("paper")
    assert Prompts.from_parameters(p.objective_prompts, p.measure_prompts) == FACES_PAPER
    assert p.archive_dims == [50, 25, 5, 25]
    assert FACES_PAPER.names == ("skin", "gender", "hair", "age")
    assert faces.MEASURE_PROMPTS[0] == ("A person with dark skin.", "A person with light skin.")  # facts file
    assert faces.OBJECTIVE_PROMPTS[1] == "An obscure, fake, or discolored photo of a person."
    s = spec("shapes").resolve("default")
    assert Prompts.from_parameters(s.objective_prompts, s.measure_prompts) == SHAPES_PAPER
    assert shapes.MEASURE_PROMPTS[1] == ("A triangle with 3 edges.", "A square or diamond with 4 edges.")


@pytest.mark.parametrize("objective, match", [
    (["only one"], "pair of non-empty strings"),
    (["A face.", ""], "pair of non-empty strings"),
    (["A face.", 3], "pair of non-empty strings"),
    ("A face.", "must be of type list"),
])
def test_objective_prompts_must_be_a_pair_of_strings(objective, match):
    with pytest.raises(ParameterError, match=match):
        spec("faces").resolve("smoke", objective_prompts=objective)


@pytest.mark.parametrize("measures, match", [
    ([], "at least one measure"),
    ([["skin", "A person with dark skin."]], r"\[short name, first prompt, second prompt\]"),
    ([["skin", "A person with dark skin.", " "]], "non-empty string"),
    ([*SKIN_GENDER, ["skin", "a", "b"]], "repeats the measure name"),
    ([GLASSES], "must be skin, gender .*got glasses"),
    ([SKIN_GENDER[1], SKIN_GENDER[0]], "must be skin, gender"),
])
def test_measure_prompts_are_validated_with_one_clear_error(measures, match):
    with pytest.raises(ParameterError, match=match):
        spec("faces").resolve("smoke", measure_prompts=measures)


def test_shapes_needs_colour_then_shape_first():
    with pytest.raises(ParameterError, match="must be colour, shape"):
        spec("shapes").resolve("smoke", measure_prompts=[["shape", "A triangle.", "A square."]])
    size = ["size", "A small shape.", "A large shape."]
    p = spec("shapes").resolve("smoke", measure_prompts=[*SHAPES_PAPER.parameters()[1], size], archive_dims=[10, 10, 4])
    assert Prompts.from_parameters(p.objective_prompts, p.measure_prompts).names == ("colour", "shape", "size")


def test_archive_dims_follow_the_measures():
    measures = [*SKIN_GENDER, GLASSES]
    with pytest.raises(ParameterError, match=r"'archive_dims' has 4 entries for 3 measures \(skin, gender, glasses\)"):
        spec("faces").resolve("smoke", measure_prompts=measures)  # the profile's dims are for the paper's four
    p = spec("faces").resolve("smoke", measure_prompts=measures, archive_dims=[5, 5, 3])
    prompts = Prompts.from_parameters(p.objective_prompts, p.measure_prompts)
    assert len(p.archive_dims) == len(prompts.measures) == 3
    assert prompts.axis_labels == ("skin measure", "gender measure", "glasses measure")
    assert prompts.pairs[2] == ("A person wearing glasses.", "A person without glasses.")


# --- what the offline scorers understand --------------------------------------------------------

def _face_scorer() -> OfflineClipScorer:
    """The faces offline scorer's architecture with the exact captions its sampler trains it on."""
    return OfflineClipScorer(make_clip(faces.SCORER_CONFIG), [c.text for c in faces.vocabulary()])


def test_offline_scorer_warns_once_per_prompt_it_was_not_trained_on():
    scorer = _face_scorer()
    prompts = Prompts.from_parameters(FACES_PAPER.objective, [*SKIN_GENDER, GLASSES])
    with pytest.warns(UnknownPromptWarning) as caught:
        unknown = check_prompts(scorer, prompts)
    assert unknown == ["A person wearing glasses.", "A person without glasses."]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "'A person wearing glasses.'" in messages[0]
    assert all("cannot judge" in m and "openai-clip" in m for m in messages)


def test_the_papers_hair_prompts_are_flagged_the_others_understood():
    with pytest.warns(UnknownPromptWarning):
        unknown = check_prompts(_face_scorer(), FACES_PAPER)
    assert unknown == list(FACES_PAPER.pairs[2])  # UTKFace has no hair labels


def test_known_prompts_do_not_warn():
    scorer = OfflineClipScorer(make_clip(shapes.SCORER_CONFIG), shapes.vocabulary())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_prompts(scorer, SHAPES_PAPER) == []
    assert scorer.understands("a red shape.")  # the tokenizer lowercases: the model reads the same tokens
    assert not scorer.understands("A crimson shape.")


def test_an_untrained_scorer_understands_nothing():
    assert not OfflineClipScorer(make_clip(shapes.SCORER_CONFIG)).understands(SHAPES_PAPER.objective[0])


def _table_rows(table: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]


def test_vocabulary_table_lists_exactly_the_training_captions():
    vocab = shapes.vocabulary()
    scorer = OfflineClipScorer(make_clip(shapes.SCORER_CONFIG), vocab)
    rows = _table_rows(vocabulary_table(scorer, SHAPES_PAPER))
    assert [r[0] for r in rows] == vocab and {r[2] for r in rows} == {"yes (trained on it)"}
    assert {r[0]: r[1] for r in rows}["A red shape."] == "colour: first"
    assert {r[0]: r[1] for r in rows}["Paint splatters."] == "–"
    crimson = Prompts.from_parameters(SHAPES_PAPER.objective, [["colour", "A crimson shape.", "A blue shape."],
                                                               SHAPES_PAPER.parameters()[1][1]])
    rows = _table_rows(vocabulary_table(scorer, crimson))
    assert [r[0] for r in rows] == [*vocab, "A crimson shape."]
    assert rows[-1][1:] == ["colour: first", "**no: cannot judge it**"]


def test_the_vocabulary_is_stored_with_the_trained_scorer(tmp_path):
    model = make_clip(shapes.SCORER_CONFIG)
    save_clip(model, tmp_path / "clip.pt", shapes.SCORER_CONFIG, shapes.vocabulary())
    assert load_trained(tmp_path / "clip.pt").vocabulary == tuple(shapes.vocabulary())
    torch.save({"config": shapes.SCORER_CONFIG, "state_dict": model.state_dict()}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="before offline scorers recorded their training captions: delete it"):
        load_trained(tmp_path / "old.pt")


# --- OpenAI CLIP: an open vocabulary ------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_openai_dir(tmp_path_factory):
    """A ViT-B-32-quickgelu-shaped CLIP (tiny widths, random weights) in open_clip's model-folder layout."""
    return write_clip_folder(tmp_path_factory.mktemp("tiny-openai-clip") / "tiny")


def test_openai_clip_loads_a_model_directory_and_never_warns(tiny_openai_dir):
    root, reference = tiny_openai_dir
    scorer = load_openai_clip(str(root))
    for name, value in reference.state_dict().items():
        assert torch.equal(scorer.model.state_dict()[name], value), name
    prompts = Prompts.from_parameters(FACES_PAPER.objective, [*SKIN_GENDER, GLASSES])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_prompts(scorer, prompts) == []
    assert "open vocabulary" in vocabulary_table(scorer, prompts)


# --- a new user: chapter 02 with a measure of their own ----------------------------------------

def _run_faces(tmp_path, **params):
    from qdgs.cli import run_notebook

    small = {"measure_prompts": [*SKIN_GENDER, GLASSES], "archive_dims": [5, 5, 3], "iterations": 10,
             "calibration_samples": 32, "dataset_latents": 8, "augmentations": 2, "align": False}
    out = run_notebook("02_face_synthesis", "smoke", {**small, **params}, out_dir=tmp_path / "run",
                       root=ROOT, results=tmp_path / "results")
    return nbformat.read(out, as_version=4)


def _outputs(nb, cell_id: str) -> str:
    (cell,) = [c for c in nb.cells if c.get("id") == cell_id]
    return "\n".join(o.get("text", "") + json.dumps(o.get("data", {})) for o in cell.outputs)


@pytest.mark.slow
def test_a_new_measure_on_openai_clip_runs_without_a_warning(tmp_path, tiny_openai_dir):
    nb = _run_faces(tmp_path, scorer="openai-clip", clip_weights=str(tiny_openai_dir[0]))
    assert "UnknownPromptWarning" not in json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "open vocabulary" in _outputs(nb, "faces-vocabulary")
    assert "glasses" in _outputs(nb, "0b032b55")  # the calibration table has a glasses row
    assert load("faces", tmp_path / "results").meta["parameters"]["measure_prompts"][2] == GLASSES


@pytest.mark.slow
def test_a_new_measure_on_offline_clip_warns_that_it_cannot_judge_it(tmp_path):
    nb = _run_faces(tmp_path, scorer="offline-clip")
    out = _outputs(nb, "faces-vocabulary")
    assert "UnknownPromptWarning" in out and "'A person wearing glasses.'" in out and "cannot judge" in out
    assert "**no: cannot judge it**" in out and "A person with dark skin." in out
