"""The memory estimate before training (issue 13, item 5): ``--T 1000`` on digits grew to 20 GB
RSS in 2.5 minutes with no output. The estimate is checked against a real measured peak, its
refusal names the figure and a fix that does fit, and it leaves the model untouched."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mpdsnn import memory
from mpdsnn.config import build_config
from mpdsnn.data import load_dataset
from mpdsnn.errors import UserError
from mpdsnn.memory import check_memory, estimate
from mpdsnn.neuron import fuse_neurons
from mpdsnn.train import Trainer

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def _model_and_sample(tmp_path: Path, **overrides):
    """What the trainer builds for this config (fused neurons, as it trains)."""
    config = build_config(None, {"dataset": "digits", "method": "ds-atgo", **overrides})
    trainer = Trainer(config, tmp_path / "run")
    sample = load_dataset(config.dataset, config.data_config(trainer.T)).train[0][0]
    model = trainer.build_model(sample)
    fuse_neurons(model, "fused")
    return model, sample, trainer.T


def test_t1000_on_digits_is_refused_in_seconds_with_the_figure_and_a_fix_that_fits(
        tmp_path, monkeypatch):
    """The issue's run: T = 1000, probe batch 256 (the default probe_samples), on a machine
    with 16 GiB free."""
    monkeypatch.setattr(memory, "available_bytes", lambda device: 16 * 2**30)
    model, sample, T = _model_and_sample(tmp_path, T=1000)
    started = time.monotonic()
    with pytest.raises(UserError) as refused:
        check_memory(model, sample, T, 256, CPU)
    assert time.monotonic() - started < 5
    message = str(refused.value)
    need = float(re.search(r"needs about ([\d.]+) GiB of cpu memory", message).group(1))
    assert need > 16 and "x T=1000 x batch 256" in message and "16.0 GiB is free" in message
    batch = int(re.search(r"a batch of at most (\d+)", message).group(1))
    steps = int(re.search(r"T of at most (\d+)", message).group(1))
    assert 1 <= batch < 256 and 1 <= steps < 1000
    assert check_memory(model, sample, T, batch, CPU) <= 16 * 2**30  # the fixes it names fit
    assert check_memory(model, sample, steps, 256, CPU) <= 16 * 2**30
    with pytest.raises(UserError):
        check_memory(model, sample, T, batch + 1, CPU)


_MEASURE = """
import json, sys, torch
sys.path.insert(0, {repo!r})
from tests.test_memory import _model_and_sample
from pathlib import Path
from mpdsnn.train import time_first
torch.set_num_threads(1)
model, sample, T = _model_and_sample(Path({tmp!r}), T={T})
x = time_first(torch.stack([sample] * {batch}), T)
y = torch.zeros({batch}, dtype=torch.long)
def status(field):  # kB in /proc/self/status
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field))
before = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to now: an earlier, higher peak must not hide the step's
loss = torch.nn.functional.cross_entropy(model(x).mean(0), y)
loss.backward()
print(json.dumps({{"peak_bytes": (status("VmHWM:") - before) * 1024}}))
"""


def test_the_estimate_is_within_a_factor_of_two_of_a_measured_training_step(tmp_path):
    """A real forward + backward in a fresh process: its peak RSS growth against the estimate."""
    T, batch = 100, 64
    code = _MEASURE.format(repo=str(REPO), tmp=str(tmp_path), T=T, batch=batch)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout.strip().splitlines()[-1])["peak_bytes"]
    model, sample, _ = _model_and_sample(tmp_path, T=T)
    estimated = estimate(model, sample, T, CPU).total(T, batch)
    print(f"estimated {estimated / 2**20:.0f} MiB, measured {measured / 2**20:.0f} MiB")
    assert 0.5 * measured <= estimated <= 2 * measured


def test_the_estimate_leaves_the_model_and_random_streams_untouched(tmp_path):
    model, sample, T = _model_and_sample(tmp_path, T=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    check_memory(model, sample, T, 64, CPU)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(rng, torch.get_rng_state())


def test_a_model_that_cannot_take_the_input_is_one_line(tmp_path):
    """``--model vggsnn`` on 8x8 digits pools to 0x0 and crashed in the first batch with a
    traceback (found by tests/test_property_inputs.py); the estimate's forward refuses it."""
    model, sample, T = _model_and_sample(tmp_path, model="vggsnn")
    with pytest.raises(UserError, match=r"the model cannot run on inputs of shape \(1, 8, 8\) "
                                        r"\(.*Output size is too small\); choose a model"):
        check_memory(model, sample, T, 64, CPU)


def test_event_frames_and_a_single_timestep_are_estimated(tmp_path):
    config = build_config(None, {"dataset": "digits-dvs", "method": "vanilla", "T": 4,
                                 "model_options": {"width": 8}})
    trainer = Trainer(config, tmp_path / "run")
    sample = load_dataset(config.dataset, config.data_config(4)).train[0][0]
    assert sample.dim() == 4  # frames [T, C, H, W]
    model = trainer.build_model(sample)
    frames = estimate(model, sample, 4, CPU)
    assert frames.per_timestep > 0
    one = estimate(model, sample[:1], 1, CPU)
    assert one.per_timestep > 0 and one.fixed == 0


@pytest.mark.skipif("check_memory" not in inspect.getsource(sys.modules["mpdsnn.train"]),
                    reason="mpdsnn/train.py does not call check_memory yet")
def test_cli_refuses_t1000_on_digits_before_training(tmp_path, monkeypatch, capsys):
    from mpdsnn.cli import main

    monkeypatch.setattr(memory, "available_bytes", lambda device: 16 * 2**30)
    started = time.monotonic()
    code = main(["train", "--method", "ds-atgo", "--dataset", "digits", "--T", "1000",
                 "--limit-batches", "2", "--no-tracking", "--device", "cpu",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and time.monotonic() - started < 30
    assert err.startswith("error: this run needs about") and "\n" not in err
    assert not (tmp_path / "run" / "history.csv").exists()


def test_cpu_memory_is_linux_memavailable_without_psutil(tmp_path, monkeypatch):
    """Offline GPU images have no psutil: on Linux the figure comes from /proc/meminfo."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:         1000000 kB\n"
                       "MemAvailable:    5242880 kB\n")
    monkeypatch.setattr(memory, "MEMINFO", meminfo)
    monkeypatch.setitem(sys.modules, "psutil", None)  # importing it would raise
    assert memory.available_bytes(torch.device("cpu")) == 5 * 2**30


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_gpu_estimate_uses_free_device_memory(tmp_path):
    device = torch.device("cuda:0")
    model, sample, T = _model_and_sample(tmp_path, T=4)
    model = model.to(device)
    assert memory.available_bytes(device) == torch.cuda.mem_get_info(device)[0]
    fits = check_memory(model, sample, T, 64, device)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        fits_bf16 = check_memory(model, sample, T, 64, device)
    assert 0 < fits_bf16 < fits
    huge = memory.available_bytes(device) // int(estimate(model, sample, 1, device).total(1, 1)) * 4
    with pytest.raises(UserError, match="of cuda memory"):
        check_memory(model, sample, 4, int(huge), device)
