"""Publishing to gh-pages (against a local bare repository) and the README's results table."""

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from qdgs.publish import README_MARKERS, main, push_pages, readme_results, update_readme
from qdgs.results import Claim, record


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def html(tmp_path) -> Path:
    site = tmp_path / "html"
    (site / "_static").mkdir(parents=True)
    (site / "index.html").write_text("<html><body>the book</body></html>")
    (site / "_static" / "style.css").write_text("body {}")
    return site


@pytest.fixture
def checkout(tmp_path) -> tuple[Path, Path]:
    """A working repository whose ``origin`` is a bare repository standing in for GitHub."""
    bare, work = tmp_path / "remote.git", tmp_path / "work"
    _git("init", "-q", "--bare", str(bare), cwd=tmp_path)
    _git("init", "-q", str(work), cwd=tmp_path)
    _git("config", "user.name", "Test", cwd=work)
    _git("config", "user.email", "test@example.org", cwd=work)
    _git("remote", "add", "origin", str(bare), cwd=work)
    return work, bare


def test_push_puts_the_book_on_gh_pages(html, checkout):
    work, bare = checkout
    push_pages(html, repo=work)
    files = _git("ls-tree", "-r", "--name-only", "gh-pages", cwd=bare).split()
    assert sorted(files) == [".nojekyll", "_static/style.css", "index.html"]
    assert _git("show", "gh-pages:index.html", cwd=bare) == "<html><body>the book</body></html>"


def test_push_replaces_the_previous_build(html, checkout):
    work, bare = checkout
    push_pages(html, repo=work)
    (html / "_static" / "style.css").unlink()
    (html / "index.html").write_text("second build")
    push_pages(html, repo=work)
    assert sorted(_git("ls-tree", "-r", "--name-only", "gh-pages", cwd=bare).split()) == [".nojekyll", "index.html"]
    assert _git("show", "gh-pages:index.html", cwd=bare) == "second build"


def test_push_refuses_an_unknown_remote_or_a_missing_build(html, checkout, tmp_path):
    work, _ = checkout
    with pytest.raises(RuntimeError, match="git remote add upstream URL"):
        push_pages(html, remote="upstream", repo=work)
    with pytest.raises(FileNotFoundError, match="run `make book`"):
        push_pages(tmp_path / "nothing", repo=work)


@pytest.fixture
def results_dir(tmp_path, monkeypatch) -> Path:
    """Two chapters recorded (shapes, recognition); faces not run."""
    monkeypatch.setenv("QDGS_RESULTS", str(tmp_path / "results"))
    record("shapes", pd.DataFrame({"sampler": ["random", "QDGS"], "accuracy": [0.61234, 0.8876],
                                   "coverage": [0.25, 1.0], "qd_score": [12345.6, 0.5]}),
           profile="smoke", backends={"generator": "shapes-vae", "scorer": "tiny-clip"}, seconds={"total": 3.0},
           claims=[])
    record("recognition", pd.DataFrame({"training set": ["random | biased"], "LFW accuracy": [0.71]}),
           profile="default", backends={"backbone": "ir-resnet-18"}, seconds={"training": 80.5},
           claims=[Claim("QD beats Rand on dark-skinned faces", "yes", "0.61 vs 0.60 | ±0.02", None)])
    return tmp_path / "results"


def test_readme_results_table(results_dir, monkeypatch):
    monkeypatch.setenv("QDGS_RESULTS", "/elsewhere")  # the argument wins
    text = readme_results(results_dir)
    lines = text.splitlines()
    assert lines[0] == "| Chapter | Paper's claim | Paper | Ours | Holds | Run |"
    assert lines[2] == ("| Shapes: debiasing a classifier | — | — | "
                        "**random**: accuracy 0.612, coverage 0.25, qd_score 12,346<br>"
                        "**QDGS**: accuracy 0.888, coverage 1, qd_score 0.5 | — | "
                        "smoke; generator: shapes-vae, scorer: tiny-clip |")
    assert lines[3].startswith("| Faces: synthesis | — | — | no results yet: run `make chapter NB=02`")
    assert lines[4] == ("| Faces: recognition | QD beats Rand on dark-skinned faces | yes | 0.61 vs 0.60 \\| ±0.02 "
                        "| not resolved | default; backbone: ir-resnet-18 |")
    assert "make readme-results" in lines[-1]
    assert os.environ["QDGS_RESULTS"] == "/elsewhere"


def test_update_readme_replaces_only_between_markers(results_dir, tmp_path):
    start, end = README_MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n## Results at a glance\n\n{start}\nold table\n{end}\n\n## How to cite\n")
    assert update_readme(readme, readme_results(results_dir))
    text = readme.read_text()
    assert "old table" not in text and "| Shapes: debiasing a classifier | — |" in text
    assert text.startswith("# Title\n\n## Results at a glance\n\n") and text.endswith(f"{end}\n\n## How to cite\n")
    assert not update_readme(readme, readme_results(results_dir))  # idempotent


def test_update_readme_without_markers_says_what_to_add(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n")
    with pytest.raises(ValueError, match="<!-- results:start -->"):
        update_readme(readme, "table")


def test_command_line_rewrites_the_readme_and_reports_errors(results_dir, tmp_path, capsys):
    start, end = README_MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"{start}\n{end}\n")
    assert main(["readme", "--results", str(results_dir), "--readme", str(readme)]) == 0
    assert "| Faces: recognition | QD beats Rand on dark-skinned faces |" in readme.read_text()
    assert main(["push", "--html", str(tmp_path / "no-build")]) == 1
    assert "run `make book`" in capsys.readouterr().err


def test_commands_find_the_project_from_the_working_directory(results_dir, tmp_path, monkeypatch, capsys):
    start, end = README_MARKERS
    project = tmp_path / "checkout"
    (project / "notebooks").mkdir(parents=True)
    (project / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (project / "README.md").write_text(f"{start}\n{end}\n")
    (project / "_build").mkdir()
    (results_dir).rename(project / "_build" / "results")
    monkeypatch.chdir(project / "notebooks")  # a subfolder: the nearest parent with _toc.yml is the project
    assert main(["readme"]) == 0
    assert "QD beats Rand on dark-skinned faces" in (project / "README.md").read_text()
    monkeypatch.chdir(tmp_path)
    assert main(["readme"]) == 1
    assert "pass --root" in capsys.readouterr().err
