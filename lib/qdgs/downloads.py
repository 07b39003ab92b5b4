"""Weight files fetched from their publishers, each checked against a sha256 before it is kept.

As in open_clip's ``pretrained.py``, a table entry (:class:`WeightFile`) names a file's URL and its
sha256, and nothing enters the artifact cache unverified: the download streams into a temporary
file while it is hashed, and only a matching file is moved into place. Where a publisher gives
no checksum and none has been recorded here, the entry says so (``sha256=None``) and a download
needs a hash from the user; we never invent one.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from qdgs.cache import atomic_write, cache_root

_BLOCK = 1 << 20


@dataclass(frozen=True)
class WeightFile:
    """One downloadable weight file.

    Attributes:
        filename: the publisher's file name.
        url: where it is published.
        sha256: its hex digest, or None where neither the publisher nor this table records one.
        size: its size, for messages ("about 350 MB").
    """

    filename: str
    url: str
    sha256: str | None
    size: str


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def check_sha256(path: str | os.PathLike, expected: str) -> None:
    """Raise, naming both digests, when ``path`` is not the file whose sha256 is ``expected``."""
    got = file_sha256(path)
    if got != expected.lower():
        raise RuntimeError(f"{path} has sha256 {got}, not the expected {expected}: it is corrupt or another "
                           "file; delete it and download it again (or check the expected hash)")


def download(entry: WeightFile, target: str | os.PathLike, sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Fetch ``entry`` to ``target``, keeping it only if its sha256 matches.

    Args:
        entry: the file to fetch.
        target: where the verified file goes.
        sha256: the expected digest when the table has none (a hash the user trusts); it must
            agree with the table's when both are given.
        timeout: seconds before a stalled connection gives up (nothing hangs).

    Raises:
        FileNotFoundError: no hash is known (nothing is fetched), or the download failed.
        RuntimeError: the downloaded file's sha256 differs (nothing is kept).
    """
    if sha256 and entry.sha256 and sha256.lower() != entry.sha256:
        raise RuntimeError(f"the sha256 given for {entry.filename} ({sha256}) differs from the recorded "
                           f"{entry.sha256}; drop the argument or check where the hash came from")
    expected = (sha256 or entry.sha256 or "").lower()
    if not expected:
        raise FileNotFoundError(
            f"the sha256 of {entry.filename} is not known to qdgs (its publisher gives none), so it is not "
            f"downloaded unchecked: download {entry.url} ({entry.size}) yourself and pass its path, or pass "
            "the sha256 you trust for it to let qdgs download and check it")
    target = Path(target)
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(entry.url, timeout=timeout) as response, atomic_write(target) as f:
            while block := response.read(_BLOCK):
                h.update(block)
                f.write(block)
            if h.hexdigest() != expected:  # raised inside the write: the temporary file is removed
                raise RuntimeError(f"the download of {entry.url} has sha256 {h.hexdigest()}, not the expected "
                                   f"{expected}; nothing was kept: check the hash, or retry later")
    except OSError as err:
        raise FileNotFoundError(f"could not download {entry.url} ({err}); download it ({entry.size}) yourself "
                                f"and pass its path") from err
    return target


def offline() -> bool:
    """Whether downloads are off (``HF_HUB_OFFLINE`` or ``QDGS_OFFLINE`` set): then nothing waits on a network."""
    return bool(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("QDGS_OFFLINE"))


def cached_path(entry: WeightFile) -> Path:
    """Where the artifact cache keeps ``entry`` (``<cache>/weights/<filename>``)."""
    return cache_root() / "weights" / entry.filename


def placement_hint(entry: WeightFile, env: str | None = None) -> str:
    """What to download and where to put it, as every missing-weights message says it."""
    return (f"download {entry.url} ({entry.size}) and place it at {cached_path(entry)}"
            + (f", or set {env} to its path" if env else "") + ", or pass its path")


def weights_file(entry: WeightFile, what: str, path: str | os.PathLike | None = None, env: str | None = None,
                 sha256: str | None = None, download_missing: bool | None = None, timeout: float = 30.0) -> Path:
    """Locate a weight file: ``path``, then ``$env``, then the cache, then a checked download.

    Args:
        entry: the file's table entry.
        what: how messages name it ("StyleGAN2-FFHQ-256 weights").
        path: an explicit file (checked against ``sha256`` when given: a user's own weights need
            not be the published ones).
        env: an environment variable that may hold the file's path.
        sha256: the expected digest when the table records none (or to check a local file).
        download_missing: fetch into ``<cache>/weights/`` when absent; default: unless
            ``HF_HUB_OFFLINE`` or ``QDGS_OFFLINE`` is set.
        timeout: seconds before a stalled download gives up (nothing hangs).

    Raises:
        FileNotFoundError: saying what to download and where to put it.
        RuntimeError: a file's sha256 differs from the expected one.
    """
    expected = sha256 or entry.sha256
    cached = cached_path(entry)
    hint = placement_hint(entry, env)
    if path is None and env and os.environ.get(env):
        path = os.environ[env]
    if path is not None:  # the user's own file: checked only against a hash the user gives
        if not Path(path).is_file():
            raise FileNotFoundError(f"{what} not found at {path}: {hint}")
        if sha256:
            check_sha256(path, sha256)
        return Path(path)
    if cached.is_file():
        if expected:
            check_sha256(cached, expected)
        return cached
    if download_missing is False or (download_missing is None and offline()):
        raise FileNotFoundError(f"{what} are not available offline: {hint}")
    try:
        return download(entry, cached, expected, timeout)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{err}; or {hint}") from err
