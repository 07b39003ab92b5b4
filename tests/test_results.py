"""The results contract (record/load), the one list of chapters, and finding the project."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qdgs.project import project_root, toc_notebooks
from qdgs.results import CHAPTERS, RESULTS_CHAPTER, Claim, claims_table, load, record

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = dict(profile="smoke", backends={"generator": "shapes-vae"}, seconds={"search": 1.5})


def test_toc_lists_exactly_the_declared_chapters_in_order():
    assert toc_notebooks(ROOT) == [c.notebook for c in CHAPTERS] + [RESULTS_CHAPTER]


def test_every_chapter_has_a_notebook_and_a_parameter_spec():
    from qdgs.profiles import SPECS

    assert sorted(c.name for c in CHAPTERS) == sorted(SPECS)
    for chapter in CHAPTERS:
        assert SPECS[chapter.name].params, chapter.name
        assert (ROOT / f"{chapter.notebook}.ipynb").is_file()


def test_record_and_load_round_trip_with_claims(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_RESULTS", str(tmp_path))
    claim = Claim("repairs bias", "+27", "+5", np.bool_(True), "smoke")
    record("shapes", pd.DataFrame({"bias": [0.9], "acc": [0.8]}), claims=[claim], datasets={"QD": "/x"}, **CONTRACT)
    assert json.loads((tmp_path / "shapes.json").read_text())["claims"][0]["holds"] is True
    table, meta = load("shapes")
    assert table.acc.tolist() == [0.8] and meta["claims"] == [claim] and meta["datasets"] == {"QD": "/x"}
    assert (meta["profile"], meta["backends"], meta["seconds"]) == ("smoke", {"generator": "shapes-vae"},
                                                                   {"search": 1.5})
    table = claims_table()
    assert table.claim.tolist() == ["repairs bias", "(chapter not run in this build)",
                                    "(chapter not run in this build)"]
    assert table.chapter.tolist() == [c.title for c in CHAPTERS if c.claims]
    assert table.holds.tolist() == [True, None, None]


@pytest.mark.parametrize("field, value, needle", [
    ("backends", "generator shapes-vae", "backends must map each role"),
    ("seconds", 12.0, "seconds must map each part"),
    ("claims", [{"claim": "c", "paper": "p", "ours": "o", "holds": True}], "list of qdgs.results.Claim"),
    ("profile", None, "profile must be a profile name"),
])
def test_record_refuses_another_shape(tmp_path, monkeypatch, field, value, needle):
    monkeypatch.setenv("QDGS_RESULTS", str(tmp_path))
    given = {**CONTRACT, "claims": [], field: value}
    with pytest.raises(TypeError, match=needle):
        record("shapes", pd.DataFrame({"x": [1]}), **given)
    assert not list(tmp_path.iterdir())


def test_claim_holds_is_a_verdict_not_a_number():
    with pytest.raises(TypeError, match="True, False or None"):
        Claim("c", "p", "o", 0.7)


def test_load_says_what_to_do_with_old_or_missing_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="run its notebook first"):
        load("faces", tmp_path)
    (tmp_path / "faces.json").write_text(json.dumps({"chapter": "faces", "profile": "smoke", "generator": "dcgan"}))
    (tmp_path / "faces.csv").write_text("x\n1\n")
    with pytest.raises(ValueError, match="rerun the chapter's notebook"):
        load("faces", tmp_path)


def test_project_root_is_the_nearest_folder_with_a_toc(tmp_path):
    (tmp_path / "book" / "deep").mkdir(parents=True)
    (tmp_path / "_toc.yml").write_text("root: intro\n")
    assert project_root(tmp_path / "book" / "deep") == tmp_path
    with pytest.raises(FileNotFoundError, match="pass --root"):
        project_root(tmp_path.parent)
