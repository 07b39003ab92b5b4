"""Every chapter's parameters are declared once, and each notebook's parameters cell is that spec."""

import json
from pathlib import Path

import papermill as pm
import pytest

from qdgs.params import ParameterError
from qdgs.profiles import SPECS, chapter_parameters, parameters_cell, spec, spec_for_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _parameters_source(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name} must have exactly one cell tagged 'parameters'"
    return "".join(tagged[0]["source"])


@pytest.mark.parametrize("chapter", list(SPECS))
def test_notebook_parameters_cell_is_the_spec(chapter):
    notebook = NOTEBOOKS / f"{SPECS[chapter].notebook}.ipynb"
    assert _parameters_source(notebook) == parameters_cell(chapter)
    declared = pm.inspect_notebook(str(notebook))  # papermill reads the same names, types and help
    params = SPECS[chapter].params
    assert list(declared) == ["profile", *(p.name for p in params)]
    for p in params:
        assert declared[p.name]["inferred_type_name"] == p.type.__name__
        assert declared[p.name]["help"] == p.help


def test_every_notebook_with_parameters_has_a_spec():
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        assert spec_for_notebook(notebook.stem) is not None, notebook.name


def test_chapter_parameters_reads_the_notebook_namespace():
    namespace = {"profile": "smoke", **{p.name: None for p in spec("shapes").params}, "iterations": 7}
    p = chapter_parameters("shapes", namespace)
    assert (p.profile, p.iterations, p.vae_steps) == ("smoke", 7, 300)
    del namespace["seed"]
    with pytest.raises(ParameterError, match="does not define seed"):
        chapter_parameters("shapes", namespace)


def test_a_chapter_without_a_paper_version_says_so():
    with pytest.raises(ParameterError, match="no 'paper' version.*chapter 01 on the paper profile"):
        spec("tour").resolve("paper")
    with pytest.raises(ParameterError, match="unknown chapter 'shape'"):
        spec("shape")


def test_a_paper_book_runs_the_tour_on_default_and_says_so(capsys):
    from qdgs.cli import book_profile

    assert book_profile("notebooks/01_shapes_debiasing", "paper") == "paper"
    assert book_profile("notebooks/00_method_tour", "paper") == "default"
    assert "has no 'paper' version: executing it on 'default'" in capsys.readouterr().out
    assert book_profile("notebooks/00_method_tour", "smoke") == "smoke"
