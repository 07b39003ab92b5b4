"""Pushing the built HTML to the gh-pages branch, as Jupyter Book documents."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from qdgs.publish.site import require_html


def push_pages(html_dir: Path, repo: Path, remote: str = "origin", branch: str = "gh-pages") -> None:
    """Replace ``branch`` of ``remote`` with the built HTML.

    ``ghp-import -n -p -f`` writes a ``.nojekyll`` (GitHub's Jekyll would hide ``_static``),
    commits the folder as the whole branch and force-pushes it, so the branch holds the latest
    build and nothing else.

    Args:
        html_dir: the built HTML.
        repo: the git checkout whose remote is pushed to.
        remote: the remote's name.
        branch: the branch that GitHub Pages serves.
    """
    html_dir = require_html(Path(html_dir))
    known = subprocess.run(["git", "remote", "get-url", remote], cwd=repo, capture_output=True, text=True)
    if known.returncode != 0:
        raise RuntimeError(f"git remote '{remote}' is not configured in {repo}: add it "
                           f"(git remote add {remote} URL) or pass another, e.g. make publish REMOTE=name")
    ghp_import = Path(sys.executable).with_name("ghp-import")
    done = subprocess.run([str(ghp_import), "-n", "-p", "-f", "-r", remote, "-b", branch, str(html_dir)],
                          cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ghp-import could not push to {remote}/{branch}:\n{done.stderr.strip()}\n"
                           "Check that you may push to that remote (git push works) and retry")
