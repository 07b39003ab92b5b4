"""Headless chromium and a loopback web server: what the page check and the PDF run on.

Pages are rendered in Debian's chromium, served from 127.0.0.1 only, with every other host made
unresolvable, so a check never waits on a network that CI does not have.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Debian's chromium; ``QDGS_CHROMIUM`` points elsewhere (``make browser`` installs it).
CHROMIUM = os.environ.get("QDGS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--mute-audio",
    # Loopback only: a page asking for a CDN (MathJax, fonts) fails at once instead of hanging.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
#: Seconds one chromium run may take before the check calls it hung.
CHROMIUM_TIMEOUT = 90


def chromium_path() -> str:
    """The chromium binary, or an error saying how to install it."""
    if not os.access(CHROMIUM, os.X_OK):
        raise FileNotFoundError(
            f"chromium not found at {CHROMIUM}: run `make browser` as root (apt-get install "
            "--no-install-recommends chromium), or set QDGS_CHROMIUM to a chromium binary")
    return CHROMIUM


def chromium_run(url: str, *args: str) -> subprocess.CompletedProcess:
    """Run one headless chromium on ``url`` with a fresh profile; return the finished process.

    A fresh ``--user-data-dir`` per run keeps runs independent of each other and of any
    desktop profile, so results do not depend on cached pages or a locked profile. Its stderr
    holds the page's console when ``--enable-logging=stderr`` is among ``args``.
    """
    with tempfile.TemporaryDirectory(prefix="qdgs-chromium-") as profile:
        command = [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT)
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"chromium took over {CHROMIUM_TIMEOUT} s on {url}: check that the "
                               "page loads in a browser and that no other chromium hogs the CPU") from err
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed on {url} (exit {done.returncode}); its last output:\n"
                           f"{done.stderr[-2000:]}\nCheck `{CHROMIUM} --version` runs; reinstall "
                           "with `make browser` if it does not")
    return done


def run_chromium(url: str, *args: str) -> str:
    """:func:`chromium_run`'s stdout (the DOM with ``--dump-dom``)."""
    return chromium_run(url, *args).stdout


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the build folder without logging every request to the test output."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass


@contextlib.contextmanager
def serve(html_dir: Path) -> Iterator[str]:
    """Serve ``html_dir`` on 127.0.0.1 (a free port) for the duration; yield its base URL.

    Pages are served over HTTP rather than opened as ``file://`` so that scripts, fetches and
    relative URLs behave as they will on GitHub Pages.
    """
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
