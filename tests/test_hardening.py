"""Failure modes of shared clusters that the run folder and config must survive (README table)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from mpdsnn.runfolder import checkpoint, guard
from mpdsnn.runfolder.io import atomic_write_bytes
from mpdsnn.cli import main
from mpdsnn.config import read_yaml
from mpdsnn.errors import UserError


def test_a_failed_checkpoint_write_leaves_the_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.save_checkpoint(path, {"epoch": 1, "w": torch.ones(3)})

    class DiskFull(OSError):
        pass

    def failing_writer(f):
        f.write(b"half a checkpoint")
        raise DiskFull(28, "No space left on device")

    with pytest.raises(DiskFull):
        atomic_write_bytes(path, failing_writer)
    assert checkpoint.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


class _Payload:
    def __reduce__(self):
        return (print, ("code ran while loading a checkpoint",))


def test_checkpoints_are_loaded_without_unpickling_code(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    buf = io.BytesIO()
    torch.save({"epoch": 1, "extra": _Payload()}, buf)
    path.write_bytes(buf.getvalue())
    with pytest.raises(UserError, match="corrupt or unreadable"):
        checkpoint.load_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out


def test_yaml_is_read_with_safe_loading(tmp_path, capsys):
    cfg = tmp_path / "evil.yaml"
    cfg.write_text("epochs: !!python/object/apply:builtins.print ['yaml executed code']\n")
    with pytest.raises(UserError, match="not valid YAML"):
        read_yaml(cfg)
    assert "yaml executed code" not in capsys.readouterr().out


def test_a_nearly_full_disk_fails_before_training(tmp_path, monkeypatch, capsys):
    real = guard.shutil.disk_usage
    monkeypatch.setattr(guard.shutil, "disk_usage",
                        lambda p: real(p)._replace(free=10 * 2**20))
    code = main(["train", "--dataset", "digits", "--no-tracking", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "only 10 MiB free" in err and "choose another --out" in err
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_ui_binds_to_localhost_unless_told_otherwise():
    from mpdsnn.cli import build_parser

    args = build_parser().parse_args(["ui"])
    assert args.host == "127.0.0.1"


def test_git_dirty_sees_the_whole_tree_from_a_pipeline_folder(tmp_path):
    """A pipeline runs in pipelines/<name>/: a changed file elsewhere must still count as dirty,
    while DVC's own dvc.lock bookkeeping must not."""
    import subprocess

    from mpdsnn.provenance import git_state

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                            "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pipelines" / "p").mkdir(parents=True)
    (tmp_path / "pkg" / "code.py").write_text("x = 1\n")
    (tmp_path / "pipelines" / "p" / "dvc.lock").write_text("a\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "c")
    inside = tmp_path / "pipelines" / "p"
    assert git_state(inside)[1] is False
    (inside / "dvc.lock").write_text("b\n")
    assert git_state(inside)[1] is False
    (tmp_path / "pkg" / "code.py").write_text("x = 2\n")
    assert git_state(inside)[1] is True
