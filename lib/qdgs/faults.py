"""The fault matrix: every way a user can get parameters, weights or data wrong, tried for real.

Each case provokes one fault in a temporary folder and checks that it stops with the promised
exception and a message that says what to do, and that nothing was written. The book's
performance chapter runs the matrix and shows the count of what was tried and what held; the
test suite runs it too.
"""

from __future__ import annotations

import pickle
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

from qdgs import data
from qdgs.cli import check_overrides
from qdgs.generators.stylegan2 import StyleGAN2, weights_path
from qdgs.params import ParameterError, check_profile
from qdgs.profiles import FACES
from qdgs.project import environment, project_root
from qdgs.results import chapter, load
from qdgs.scorers.offline_clip import make_clip
from qdgs.scorers.openai_clip import load_openai_clip
from qdgs.search import SearchConfig, run_search


@dataclass(frozen=True)
class Fault:
    """One fault: how to provoke it (in ``tmp``), what must be raised, what the message must say."""

    category: str
    name: str
    provoke: Callable[[Path], object]
    raises: type[BaseException]
    says: str


def _faces_param(**given: Any) -> SimpleNamespace:
    """What the face chapter's notebook checks when it resolves its parameters."""
    return FACES.resolve("smoke", **given)


def _notebook_override(params: dict[str, Any]) -> None:
    """What ``qdgs run 02 -p ...`` checks before it starts the notebook."""
    faces = chapter("faces")
    return check_overrides(project_root() / f"{faces.notebook}.ipynb", params, FACES.params)


def _corrupt_copy(tmp: Path, name: str, damage: Callable[[bytes], bytes]):
    src = data.data_root() / "lfw"
    shutil.copy2(src / "MANIFEST.sha256", tmp / "MANIFEST.sha256")
    (tmp / name).write_bytes(damage((src / name).read_bytes()))
    return data.verify(tmp, [name])


def _bad_checkpoint(tmp: Path, content: bytes):
    (tmp / "search.pkl").write_bytes(content)
    config = SearchConfig(iterations=1, archive_dims=(2, 2), measure_ranges=((0, 1), (0, 1)))
    return run_search(None, config, tmp / "search.pkl", progress_bar=False)  # type: ignore[arg-type]


def _foreign_checkpoint(tmp: Path):
    state = {"key": "another-config", "iteration": 3}
    return _bad_checkpoint(tmp, pickle.dumps(state))


def _stylegan2(tmp: Path, content: bytes | None):
    path = tmp / "stylegan2-ffhq-256x256.pkl"
    if content is None:
        with environment(QDGS_CACHE=str(tmp), HF_HUB_OFFLINE="1", QDGS_STYLEGAN2=None):
            return weights_path()
    path.write_bytes(content)
    return StyleGAN2.from_pickle(path)


def _openai_clip(tmp: Path):
    with environment(HF_HUB_OFFLINE="1", HF_HOME=str(tmp)):
        return load_openai_clip()


def _results(tmp: Path):
    return load("faces", tmp)


FAULTS: tuple[Fault, ...] = (
    Fault("parameters", "unknown profile", lambda t: check_profile("fast"), ParameterError,
          "allowed values: smoke, default, paper"),
    Fault("parameters", "unknown notebook parameter", lambda t: _notebook_override({"iterationz": 3}),
          ParameterError, "has no parameter 'iterationz'"),
    Fault("parameters", "wrong type on the command line", lambda t: _notebook_override({"iterations": "many"}),
          ParameterError, "must be of type int"),
    Fault("parameters", "out of range", lambda t: _faces_param(iterations=-5), ParameterError, "allowed range"),
    Fault("parameters", "out of range on the command line", lambda t: _notebook_override({"iterations": -5}),
          ParameterError, "allowed range"),
    Fault("parameters", "unknown backend", lambda t: _faces_param(scorer="dall-e"), ParameterError,
          "allowed values: 'offline-clip', 'openai-clip'"),
    Fault("data", "missing data root", lambda t: data.utkface_dir(t / "none"),
          FileNotFoundError, "place the unpacked UTKFace"),
    Fault("data", "wrong layout (no pairs.txt)",
          lambda t: ((t / "lfw-deepfunneled").mkdir(), data.lfw_dir(t)),
          FileNotFoundError, "pairs.txt is missing"),
    Fault("data", "truncated file", lambda t: _corrupt_copy(t, "pairs.txt", lambda b: b[: len(b) // 2]),
          RuntimeError, "is corrupt"),
    Fault("data", "wrong checksum", lambda t: _corrupt_copy(t, "pairs.txt", lambda b: b.replace(b"\t", b" ", 1)),
          RuntimeError, "replace it with the file from the official distribution"),
    Fault("weights", "StyleGAN2 weights absent offline", lambda t: _stylegan2(t, None), FileNotFoundError,
          "not available offline"),
    Fault("weights", "StyleGAN2 pickle truncated", lambda t: _stylegan2(t, b"\x80\x04\x95"), RuntimeError,
          "stylegan2-ffhq-256x256.pkl"),
    Fault("weights", "OpenAI CLIP weights absent offline", _openai_clip, RuntimeError, "download"),
    Fault("weights", "unknown CLIP architecture",
          lambda t: make_clip("ViT-Z"),
          ValueError, "known configs"),
    Fault("runs", "corrupt search checkpoint", lambda t: _bad_checkpoint(t, b"garbage"), RuntimeError,
          "delete it to start the search over"),
    Fault("runs", "checkpoint of other settings", _foreign_checkpoint, ValueError, "other settings"),
    Fault("runs", "results of a chapter not run", _results, FileNotFoundError, "run its notebook first"),
)


def run_fault(fault: Fault) -> dict:
    """Provoke one fault; report whether the promised error came, said what it should, and wrote nothing.

    Only the promised exception type is caught: any other is a bug, and propagates with its traceback.
    """
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        before = set(tmp_path.rglob("*"))
        try:
            fault.provoke(tmp_path)
            raised, message = None, "(no error)"
        except fault.raises as err:
            raised, message = err, str(err)
        created = {p for p in tmp_path.rglob("*") if p not in before}
        partial = [p for p in created if p.name.startswith(".") or p.suffix in (".tmp", ".running")]
        held = isinstance(raised, fault.raises) and fault.says in message and not partial
        return {"category": fault.category, "fault": fault.name, "expected": fault.raises.__name__,
                "got": type(raised).__name__ if raised else "nothing", "held": held,
                "message": message.splitlines()[0][:160] if message else ""}


def fault_matrix(faults: tuple[Fault, ...] = FAULTS) -> pd.DataFrame:
    """Every fault tried; one row each with ``held`` True when it failed cleanly as promised."""
    return pd.DataFrame([run_fault(f) for f in faults])
