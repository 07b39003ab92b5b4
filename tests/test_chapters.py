"""The reader's book: every chapter opens and closes the same way, figures carry captions, exercises run.

Fast checks that read the notebook and markdown files only; nothing is executed.
"""

import json
import re
import shlex
from pathlib import Path

import pytest
from qdgs.cli import parse_value
from qdgs.profiles import spec_for_notebook
from qdgs.project import toc_files
from qdgs.results import CHAPTERS, RESULTS_CHAPTER

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_CHAPTERS = [c.notebook for c in CHAPTERS] + [RESULTS_CHAPTER]
MARKDOWN_CHAPTERS = ["book/method", "book/teaching", "book/reproducing"]
HEADINGS = ["Overview", "Prerequisites", "Summary", "What's next"]
HEADING = re.compile(r"^## (Overview|Prerequisites|Summary|What's next)\s*$", re.MULTILINE)
DRAWS = re.compile(r"\bplt\.subplots\(|\bplt\.figure\(|\bplots\.\w+\(|\bsns\.\w+\(")
DOC_LINK = re.compile(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`")
COMMAND = re.compile(r'make chapter NB=([\w.-]+) PROFILE=([a-z]+)(?: PARAMS="([^"]*)")?')


def _cells(chapter: str) -> list[dict]:
    return json.loads((ROOT / f"{chapter}.ipynb").read_text())["cells"]


def _src(cell: dict) -> str:
    return "".join(cell["source"])


def _without_fences(text: str) -> str:
    """Markdown with fenced code blocks blanked (a '## ' inside a bash block is no heading)."""
    return re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.MULTILINE | re.DOTALL)


def _links_resolve(text: str, folder: Path) -> list[str]:
    """The {doc} targets in ``text``; each must name an existing chapter file relative to ``folder``."""
    targets = DOC_LINK.findall(text)
    for t in targets:
        base = (folder / t).resolve()
        assert any(base.with_name(base.name + s).is_file() for s in (".md", ".ipynb")) or base.is_file(), \
            f"{{doc}}`{t}` names no chapter (from {folder.relative_to(ROOT)})"
    return targets


@pytest.mark.parametrize("chapter", NOTEBOOK_CHAPTERS)
def test_notebook_chapter_opens_and_closes_with_the_four_sections(chapter):
    cells = _cells(chapter)
    found = [(i, h) for i, c in enumerate(cells) if c["cell_type"] == "markdown" for h in HEADING.findall(_src(c))]
    assert [h for _, h in found] == HEADINGS, f"{chapter}: headings {[h for _, h in found]}, want {HEADINGS} in order"
    where = {h: i for i, h in found}
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    assert where["Prerequisites"] < first_code, f"{chapter}: Overview and Prerequisites come before any code"
    code_after = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and i > where["Summary"]]
    assert len(code_after) == 1 and code_after[0] < where["What's next"], \
        f"{chapter}: the Summary is one code cell, between '## Summary' and '## What's next'"
    summary = _src(cells[code_after[0]])
    assert "print(" in summary and "{" in summary, f"{chapter}: the Summary prints this build's numbers"
    assert where["What's next"] == len(cells) - 1, f"{chapter}: What's next is the last cell"
    assert _links_resolve(_src(cells[-1]), (ROOT / chapter).parent), f"{chapter}: What's next links a chapter"


def test_notebook_prerequisites_give_a_time_for_every_profile():
    for chapter in NOTEBOOK_CHAPTERS:
        text = "\n".join(_src(c) for c in _cells(chapter) if c["cell_type"] == "markdown")
        prereq = text.split("## Prerequisites", 1)[1].split("\n## ", 1)[0]
        for profile in ("smoke", "default", "paper"):
            assert re.search(rf"^\| `{profile}`[^|]*\| \S", prereq, re.MULTILINE), f"{chapter}: no time for `{profile}`"
    tour = "\n".join(_src(c) for c in _cells(CHAPTERS[-1].notebook) if c["cell_type"] == "markdown")
    assert "no paper version" in tour


@pytest.mark.parametrize("chapter", MARKDOWN_CHAPTERS)
def test_markdown_chapter_opens_and_closes_with_the_four_sections(chapter):
    text = (ROOT / f"{chapter}.md").read_text()
    body = _without_fences(text)
    assert HEADING.findall(body) == HEADINGS, f"{chapter}: headings {HEADING.findall(body)}"
    sections = re.split(r"^## ", body, flags=re.MULTILINE)
    assert sections[1].startswith("Overview") and sections[2].startswith("Prerequisites"), \
        f"{chapter}: Overview and Prerequisites are its first sections"
    assert sections[-2].startswith("Summary") and sections[-1].startswith("What's next"), \
        f"{chapter}: Summary and What's next are its last sections"
    assert re.search(r"^\| `?(smoke|default|paper)", sections[2], re.MULTILINE), f"{chapter}: Prerequisites give times"
    assert _links_resolve(sections[-1], (ROOT / chapter).parent), f"{chapter}: What's next links a chapter"


def test_every_figure_has_a_caption_and_a_unique_name_in_cell_metadata():
    names = {}
    for chapter in NOTEBOOK_CHAPTERS:
        for i, c in enumerate(_cells(chapter)):
            if c["cell_type"] != "code" or not DRAWS.search(_src(c)):
                continue
            figure = c["metadata"].get("mystnb", {}).get("figure", {})  # myst-nb's cell-level figure options
            assert figure.get("caption", "").strip(), f"{chapter} cell {i} draws a figure without a caption"
            name = figure.get("name", "")
            assert re.fullmatch(r"fig-[a-z0-9-]+", name), f"{chapter} cell {i}: figure name {name!r}"
            assert name not in names, f"figure name {name} used by {names.get(name)} and {chapter} cell {i}"
            names[name] = f"{chapter} cell {i}"
    assert len(names) >= 15


def test_no_cell_titles_a_whole_figure():
    for chapter in NOTEBOOK_CHAPTERS:
        for i, c in enumerate(_cells(chapter)):
            assert "suptitle(" not in _src(c), f"{chapter} cell {i}: a suptitle duplicates the caption"


def _teaching_commands() -> list[tuple[str, str, str]]:
    return COMMAND.findall((ROOT / "book" / "teaching.md").read_text())


def test_every_exercise_is_a_make_chapter_command():
    text = (ROOT / "book" / "teaching.md").read_text()
    exercises = text.split("## Exercises", 1)[1].split("\n## ", 1)[0]
    items = re.split(r"^\d+\. ", exercises, flags=re.MULTILINE)[1:]
    assert len(items) >= 6
    for k, item in enumerate(items, 1):
        assert COMMAND.search(item), f"exercise {k} has no make chapter command"
        assert "*Observe:*" in item, f"exercise {k} does not say what to observe"


@pytest.mark.parametrize("nb, profile, params", _teaching_commands())
def test_teaching_commands_name_real_notebooks_and_parameters(nb, profile, params):
    matches = sorted((ROOT / "notebooks").glob(f"{nb}*.ipynb"))
    assert len(matches) == 1, f"NB={nb} names {len(matches)} notebooks"
    stem = matches[0].stem
    assert stem in {c.stem for c in CHAPTERS}
    spec = spec_for_notebook(stem)
    assert profile in spec.profiles, f"{stem} has no '{profile}' profile"
    known = {p.name for p in spec.params}
    given = {}
    for pair in shlex.split(params):  # make splits PARAMS on spaces, the shell removes the quotes
        name, _, value = pair.partition("=")
        assert name in known, f"{stem} has no parameter '{name}'; it has {sorted(known)}"
        given[name] = parse_value(value)
    spec.resolve(profile, **given)  # types and ranges, as the notebook will check them


def test_every_doc_link_in_the_chapters_names_a_chapter():
    for chapter in NOTEBOOK_CHAPTERS:
        for c in _cells(chapter):
            if c["cell_type"] == "markdown":
                _links_resolve(_src(c), (ROOT / chapter).parent)
    for chapter in MARKDOWN_CHAPTERS:
        _links_resolve((ROOT / f"{chapter}.md").read_text(), (ROOT / chapter).parent)


def _whats_next(chapter: str) -> str:
    if (ROOT / f"{chapter}.ipynb").is_file():
        return _src(_cells(chapter)[-1])
    return (ROOT / f"{chapter}.md").read_text().rsplit("## What's next", 1)[1]


@pytest.mark.parametrize("chapter", NOTEBOOK_CHAPTERS + MARKDOWN_CHAPTERS)
def test_whats_next_first_links_the_following_chapter_of_the_toc(chapter):
    order = toc_files(ROOT)
    following = order[order.index(chapter) + 1]
    first = DOC_LINK.findall(_whats_next(chapter))[0]
    assert ((ROOT / chapter).parent / first).resolve() == (ROOT / following).resolve(), \
        f"{chapter}: What's next first links {first}, the chapter after it is {following}"
