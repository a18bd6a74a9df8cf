"""The training engine and the CLI: real training on the embedded digits, resume after a real
kill, and every user error's message and exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from mpdsnn.cli import main
from mpdsnn.config import build_config
from mpdsnn.train import train

TIMINGS = ["seconds", "train_samples_per_s"]  # wall-clock columns: the only ones allowed to differ
FAST = ["--dataset", "digits", "--epochs", "2", "--batch-size", "64", "--no-tracking",
        "--set", "train_subset=400", "--set", "test_subset=200", "--set", "probe_samples=64"]


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_train_writes_a_complete_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(["train", "--method", "ds-atgo", *FAST, "--out", str(out)], capsys)
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["epochs"] == 2
    assert metrics["best_test_acc"] == max(pd.read_csv(out / "history.csv")["test_acc"])
    assert 0 < metrics["mean_firing_rate"] < 1 and "test_acc_batch_thresholds" in metrics
    env = json.loads((out / "env.json").read_text())
    assert len(env["git_commit"]) in (7, 40) or env["git_commit"] == "unknown"
    assert env["packages"]["torch"] == torch.__version__.split("+")[0] or env["packages"]["torch"]
    assert env["data_fingerprint"] == metrics["data_fingerprint"]
    layers = pd.read_csv(out / "probes" / "layers.csv")
    assert len(layers) == 5 and layers["firing_rate"].between(0, 1).all()
    steps = pd.read_csv(out / "probes" / "timesteps.csv")
    assert set(steps["t"]) == {1, 2, 3, 4}
    hist = __import__("numpy").load(out / "probes" / "mpd_hist.npz")
    assert hist["counts"].shape[:2] == (5, 4)
    assert json.loads(stdout)["best_test_acc"] == metrics["best_test_acc"]


def test_same_seed_same_numbers_on_cpu(tmp_path):
    cfg = dict(dataset="digits", method="vanilla", epochs=1, batch_size=64, train_subset=200,
               test_subset=100, probe_samples=32, tracking=False, seed=3)
    a = train(build_config(overrides=cfg), tmp_path / "a")
    b = train(build_config(overrides=cfg), tmp_path / "b")
    ha, hb = pd.read_csv(tmp_path / "a/history.csv"), pd.read_csv(tmp_path / "b/history.csv")
    assert ha.drop(columns=TIMINGS).equals(hb.drop(columns=TIMINGS))
    assert a["best_test_acc"] == b["best_test_acc"]


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_numbers(tmp_path):
    """Kill a real training process after its first checkpoint, resume it, and compare with an
    uninterrupted run of the same config: same history and same final weights."""
    args = ["train", "--method", "ds-atgo", "--dataset", "digits", "--epochs", "3",
            "--batch-size", "64", "--no-tracking", "--set", "train_subset=600",
            "--set", "test_subset=200", "--set", "probe_samples=64"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mpdsnn.cli"]
    subprocess.run([*cmd, *args, "--out", str(tmp_path / "full")], check=True, env=env,
                   capture_output=True)

    victim = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, *args, "--out", str(victim)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = victim / "checkpoint" / "last.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (victim / "metrics.json").exists()

    again = subprocess.run([*cmd, *args, "--out", str(victim)], env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "pass --resume" in again.stderr

    resumed = subprocess.run([*cmd, *args, "--out", str(victim), "--resume"], env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    full = pd.read_csv(tmp_path / "full/history.csv").drop(columns=TIMINGS)
    back = pd.read_csv(victim / "history.csv").drop(columns=TIMINGS)
    pd.testing.assert_frame_equal(full, back)
    assert not (victim / "checkpoint" / "last.pt").exists()  # a finished run keeps no resume state
    wa = torch.load(tmp_path / "full/model.pt", weights_only=True)["state_dict"]
    wb = torch.load(victim / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_sigterm_checkpoints_and_exits_cleanly_for_resume(tmp_path):
    args = ["train", "--method", "vanilla", "--dataset", "digits", "--epochs", "50",
            "--batch-size", "16", "--no-tracking", "--out", str(tmp_path / "r")]
    proc = subprocess.Popen([sys.executable, "-m", "mpdsnn.cli", *args], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpt = tmp_path / "r" / "checkpoint" / "last.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143
    assert "--resume" in err and "Traceback" not in err
    saved = torch.load(ckpt, weights_only=True)
    assert saved["epoch"] >= 1


@pytest.mark.parametrize("args, message", [
    (["--method", "ds-atg0"], "unknown method 'ds-atg0'; did you mean ds-atgo? valid methods: "),
    (["--dataset", "cifar11"], "unknown dataset 'cifar11'; did you mean cifar10, cifar100 or cifar10-dvs? valid "),
    (["--model", "resnet20"], "unknown model 'resnet20'; did you mean resnet19, resnet18"),
    (["--T", "0"], "T must be a positive integer"),
    (["--lr", "-0.1"], "lr must be positive, got -0.1"),
    (["--set", "epochs=2.5"], "epochs must be an integer; got 2.5"),
    (["--set", "learning_rate=0.1"], "unknown config key(s) learning_rate"),
    (["--method-option", "fcc=2"], "unknown option(s) fcc for method 'ds-atgo'"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    code, _, err = run_cli(["train", *FAST, *args, "--out", str(tmp_path / "x")], capsys)
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x" / "metrics.json").exists()


def test_unknown_key_in_yaml_names_the_file(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 1\nbatchsize: 3\n")
    code, _, err = run_cli(["train", "--config", str(cfg), "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "batchsize" in err and str(cfg) in err


@pytest.mark.slow
def test_a_finished_run_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(["train", "--method", "fixed", *FAST, "--epochs", "1", "--out", str(out)], capsys)[0] == 0
    before = (out / "metrics.json").read_text()
    code, _, err = run_cli(["train", "--method", "fixed", *FAST, "--out", str(out)], capsys)
    assert code == 2 and "already holds a finished run" in err
    assert (out / "metrics.json").read_text() == before


def test_a_corrupt_checkpoint_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(["train", "--method", "vanilla", *FAST, "--epochs", "1", "--set", "train_subset=64",
                    "--out", str(out)], capsys)[0] == 0
    (out / "metrics.json").unlink()  # pretend it was interrupted
    (out / "checkpoint").mkdir(exist_ok=True)  # a finished run removed its empty checkpoint folder
    (out / "checkpoint" / "last.pt").write_bytes(b"\x00garbage")
    code, _, err = run_cli(["train", "--method", "vanilla", *FAST, "--epochs", "1", "--set",
                            "train_subset=64", "--out", str(out), "--resume"], capsys)
    assert code == 2 and "is corrupt or unreadable" in err and "delete it" in err


def test_nan_loss_stops_with_epoch_and_checkpoint(tmp_path, capsys):
    code, _, err = run_cli(["train", "--method", "vanilla", *FAST, "--lr", "1e38",
                            "--set", "weight_decay=0", "--out", str(tmp_path / "nan")], capsys)
    assert code == 2
    assert "loss became" in err and "at epoch" in err and "last good checkpoint" in err


def test_resume_with_a_changed_config_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(["train", "--method", "vanilla", *FAST, "--epochs", "1", "--set", "train_subset=64",
                    "--out", str(out)], capsys)[0] == 0
    (out / "metrics.json").unlink()
    code, _, err = run_cli(["train", "--method", "vanilla", *FAST, "--epochs", "1", "--set",
                            "train_subset=64", "--lr", "0.5", "--out", str(out), "--resume"], capsys)
    assert code == 2 and "lr changed" in err


def test_output_path_that_is_a_file_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(["train", *FAST, "--out", str(blocker / "run")], capsys)
    assert code == 2 and "cannot write to the output folder" in err


def test_list_shows_methods_datasets_models(capsys):
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    for name in ("ds-atgo", "mpd-agl", "digits", "digits-dvs", "resnet19", "vggsnn"):
        assert name in out


def test_two_processes_cannot_write_one_run_folder(tmp_path, capsys):
    from mpdsnn.runfolder.guard import RunLock
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):  # another open file description: flock conflicts exactly as across processes
        code, _, err = run_cli(["train", *FAST, "--out", str(out)], capsys)
    assert code == 2 and "is in use by another trainer" in err


def test_history_logs_the_lr_each_epoch_trained_with_and_a_common_test_loss(tmp_path):
    cfg = dict(dataset="digits", method="tet", epochs=2, batch_size=64, train_subset=128,
               test_subset=64, probe_samples=32, tracking=False, lr=0.05)
    train(build_config(overrides=cfg), tmp_path / "r")
    hist = pd.read_csv(tmp_path / "r/history.csv")
    assert hist["lr"].tolist() == pytest.approx([0.05, 0.025])  # cosine over 2 epochs: 0.05, then half
    model = torch.load(tmp_path / "r/model.pt", weights_only=True)
    assert model["config"]["method"] == "tet"


def test_probe_batch_samples_every_class_of_a_class_sorted_test_set(tmp_path):
    from torch.utils.data import TensorDataset
    from mpdsnn.train import Trainer
    labels = torch.arange(10).repeat_interleave(30)  # sorted by class, like event datasets
    data = TensorDataset(torch.arange(300.0).view(300, 1, 1, 1).expand(300, 1, 8, 8), labels)
    trainer = Trainer(build_config(overrides=dict(dataset="digits", probe_samples=60)), tmp_path)
    trainer.device = torch.device("cpu")
    batch = trainer._probe_batch(data)  # [T, 60, 1, 8, 8]; the pixel value is the sample index
    picked = batch[0, :, 0, 0, 0].long()
    assert len(set(labels[picked].tolist())) == 10
    assert torch.equal(picked, trainer._probe_batch(data)[0, :, 0, 0, 0].long())  # fixed


# Calls that make the host wait for the device (on a GPU) or read a tensor's value on the host.
SYNCS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")


CPU_STATISTICS = ("_one_pass_moments", "variance_from_sums")


def _count_host_reads(monkeypatch) -> dict[str, int]:
    """Count every host read of a tensor while a training epoch runs, and every `.to(device)`
    copy that is not non-blocking."""
    from mpdsnn.train import Trainer
    counts = {name: 0 for name in (*SYNCS, "blocking_to", "synchronize")}
    inside = [False]

    def counting(name, original):
        def wrapper(*args, **kwargs):
            # The CPU-only statistics path (on CUDA mpd_statistics takes one std_mean with no
            # read): its scalar reads of CPU tensors wait for no device.
            if inside[0] and sys._getframe(1).f_code.co_name not in CPU_STATISTICS:
                counts[name] += 1
            return original(*args, **kwargs)
        return wrapper

    for name in SYNCS:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    monkeypatch.setattr(torch.cuda, "synchronize", counting("synchronize", torch.cuda.synchronize))
    original_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        if inside[0] and any(isinstance(a, (torch.device, str)) for a in (*args, kwargs.get("device")))\
                and not kwargs.get("non_blocking"):
            counts["blocking_to"] += 1
        return original_to(self, *args, **kwargs)
    monkeypatch.setattr(torch.Tensor, "to", to)

    # Samples are read and collated on the host from host tensors (in loader workers on a GPU
    # machine): not a wait for the device, so not counted.
    next_batch = torch.utils.data.dataloader._BaseDataLoaderIter.__next__

    def uncounted_next(self):
        was, inside[0] = inside[0], False
        try:
            return next_batch(self)
        finally:
            inside[0] = was
    monkeypatch.setattr(torch.utils.data.dataloader._BaseDataLoaderIter, "__next__", uncounted_next)
    epoch = Trainer._train_epoch

    def counted_epoch(self, *args, **kwargs):
        inside[0] = True
        try:
            return epoch(self, *args, **kwargs)
        finally:
            inside[0] = False
    monkeypatch.setattr(Trainer, "_train_epoch", counted_epoch)
    return counts


@pytest.mark.parametrize("method", ["ds-atgo", "vanilla"])
def test_at_most_one_host_sync_per_training_step(tmp_path, monkeypatch, method):
    """Two epochs' worth of steps (4 and 12 batches of 16) differ by 8 steps; the extra host
    reads over those 8 steps are the steady-state cost of a step (per-epoch ones cancel)."""
    totals = []
    for subset in (64, 192):
        counts = _count_host_reads(monkeypatch)
        cfg = dict(dataset="digits", method=method, epochs=1, batch_size=16, train_subset=subset,
                   test_subset=32, probe_samples=16, tracking=False, augment=False)
        train(build_config(overrides=cfg), tmp_path / f"{method}-{subset}")
        totals.append(dict(counts))
        monkeypatch.undo()
    per_step = {k: (totals[1][k] - totals[0][k]) / 8 for k in totals[0]}
    assert sum(v for k, v in per_step.items() if k != "blocking_to") <= 1, str(per_step)
    assert per_step["blocking_to"] == 0, str(per_step)


def test_tf32_and_precision_are_recorded_in_env_json(tmp_path):
    cfg = dict(dataset="digits", method="vanilla", epochs=1, batch_size=64, train_subset=64,
               test_subset=32, probe_samples=16, tracking=False, tf32=True)
    train(build_config(overrides=cfg), tmp_path / "run")
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["tf32_matmul"] is True and env["tf32_cudnn"] is True
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert env["autocast_dtype"] == env["probe_autocast_dtype"] == "none"  # no autocast on a CPU
    assert env["world_size"] == 1
    assert {"cuda_version", "cudnn_version", "nccl_version", "device_name"} <= env.keys()
    train(build_config(overrides={**cfg, "tf32": False}), tmp_path / "off")
    assert json.loads((tmp_path / "off" / "env.json").read_text())["tf32_matmul"] is False
    assert not torch.backends.cudnn.allow_tf32
    # the report groups by it: the hardware label carries the precision
    from mpdsnn.report.tables import comparison_table, hardware_labels
    from mpdsnn.runfolder.reader import read_runs
    runs = read_runs([tmp_path]).runs
    assert set(runs["autocast_dtype"]) == {"none"} and set(runs["tf32_matmul"]) == {True, False}
    assert list(comparison_table(runs)["hardware"]) == ["cpu [fp32] (1)"] * 2  # tf32 on/off: 2 recipes
    gpu = pd.DataFrame({"device_name": ["NVIDIA H200", "NVIDIA H200", "NVIDIA H200"],
                        "autocast_dtype": ["bfloat16", "none", None],
                        "tf32_matmul": [False, True, None], "tf32_cudnn": [False, True, None]})
    assert list(hardware_labels(gpu)) == ["NVIDIA H200 [bf16 autocast; TF32 off]",
                                          "NVIDIA H200 [fp32; TF32 on]", "NVIDIA H200"]


class _StopAfterFirstCheckpoint(Exception):
    pass


def test_persistent_loader_workers_give_the_same_numbers_when_resumed(tmp_path, monkeypatch):
    """Loaders are built once (two workers persist across epochs); each epoch still shuffles and
    augments (random shifts) from the seed alone, so a run stopped after its first epoch and
    resumed ends with the numbers of a run that went straight through."""
    import mpdsnn.train as engine
    cfg = dict(dataset="digits", method="vanilla", epochs=2, batch_size=32, train_subset=128,
               test_subset=32, probe_samples=16, tracking=False, num_workers=2, seed=4)
    train(build_config(overrides=cfg), tmp_path / "straight")
    save = engine.save_checkpoint

    def save_then_stop(path, state):
        save(path, state)
        raise _StopAfterFirstCheckpoint
    monkeypatch.setattr(engine, "save_checkpoint", save_then_stop)
    with pytest.raises(_StopAfterFirstCheckpoint):
        train(build_config(overrides=cfg), tmp_path / "resumed")
    monkeypatch.undo()
    train(build_config(overrides=cfg), tmp_path / "resumed", resume=True)
    straight, resumed = (pd.read_csv(tmp_path / name / "history.csv").drop(columns=TIMINGS)
                         for name in ("straight", "resumed"))
    assert list(resumed["epoch"]) == [1, 2]
    pd.testing.assert_frame_equal(straight, resumed)
