import subprocess

import nbformat
import pytest

from qdgs.cli import main, parse_value, run_notebook, toc_notebooks
from qdgs.params import ParameterError


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
    ("smoke", {"n": "three"}, "parameter 'n' of 07_tiny must be int"),
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


def test_toc_lists_only_notebooks():
    assert all(not name.startswith("book/intro") for name in toc_notebooks())


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
