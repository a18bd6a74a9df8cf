"""safe_extract refuses members that would land outside the destination, and downloads fail
fast with a message naming the URL and where to put the file."""

import io
import tarfile
import time
import zipfile

import pytest
from data_formats import md5_of, refused_url, serve_directory

from mpdsnn.data.archive import safe_extract
from mpdsnn.data.fetch import download
from mpdsnn.errors import UserError


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_safe_extract_unpacks_tar_and_zip(tmp_path):
    _tar(tmp_path / "a.tar.gz", [("top/one.txt", b"1"), ("top/sub/two.txt", b"22")])
    files = safe_extract(tmp_path / "a.tar.gz", tmp_path / "out")
    assert sorted(p.read_bytes() for p in files) == [b"1", b"22"]
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as zf:
        zf.writestr("c/three.txt", "333")
    assert (safe_extract(tmp_path / "b.zip", tmp_path / "z")[0]).read_text() == "333"


@pytest.mark.parametrize("evil", ["../evil", "ok/../../evil", "/tmp/evil_abs"])
def test_safe_extract_refuses_escaping_tar_member(tmp_path, evil):
    _tar(tmp_path / "evil.tar.gz", [("fine.txt", b"x"), (evil, b"pwned")])
    dest = tmp_path / "dest"
    with pytest.raises(UserError, match="outside the destination") as err:
        safe_extract(tmp_path / "evil.tar.gz", dest)
    assert repr(evil) in str(err.value)
    assert not (tmp_path / "evil").exists()
    assert not (dest / "fine.txt").exists()  # refused before writing anything


def test_safe_extract_refuses_escaping_symlink_and_zip_member(tmp_path):
    with tarfile.open(tmp_path / "link.tar", "w") as tar:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tar.addfile(info)
    with pytest.raises(UserError, match="a link to"):
        safe_extract(tmp_path / "link.tar", tmp_path / "d1")
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../evil", "pwned")
    with pytest.raises(UserError, match=r"'\.\./evil'"):
        safe_extract(tmp_path / "evil.zip", tmp_path / "d2")
    assert not (tmp_path / "evil").exists()


def test_safe_extract_names_a_corrupt_archive(tmp_path):
    (tmp_path / "broken.tar.gz").write_bytes(b"not an archive at all")
    with pytest.raises(UserError, match="broken.tar.gz is corrupt"):
        safe_extract(tmp_path / "broken.tar.gz", tmp_path / "out")


def test_download_refused_fails_fast_with_url_and_hint(tmp_path):
    url = refused_url("file.bin")
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        download(url, tmp_path / "file.bin", None, what="the file", hint="Put it in X.")
    assert time.monotonic() - start < 5
    assert f"could not download the file from {url}" in str(err.value)
    assert str(err.value).endswith("Put it in X.")
    assert not list(tmp_path.iterdir())  # no partial file left behind


def test_download_checks_md5(tmp_path):
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "f.bin").write_bytes(b"payload")
    good = md5_of(tmp_path / "srv" / "f.bin")
    with serve_directory(tmp_path / "srv") as base:
        path = download(f"{base}/f.bin", tmp_path / "got" / "f.bin", good, what="f", hint="")
        assert path.read_bytes() == b"payload"
        with pytest.raises(UserError, match=f"its md5 is {good}, expected 0+"):
            download(f"{base}/f.bin", tmp_path / "bad" / "f.bin", "0" * 32, what="f", hint="")
    assert not (tmp_path / "bad" / "f.bin").exists()
