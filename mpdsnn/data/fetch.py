"""Download one archive from a dataset's official URL, check its md5, unpack it safely.

URLs, file names and md5s are read from the torchvision / tonic dataset classes themselves, so
they stay the libraries' own. The download is ours rather than the libraries' because theirs
waits without a timeout, silently retries over plain http, and unpacks without a path filter;
here a failure is a :class:`UserError` saying what could not be fetched, from where, and where
to put the file by hand.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from mpdsnn.data.archive import safe_extract
from mpdsnn.errors import UserError

log = logging.getLogger(__name__)

USER_AGENT = "mpdsnn"
_CHUNK = 1 << 20


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: Path, md5: str | None, *, what: str, hint: str,
             timeout: float = 60.0) -> Path:
    """Fetch ``url`` into ``dest`` (via ``dest.part``, renamed once complete and verified).

    ``what`` names the file for the error message, ``hint`` says where to place it by hand.
    ``timeout`` bounds each network wait (connect, each read), not the whole transfer."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    log.info("downloading %s from %s to %s", what, url, dest)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise UserError(f"could not download {what} from {url} ({reason}). {hint}") from None
    if md5 is not None and (got := md5sum(part)) != md5:
        part.unlink()
        raise UserError(f"downloaded {what} from {url} but its md5 is {got}, expected {md5} "
                        f"(an interrupted transfer or a changed file upstream). {hint}")
    os.replace(part, dest)
    return dest


def fetch_archive(url: str, archive: Path, md5: str | None, dest: Path, *, what: str,
                  hint: str, allow_download: bool) -> None:
    """Make sure ``archive`` exists (download it if allowed) and unpack it into ``dest``.

    A present archive is checked against ``md5`` before unpacking, so a corrupt one is named
    rather than half-unpacked."""
    if not archive.is_file():
        if not allow_download:
            raise UserError(f"{what} not found: {archive} is missing and download is off. {hint}")
        download(url, archive, md5, what=what, hint=hint)
    elif md5 is not None and (got := md5sum(archive)) != md5:
        raise UserError(f"{archive} is corrupt: md5 {got}, expected {md5}. Delete it to download "
                        f"it again, or replace it with a good copy from {url}")
    safe_extract(archive, dest)
