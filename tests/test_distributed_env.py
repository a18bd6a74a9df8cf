"""A job's environment (issue 13, item 10): WORLD_SIZE left in the shell gave a KeyError, and
with RANK / MASTER_* set too, a silent wait (PyTorch's 30 minutes). Now one line, in seconds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mpdsnn.cli import main
from mpdsnn.distributed import Distributed, init_process_group
from mpdsnn.errors import UserError

REPO = Path(__file__).resolve().parents[1]
JOB_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_USE_AGENT_STORE")


@pytest.fixture(autouse=True)
def _no_job_env(monkeypatch):
    for name in JOB_VARS:
        monkeypatch.delenv(name, raising=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_leftover_world_size_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    code = main(["train", "--dataset", "digits", "--epochs", "1", "--no-tracking",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err == ("error: WORLD_SIZE=2 is set but RANK, MASTER_ADDR, MASTER_PORT are not: start "
                   "the processes with torchrun, or unset WORLD_SIZE for a single-process run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("env, expected", [
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not an integer"),
    ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"},
     "RANK=2 is outside 0..1"),
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1"}, "MASTER_PORT is not"),
])
def test_inconsistent_job_variables_are_refused(monkeypatch, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match=expected):
        Distributed.from_env()


def test_world_size_one_is_a_single_process(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert Distributed.from_env() == Distributed()


def test_partners_that_never_come_stop_the_process_in_seconds(monkeypatch):
    """WORLD_SIZE=2 with every variable set and no second process: was a silent hang past 75 s."""
    port = _free_port()
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        init_process_group("gloo", join_timeout_s=3)
    assert time.monotonic() - started < 15
    assert f"the 2 processes did not meet at 127.0.0.1:{port} within 3 s" in str(caught.value)
    assert "MPDSNN_JOIN_TIMEOUT_S" in str(caught.value)


_RANK = """
import sys, torch, torch.distributed as dist
sys.path.insert(0, {repo!r})
from mpdsnn.distributed import init_process_group
init_process_group("gloo", join_timeout_s=60)
t = torch.tensor([dist.get_rank() + 1.0])
dist.all_reduce(t)
print(int(t.item()))
dist.destroy_process_group()
"""


def test_two_processes_that_do_meet_train_together(tmp_path):
    """The same function, both ranks present: they meet and an all-reduce sums 1 + 2."""
    port = _free_port()
    code = _RANK.format(repo=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "WORLD_SIZE": "2", "RANK": str(rank),
                                              "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                                              "OMP_NUM_THREADS": "1"})
             for rank in (0, 1)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == ["3", "3"]
