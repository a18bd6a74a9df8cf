"""Unpack a downloaded archive without letting it write outside its destination.

torchvision and tonic unpack with a bare ``extractall``: a crafted archive with a ``../evil`` or
``/etc/...`` member (or a link pointing out) would write anywhere. Every archive this package
unpacks goes through :func:`safe_extract`, which refuses such members by name before writing
anything and, for tar files, also applies Python's ``filter="data"`` (links, devices, modes).
"""

from __future__ import annotations

import logging
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from mpdsnn.errors import UserError

log = logging.getLogger(__name__)


def _unsafe_reason(name: str) -> str | None:
    """Why a member name would escape the destination, or None if it stays inside."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return "an absolute path"
    if ".." in PurePosixPath(posix).parts:
        return "a '..' component"
    return None


def _refuse(archive: Path, bad: list[tuple[str, str]]) -> UserError:
    shown = "; ".join(f"{name!r} ({why})" for name, why in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return UserError(f"refusing to unpack {archive}: members would be written outside the "
                     f"destination: {shown}{more}. The archive is corrupt or crafted; delete it "
                     f"and fetch it again from the dataset's official source")


def _corrupt(archive: Path, exc: BaseException) -> UserError:
    return UserError(f"{archive} is corrupt ({exc}): delete it and fetch it again")


def safe_extract(archive: Path | str, dest: Path | str) -> list[Path]:
    """Unpack a ``.tar`` (any compression) or ``.zip`` archive into ``dest``.

    Returns the paths of the regular files written. Raises :class:`UserError` for a member with
    an absolute path or a ``..`` component (nothing is written then), for a link or special file
    that ``filter="data"`` rejects, and for a file that is neither tar nor zip (e.g. a truncated
    download)."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            bad = [(m.name, why) for m in members if (why := _unsafe_reason(m.name))]
            bad += [(m.name, f"a link to {m.linkname!r}") for m in members
                    if (m.issym() or m.islnk()) and _unsafe_reason(m.linkname)]
            if bad:
                raise _refuse(archive, bad)
            try:
                tar.extractall(dest, filter="data")
            except tarfile.FilterError as exc:
                raise UserError(f"refusing to unpack {archive}: {exc}") from None
            except (tarfile.ReadError, EOFError, OSError) as exc:
                raise _corrupt(archive, exc) from None
            files = [dest / m.name for m in members if m.isfile()]
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            bad = [(i.filename, why) for i in infos if (why := _unsafe_reason(i.filename))]
            if bad:
                raise _refuse(archive, bad)
            try:
                zf.extractall(dest)
            except (zipfile.BadZipFile, EOFError, OSError) as exc:
                raise _corrupt(archive, exc) from None
            files = [dest / i.filename for i in infos if not i.is_dir()]
    else:
        raise _corrupt(archive, ValueError("neither a tar nor a zip archive"))
    log.info("unpacked %d files from %s into %s", len(files), archive, dest)
    return files
