import json
import subprocess

import nbformat
import pytest

from qdgs.cli import check_overrides, execute_book, main, parse_value, run_notebook
from qdgs.params import Param, ParameterError
from qdgs.publish import README_MARKERS
from qdgs.publish import main as publish_main


@pytest.fixture
def tiny_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('profile: str = "default"  # profile\nn: int = 3  # a count')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("assert n > 0\nprint(profile, n)")]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "07_tiny.ipynb")
    return tmp_path


def test_parse_value():
    assert parse_value("0.9") == 0.9 and parse_value("[1, 2]") == [1, 2] and parse_value("abc") == "abc"


def test_run_notebook_with_overrides(tiny_notebook, tmp_path):
    out = run_notebook("07", "smoke", {"n": 5}, out_dir=tmp_path / "out", root=tiny_notebook)
    assert "smoke 5" in out.read_text()


@pytest.mark.parametrize("profile, params, needle", [
    ("smoke", {"m": 1}, "has no parameter 'm'; its parameters: profile, n"),
    ("smoke", {"n": "three"}, "parameter 'n' must be of type int"),
    ("fast", {}, "allowed values: smoke, default, paper"),
])
def test_bad_parameters_stop_before_running(tiny_notebook, tmp_path, profile, params, needle):
    with pytest.raises(ParameterError, match=needle):
        run_notebook("07", profile, params, out_dir=tmp_path / "out", root=tiny_notebook)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_failing_notebook_leaves_no_output(tiny_notebook, tmp_path):
    import papermill

    with pytest.raises(papermill.PapermillExecutionError):
        run_notebook("07", "smoke", {"n": -1}, out_dir=tmp_path / "out", root=tiny_notebook)
    assert list((tmp_path / "out").iterdir()) == []


def test_cli_reports_errors_in_one_line(capsys):
    assert main(["run", "no_such_notebook", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qdgs: error: unknown notebook 'no_such_notebook'") and err.count("\n") == 1


def test_overrides_are_checked_by_the_chapters_spec(tiny_notebook):
    notebook = tiny_notebook / "notebooks" / "07_tiny.ipynb"
    spec = [Param("n", int, 3, low=1, help="a count")]
    check_overrides(notebook, {"n": 2, "profile": "smoke"}, spec)
    with pytest.raises(ParameterError, match=r"parameter 'n' got 0; allowed range: \[1, inf\]"):
        check_overrides(notebook, {"n": 0}, spec)  # papermill's type alone would let 0 through
    with pytest.raises(ParameterError, match="parameter 'n' must be of type int"):
        check_overrides(notebook, {"n": True}, spec)  # a bool is not an int, as in the notebook


def test_commands_need_a_project(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "01", "--profile", "smoke"]) == 2
    assert "pass --root" in capsys.readouterr().err


RECORDING_CELL = """
import pandas as pd
from qdgs import results
results.record("shapes", pd.DataFrame({"n": [n]}), profile=profile, backends={"generator": "tiny"},
               seconds={"total": 0.1}, claims=[results.Claim("n is positive", "yes", str(n), n > 0)])
"""


def test_a_build_records_where_the_readme_reads_whatever_qdgs_results_says(tiny_notebook, tmp_path, monkeypatch,
                                                                          capsys):
    nb = nbformat.read(tiny_notebook / "notebooks" / "07_tiny.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(RECORDING_CELL))
    nbformat.write(nb, tiny_notebook / "notebooks" / "07_tiny.ipynb")
    (tiny_notebook / "_toc.yml").write_text("format: jb-book\nroot: notebooks/07_tiny\n")
    (tiny_notebook / "_config.yml").write_text("title: tiny\n")
    start, end = README_MARKERS
    (tiny_notebook / "README.md").write_text(f"{start}\n{end}\n")
    monkeypatch.setenv("QDGS_RESULTS", str(tmp_path / "elsewhere"))  # exported by the user, for other work
    monkeypatch.delenv("QDGS_REPOSITORY_URL", raising=False)

    execute_book("smoke", tiny_notebook, tiny_notebook / "_build")
    assert "QDGS_RESULTS=" in capsys.readouterr().err  # said, not silent
    assert not (tmp_path / "elsewhere").exists()
    runs = json.loads((tiny_notebook / "_build" / "results" / "runs.json").read_text())
    assert runs["smoke"]["07_tiny"][-1]["params"] == {"profile": "smoke"}
    assert publish_main(["--root", str(tiny_notebook), "readme"]) == 0  # make readme-results' defaults
    assert "| Shapes: debiasing a classifier | n is positive | yes | 3 | yes | smoke; generator: tiny |" in \
        (tiny_notebook / "README.md").read_text()


@pytest.mark.parametrize("remote, url", [
    ("git@github.com:someone/qdgs-fork.git", "https://github.com/someone/qdgs-fork"),
    ("https://github.com/someone/qdgs-fork.git", "https://github.com/someone/qdgs-fork"),
    ("/srv/git/qdgs.git", None),
])
def test_the_book_links_to_the_checkouts_github_remote(tmp_path, monkeypatch, remote, url):
    from qdgs.cli import repository_url

    monkeypatch.delenv("QDGS_REPOSITORY_URL", raising=False)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", remote], check=True)
    assert repository_url(tmp_path) == url
    monkeypatch.setenv("QDGS_REPOSITORY_URL", "https://example.org/qdgs")
    assert repository_url(tmp_path) == "https://example.org/qdgs"
