"""Smoke runs of every chapter (papermill, `smoke` profile) and the whole book build, as `make book` does."""

import json
from pathlib import Path

import nbformat
import papermill
import pytest

from qdgs.cli import ROOT, execute_chapter, render_book, stage_book, toc_notebooks
from qdgs.publish import check_pages
from qdgs.results import results_root

pytestmark = pytest.mark.slow
CHAPTERS = toc_notebooks()


@pytest.fixture(scope="module")
def stage(tmp_path_factory) -> Path:
    return stage_book(ROOT, tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def executed(stage):
    """Each chapter executed at most once per test session, in reading order."""
    done: dict[str, Path] = {}

    def get(chapter: str) -> Path:
        if chapter not in done:
            done[chapter] = execute_chapter(chapter, "smoke", stage)
        return done[chapter]

    return get


def test_every_chapter_is_a_notebook_without_outputs():
    for chapter in CHAPTERS:
        nb = nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{chapter} has outputs"
        tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
        assert tagged in ([0], [1]), f"{chapter}: the parameters cell must follow the imports"
        assert code[tagged[0]].source.lstrip().startswith("profile: str")
        lines = [ln for ln in code[tagged[0]].source.splitlines() if ln.strip() and not ln.startswith("#")]
        declared = papermill.inspect_notebook(str(ROOT / f"{chapter}.ipynb"))
        assert len(declared) == len(lines), f"{chapter}: papermill cannot read every parameter (a second '=' on a line?)"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_on_smoke_and_records_results(executed, chapter):
    executed(chapter)
    runs = json.loads((results_root() / "runs.json").read_text())
    assert runs["smoke"][Path(chapter).name][-1]["seconds"] > 0


def test_book_builds_without_warnings(stage, executed):
    for chapter in CHAPTERS:
        executed(chapter)
    html = render_book(stage)
    assert (html / "index.html").exists()
    for chapter in ["book/intro", "book/method", *CHAPTERS]:
        page = (html / f"{chapter}.html").read_text()
        assert "Traceback (most recent call last)" not in page, chapter
    assert "Chang" in (html / "book" / "intro.html").read_text()  # the in-text citation resolved
    check_pages(html, ROOT / "_build" / "screenshots")  # as a reader sees it: no error output, missing image or broken link
