"""Fault matrix of the core: killed runs resume exactly, half-written files are never read as complete."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from qdgs.cache import artifact
from test_search import CONFIG, _scoring, _sorted_elites

TESTS = Path(__file__).parent


def _spawn(code: str, **env) -> subprocess.Popen:
    """A child Python importing the same ``qdgs`` as this process (its import path kept), plus the tests."""
    path = os.pathsep.join([str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=TESTS,
                            env={**os.environ, "PYTHONPATH": path, **env})


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, "the child ended before reaching the point to kill it at"
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigkilled_search_resumes_to_the_uninterrupted_archive(tmp_path):
    from dataclasses import replace

    from qdgs.search import run_search

    config = replace(CONFIG, iterations=60, checkpoint_every=10)
    ckpt = tmp_path / "search.pkl"
    proc = _spawn(f"""
        from dataclasses import replace
        from qdgs.search import run_search
        from test_search import CONFIG, _scoring
        run_search(_scoring(), replace(CONFIG, iterations=60, checkpoint_every=10), {str(ckpt)!r}, False)
    """)
    _wait_for(ckpt, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    resumed = run_search(_scoring(), config, ckpt, progress_bar=False)
    full = run_search(_scoring(), config, progress_bar=False)
    a, b = _sorted_elites(full), _sorted_elites(resumed)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert [p.name for p in tmp_path.iterdir()] == ["search.pkl"]  # no temporary left beside it


def test_sigkilled_artifact_build_is_never_taken_as_complete(tmp_path):
    marker = tmp_path / "building"
    proc = _spawn(f"""
        import time
        from pathlib import Path
        from qdgs.cache import artifact
        def build(d):
            (d / "model.pt").write_bytes(b"half")
            Path({str(marker)!r}).touch()
            time.sleep(60)
        artifact("model", {{"n": 1}}, build)
    """, QDGS_CACHE=str(tmp_path / "cache"))
    _wait_for(marker, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    built = []
    path = artifact("model", {"n": 1}, lambda d: (built.append(1), (d / "model.pt").write_bytes(b"whole")))
    assert built == [1] and (path / "model.pt").read_bytes() == b"whole"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the killed build's temp is gone


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_checkpoint_says_what_to_do(tmp_path, damage):
    from qdgs.search import run_search

    ckpt = tmp_path / "c.pkl"
    run_search(_scoring(), CONFIG, ckpt, progress_bar=False)
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a checkpoint")
    with pytest.raises(RuntimeError, match="delete it to start the search over"):
        run_search(_scoring(), CONFIG, ckpt, progress_bar=False)
