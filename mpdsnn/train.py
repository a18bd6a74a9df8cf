"""The training engine: epochs, evaluation, probes, checkpoints and resume, device, AMP, DDP.

The engine knows a method only through its registry entry, a dataset only through the dataset
registry, and MLflow only through :mod:`mpdsnn.tracking`. One call, :func:`train`, turns a
validated :class:`TrainConfig` into a run folder (docs/run-folder.md).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info
from tqdm import tqdm

from mpdsnn.config import TrainConfig
from mpdsnn.data import DataSplits, dataset_info, load_dataset
from mpdsnn.distributed import (Distributed, GlobalBatchSampler, active, check_same_everywhere,
                                init_process_group, main_first, wrap_model)
from mpdsnn.efficiency import neurobench_metrics
from mpdsnn.errors import UserError
from mpdsnn.losses import mean_output_ce, predict
from mpdsnn.methods import Method, create_method, method_options
from mpdsnn.models import create_model
from mpdsnn.neuron import AdaptiveThreshold, fuse_neurons
from mpdsnn.probes import HIST_EDGES, ProbeResult, run_probes
from mpdsnn.provenance import environment
from mpdsnn.lifecycle import stop_with_parent
from mpdsnn.memory import check_memory
from mpdsnn.paper import paper_layers
from mpdsnn.phases import (BETWEEN_EPOCHS, DATA, EVALUATION, PROBES, STARTUP, TEARDOWN, TRAINING,
                           PhaseClock)
from mpdsnn.runfolder import layout
from mpdsnn.runfolder.checkpoint import load_checkpoint, save_checkpoint
from mpdsnn.runfolder.fingerprint import changed_keys, code_hash
from mpdsnn.runfolder.guard import RESUMABLE_CHANGES, RunLock, check_out_folder, prepare_folder
from mpdsnn.runfolder.writer import RunWriter, recipe_record

log = logging.getLogger(__name__)


BATCH_STATISTICS_SIZES = (1, 16)
"""Test batch sizes at which a run with MPD thresholds is also evaluated on each batch's own
statistics (metrics ``test_acc_batch_thresholds_bs<k>``; mpdsnn.verdicts.render reads them)."""


class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""


class Interrupted(Exception):
    """SIGTERM/SIGINT arrived; the last epoch's checkpoint is on disk."""


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        torch.backends.cudnn.benchmark = True


def select_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
    if name == "cuda":
        return torch.device(f"cuda:{local_rank}")
    return torch.device(name)


def time_first(x: Tensor, T: int) -> Tensor:
    """Static ``[N, C, H, W]`` -> direct encoding ``[T, N, C, H, W]``; frames ``[N, T, ...]`` ->
    ``[T, N, ...]``."""
    if x.dim() == 4:
        return x.unsqueeze(0).expand(T, *x.shape).contiguous()
    if x.dim() == 5:
        if x.shape[1] != T:
            raise UserError(f"event frames have {x.shape[1]} timesteps but the model runs T={T}")
        return x.transpose(0, 1).contiguous()
    raise ValueError(f"expected a batch of images [N,C,H,W] or frames [N,T,C,H,W], got {tuple(x.shape)}")


class _EpochKeys(Sampler[list[tuple[int, int]]]):
    """The sampler's batches as ``(epoch, index)`` pairs, so a loader worker knows the epoch."""

    def __init__(self, batches: GlobalBatchSampler) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch = self.batches.epoch
        return ([(epoch, i) for i in batch] for batch in self.batches)


class _EpochSeeded(Dataset):
    """Reads ``(epoch, index)``; a loader worker reseeds torch, numpy and random at its first
    sample of each epoch from (seed, epoch, rank, worker).

    Loaders are built once with persistent workers, so without this a worker's augmentations
    in epoch e would depend on every earlier epoch and a resumed run would draw other ones.
    In the main process (``num_workers: 0``) the global generators, which checkpoints save,
    draw as before.
    """

    def __init__(self, data: Dataset, seed: int, rank: int = 0) -> None:
        self.data, self.seed, self.rank, self.epoch = data, seed, rank, -1

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        worker = get_worker_info()
        if worker is not None and epoch != self.epoch:
            seed = int(np.random.SeedSequence([self.seed, epoch, self.rank, worker.id]).generate_state(1)[0])
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
            self.epoch = epoch
        return self.data[index]


@dataclass
class RunState:
    """Everything that must survive an interruption, so a resumed run ends with the same numbers."""

    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    probes: list[ProbeResult] = field(default_factory=list)
    train_seconds: float = 0.0


def _set_threshold_source(model: nn.Module, source: str) -> list[tuple[AdaptiveThreshold, str]]:
    changed = []
    for m in model.modules():
        if isinstance(m, AdaptiveThreshold):
            changed.append((m, m.eval_source))
            m.eval_source = source
    return changed


@contextlib.contextmanager
def batch_statistics_thresholds(model: nn.Module) -> Iterator[bool]:
    """Evaluate with each batch's own MPD statistics (the paper's "no moving average")."""
    changed = _set_threshold_source(model, "batch")
    try:
        yield bool(changed)
    finally:
        for module, source in changed:
            module.eval_source = source


class Trainer:
    def __init__(self, config: TrainConfig, out: Path, resume: str | bool | None = None,
                 stage_key: str | None = None) -> None:
        self.clock = PhaseClock(STARTUP)  # metrics.json's phase_seconds: where the time went
        self.cfg, self.out, self.stage_key = config, Path(out), stage_key
        self.resume = "strict" if resume is True else (resume or None)
        self.dist = Distributed.from_env()
        self.ckpt_path = Path(config.checkpoint_dir or self.out / layout.CHECKPOINT_DIR) / layout.CHECKPOINT
        self.writer = RunWriter(self.out)
        info = dataset_info(config.dataset)
        self.info = info
        self.T = config.T or info.default_T
        self.model_name = config.model or info.default_model
        self.method: Method = create_method(config.method, **config.method_options)
        self._stop_signal: int | None = None
        self._eval_loaders: dict[tuple[int, int], DataLoader] = {}

    # ----- set-up -----------------------------------------------------------------------------
    def load_data(self) -> DataSplits:
        return load_dataset(self.cfg.dataset, self.cfg.data_config(self.T))

    def build_model(self, sample: Tensor) -> nn.Module:
        options = {**self.info.model_options, **self.cfg.model_options}
        if "input_size" in self.info.model_options and "input_size" not in self.cfg.model_options:
            options["input_size"] = sample.shape[-1]
        in_channels = sample.shape[-3]
        return create_model(self.model_name, self.method, T=self.T, num_classes=self.info.num_classes,
                            in_channels=in_channels, **options)

    def _optimizer(self, model: nn.Module) -> tuple[torch.optim.Optimizer, Any]:
        c = self.cfg
        if c.optimizer == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=c.lr, momentum=c.momentum,
                                                         weight_decay=c.weight_decay)
        else:
            opt = torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        if c.schedule == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=c.epochs)
        else:
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
        return opt, sched

    def _train_loader(self, data: Dataset) -> DataLoader:
        """Built once: workers persist across epochs; :meth:`GlobalBatchSampler.set_epoch`
        reshuffles (seeded) and :class:`_EpochSeeded` reseeds the workers each epoch."""
        c = self.cfg
        batches = GlobalBatchSampler(len(data), c.batch_size, c.seed,  # type: ignore[arg-type]
                                     self.dist.rank, self.dist.world_size)
        return self._data_loader(_EpochSeeded(data, c.seed, self.dist.rank), batch_sampler=_EpochKeys(batches))

    def _eval_loader(self, data: Dataset, batch_size: int | None = None) -> DataLoader:
        """One loader per evaluated split and batch size, built at its first use (every rank
        sees all of it)."""
        key = (id(data), batch_size or self.cfg.batch_size)
        if key not in self._eval_loaders:
            self._eval_loaders[key] = self._data_loader(data, batch_size=key[1])
        return self._eval_loaders[key]

    def _data_loader(self, data: Dataset, **batching: Any) -> DataLoader:
        workers = self.cfg.num_workers
        # A fixed generator: the loader's base seed would otherwise be drawn from (and advance)
        # the global generator that a checkpoint restores.
        return DataLoader(data, num_workers=workers, persistent_workers=workers > 0,
                          generator=torch.Generator().manual_seed(self.cfg.seed),
                          pin_memory=self.device.type == "cuda", **batching)

    # ----- one epoch --------------------------------------------------------------------------
    def _autocast_dtype(self) -> torch.dtype | None:
        """bf16 under ``amp`` on CUDA; None: no autocast (fp32, or TF32 where ``tf32`` allows)."""
        return torch.bfloat16 if self.cfg.amp and self.device.type == "cuda" else None

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = self._autocast_dtype()
        return torch.autocast(device_type=self.device.type, dtype=dtype or torch.bfloat16,
                              enabled=dtype is not None)

    def _to_input(self, x: Tensor) -> Tensor:
        x = time_first(x.to(self.device, non_blocking=True), self.T)
        return x

    def _train_epoch(self, model: nn.Module, loader: DataLoader, opt: torch.optim.Optimizer,
                     epoch: int) -> tuple[float, float, int]:
        """One epoch; returns the mean loss and accuracy over the global batches and their
        number of samples.

        At most one host sync a step: the step's loss, correct count, size and stop flag stay on
        the device (summed over ranks by an all-reduce the host does not wait for) and are read
        one step late, when the next step is already queued. Every rank reads the same numbers at
        the same step, so all stop (signal) or fail (NaN) together instead of leaving the others
        waiting in DDP's gradient all-reduce.
        """
        model.train()
        batches: GlobalBatchSampler = loader.batch_sampler.batches  # type: ignore[union-attr]
        batches.set_epoch(epoch)
        totals = [0.0, 0.0, 0.0]  # loss sum, correct, samples: global
        pending: tuple[int, Tensor] | None = None
        steps = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=None if self.dist.is_main else True)
        for i, (x, y) in enumerate(steps):
            if self.cfg.limit_batches is not None and i >= self.cfg.limit_batches:
                break
            x, y = self._to_input(x), y.to(self.device, non_blocking=True)
            with self._autocast():
                out = model(x)
                loss = self.method.loss(out, y, self.cfg.label_smoothing)
            stats = self._step_stats(loss, out, y)
            if self.dist.world_size > 1:
                loss = loss * batches.loss_scale(i, y.numel())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), self.cfg.grad_clip)
            opt.step()
            if pending is not None:
                self._read_step(*pending, totals, epoch)
            pending = (i + 1, stats)
        if pending is not None:
            self._read_step(*pending, totals, epoch)
        loss_sum, correct, seen = totals
        return loss_sum / max(seen, 1), 100.0 * correct / max(seen, 1), int(seen)

    def _step_stats(self, loss: Tensor, out: Tensor, y: Tensor) -> Tensor:
        """``[loss sum, correct, samples, stop]`` of this step on the device, summed over ranks
        (asynchronously on GPUs: NCCL queues the all-reduce on the stream)."""
        n = y.numel()
        stats = torch.stack([loss.detach().double() * n, (predict(out.detach()) == y).sum().double(),
                             loss.new_full((), n, dtype=torch.float64),
                             loss.new_full((), float(self._stop_signal is not None), dtype=torch.float64)])
        if active():
            dist.all_reduce(stats)
        return stats

    def _read_step(self, step: int, stats: Tensor, totals: list[float], epoch: int) -> None:
        """The one host sync of a step: add a finished step's numbers, stop or fail after it."""
        loss_sum, correct, n, stop = stats.tolist()
        if stop:
            raise Interrupted()
        if not math.isfinite(loss_sum):
            raise TrainingDiverged(
                f"loss became {loss_sum / n} at epoch {epoch}, batch {step}; the last good "
                f"checkpoint is {self.ckpt_path if self.ckpt_path.exists() else 'none (first epoch)'}"
                "; lower the learning rate (lr) or add grad_clip, then train again")
        totals[0] += loss_sum
        totals[1] += correct
        totals[2] += n

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Dataset, batch_size: int | None = None) -> tuple[float, float]:
        """Mean loss and accuracy on ``data`` (test batches of ``batch_size``, default the
        run's): summed on the device, read once at the end."""
        model.eval()
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss, correct, samples
        batches = tqdm(self._eval_loader(data, batch_size), desc="evaluating", leave=False,
                       disable=None if self.dist.is_main else True)
        for i, (x, y) in enumerate(batches):
            if self.cfg.limit_batches is not None and i >= self.cfg.limit_batches:
                break
            x, y = self._to_input(x), y.to(self.device, non_blocking=True)
            with self._autocast():
                out = model(x)
            sums += torch.stack([mean_output_ce(out, y).double() * y.numel(),  # one loss for all methods
                                 (predict(out.float()) == y).sum().double(),
                                 sums.new_full((), y.numel())])
        total_loss, correct, seen = sums.tolist()
        return total_loss / max(seen, 1), 100.0 * correct / max(seen, 1)

    # ----- checkpoints ------------------------------------------------------------------------
    def _checkpoint_state(self, model: nn.Module, opt, sched, state: RunState) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "code": code_hash(),
            "epoch": state.epoch,
            "model": _unwrap(model).state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "history": state.history,
            "train_seconds": state.train_seconds,
            "probes": [_probe_to_plain(p) for p in state.probes],
            "rng": {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
                    "python_version": random.getstate()[0],
                    "numpy": np.random.get_state()[1].tolist(), "numpy_pos": int(np.random.get_state()[2])},
        }

    def _restore(self, ckpt: dict[str, Any], model: nn.Module, opt, sched) -> RunState:
        _unwrap(model).load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"])
        random.setstate((rng["python_version"], tuple(rng["python"]), None))
        np.random.set_state(("MT19937", np.array(rng["numpy"], dtype=np.uint32), rng["numpy_pos"], 0, 0.0))
        return RunState(epoch=ckpt["epoch"], history=list(ckpt["history"]),
                        probes=[_probe_from_plain(p) for p in ckpt["probes"]],
                        train_seconds=ckpt["train_seconds"])

    # ----- the run ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        c = self.cfg
        if c.batch_size < self.dist.world_size:
            raise UserError(f"batch_size {c.batch_size} is the global batch and must be at least the "
                            f"number of processes ({self.dist.world_size}); raise it or use fewer processes")
        # Off for reproduction rows: cuDNN would otherwise run fp32 convolutions in TF32.
        torch.backends.cuda.matmul.allow_tf32 = c.tf32
        torch.backends.cudnn.allow_tf32 = c.tf32
        self.device = select_device(c.device, self.dist.local_rank)
        own_group = self.dist.world_size > 1 and not dist.is_initialized()
        if own_group:
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            init_process_group("nccl" if self.device.type == "cuda" else "gloo")  # a short join timeout
        seed_everything(c.seed, c.deterministic)
        config_dict = {**c.to_dict(), "T": self.T, "model": self.model_name,
                       "method_options": self.method.options}
        if self.dist.is_main:
            check_out_folder(self.out)
        # Pipelines wait for a trainer of the same run that is still stopping (its stage was
        # killed); by hand, a second trainer fails at once.
        wait = 60.0 if self.resume == "auto" else 0.0
        lock = RunLock(self.out, wait=wait) if self.dist.is_main else contextlib.nullcontext()
        with lock:
            main_first(lambda: prepare_folder(self.out, config_dict, self.resume), others=False)
            with self._signals():
                metrics = self._run(config_dict)
        if own_group:  # only after success: a failed rank just exits and torchrun ends the rest
            dist.destroy_process_group()
        return metrics

    def _run(self, config_dict: dict[str, Any]) -> dict[str, Any]:
        c = self.cfg
        with self.clock.phase(DATA):
            splits = main_first(self.load_data)  # rank 0 downloads and caches, the others then read
        sample = splits.train[0][0]
        model = self.build_model(sample).to(self.device)
        on_reference = fuse_neurons(model, c.neuron_backend)
        if on_reference and c.neuron_backend == "fused":
            log.info("%d spiking layers use the reference neuron (not fusable)", len(on_reference))
        with self._autocast():  # refuse in seconds a run the machine cannot hold (mpdsnn.memory)
            check_memory(model, sample, self.T, max(c.batch_size // self.dist.world_size,
                                                    c.probe_samples), self.device)
        if c.channels_last and self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        if self.dist.world_size > 1:
            model = wrap_model(model, self.device, c.sync_thresholds)
        opt, sched = self._optimizer(model)
        state = RunState()
        if self.resume and self.ckpt_path.exists():
            ckpt = load_checkpoint(self.ckpt_path)
            changed = changed_keys(ckpt["config"], c.to_dict(), RESUMABLE_CHANGES)
            if ckpt.get("code") != code_hash():
                changed.append("training code")
            if not changed:
                state = self._restore(ckpt, model, opt, sched)
                log.info("resumed from %s after epoch %d", self.ckpt_path, state.epoch)
            elif self.resume == "auto":
                log.warning("checkpoint %s is of another config or code (%s changed): starting "
                            "afresh", self.ckpt_path, ", ".join(changed))
            else:
                raise UserError(f"checkpoint {self.ckpt_path} was made with another config or "
                                f"code ({', '.join(changed)} changed); resume with the original "
                                "settings and code, or delete the checkpoint to start afresh")
        elif self.resume:
            log.info("--resume: no checkpoint at %s yet, starting from scratch", self.ckpt_path)
        check_same_everywhere("the epoch to resume after", state.epoch, self.device,
                              "put --checkpoint-dir on a filesystem every node can read")
        env = environment(self.device, splits.fingerprint, self._autocast_dtype(), self.dist.world_size)
        tracker = self._open_tracker(env)
        if self.dist.is_main:
            recipe = recipe_record(config_dict, method_options(c.method))
            if self.stage_key:  # the pipeline stage this run answers (mpdsnn.batch)
                recipe["stage"] = self.stage_key
            self.writer.start(config_dict, env, recipe)
            tracker.log_params(config_dict)
        # Probes read held-out training data where the dataset has a validation split (the
        # gradient window is a training-time quantity), else test samples: metrics.json says which.
        probe_split = "val" if splits.val is not None and len(splits.val) else "test"
        with self.clock.phase(DATA):
            probe_x = self._probe_batch(splits.val if probe_split == "val" else splits.test)
            loader = self._train_loader(splits.train)
        self.clock.switch(BETWEEN_EPOCHS)
        try:
            for epoch in range(state.epoch + 1, c.epochs + 1):
                start = time.perf_counter()
                lr = opt.param_groups[0]["lr"]  # the rate this epoch trained with
                with self.clock.phase(TRAINING):
                    train_loss, train_acc, seen = self._train_epoch(model, loader, opt, epoch)
                train_time = time.perf_counter() - start
                sched.step()
                with self.clock.phase(EVALUATION):
                    val_acc = self.evaluate(model, splits.val)[1] if splits.val is not None else None
                    test_loss, test_acc = self.evaluate(model, splits.test)
                seconds = time.perf_counter() - start
                row = {"epoch": epoch, "lr": lr, "train_loss": train_loss,
                       "train_acc": train_acc, "val_acc": val_acc, "test_loss": test_loss,
                       "test_acc": test_acc, "seconds": seconds,
                       "train_samples_per_s": seen / max(train_time, 1e-9)}
                state.history.append(row)
                state.train_seconds += seconds
                state.epoch = epoch
                probe = None
                if epoch == c.epochs or (c.probe_every and epoch % c.probe_every == 0):
                    # the precision the accuracy beside it was trained in
                    with self._autocast(), self.clock.phase(PROBES):
                        probe = run_probes(_unwrap(model), probe_x, epoch)
                    state.probes.append(probe)
                self._log_epoch(row, probe, tracker)
                if self.dist.is_main:
                    save_checkpoint(self.ckpt_path, self._checkpoint_state(model, opt, sched, state))
        except Interrupted:
            tracker.finish("KILLED")
            where = (f"the checkpoint after epoch {state.epoch} is {self.ckpt_path}" if state.epoch
                     else "no epoch had finished, so there is no checkpoint yet")
            raise UserError(f"stopped by signal {self._stop_signal} during epoch {state.epoch + 1}; "
                            f"{where}: run the same command with --resume to continue") from None
        except BaseException:
            tracker.finish("FAILED")
            raise
        self.clock.switch(TEARDOWN)
        metrics = self._finish(model, splits, state, env, tracker, probe_split)
        return metrics

    def _probe_batch(self, data: Dataset) -> Tensor:
        """A fixed, seeded random sample of ``data``: lists are often sorted by class (event
        datasets by path), so their first samples would probe a few classes only."""
        n = min(self.cfg.probe_samples, len(data))
        picks = np.random.default_rng([self.cfg.split_seed, 7]).choice(len(data), n, replace=False)
        xs = torch.stack([data[int(i)][0] for i in np.sort(picks)])
        return self._to_input(xs)

    def _log_epoch(self, row: dict[str, Any], probe: ProbeResult | None, tracker) -> None:
        if not self.dist.is_main:
            return
        val = f" val {row['val_acc']:.2f}%" if row["val_acc"] is not None else ""
        log.info("epoch %d/%d  loss %.4f  train %.2f%%%s  test %.2f%%  lr %.4g  %.1fs", row["epoch"],
                 self.cfg.epochs, row["train_loss"], row["train_acc"], val, row["test_acc"], row["lr"],
                 row["seconds"])
        from mpdsnn.tracking import epoch_metrics
        tracker.log_metrics(epoch_metrics(row, probe), step=row["epoch"])

    def _finish(self, model: nn.Module, splits: DataSplits, state: RunState, env: dict[str, Any],
                tracker, probe_split: str) -> dict[str, Any]:
        hist = pd.DataFrame(state.history)
        best = hist.loc[hist["test_acc"].idxmax()]
        metrics: dict[str, Any] = {
            "status": "finished", "method": self.cfg.method, "dataset": self.cfg.dataset,
            "model": self.model_name, "seed": self.cfg.seed, "T": self.T, "epochs": self.cfg.epochs,
            "best_test_acc": float(best["test_acc"]), "best_epoch": int(best["epoch"]),
            "last_test_acc": float(hist["test_acc"].iloc[-1]),
            "val_selected_test_acc": None, "val_selected_epoch": None,
            "train_seconds": state.train_seconds,
            "train_samples_per_s": float(hist["train_samples_per_s"].median()),
            "params": sum(p.numel() for p in model.parameters()),
            "data_fingerprint": splits.fingerprint, "git_commit": env["git_commit"],
        }
        if hist["val_acc"].notna().any():
            sel = hist.loc[hist["val_acc"].astype(float).idxmax()]
            metrics["val_selected_test_acc"] = float(sel["test_acc"])
            metrics["val_selected_epoch"] = int(sel["epoch"])
        last_probe = state.probes[-1]
        metrics["probe_split"] = probe_split
        # the paper's layer set: downsample neurons are shown, not averaged in (mpdsnn.paper)
        metrics["mean_firing_rate"] = float(paper_layers(last_probe.layers)["firing_rate"].mean())
        metrics["sops_per_sample"] = last_probe.sops_per_sample
        metrics["energy_uj_per_sample"] = last_probe.energy_uj_per_sample
        metrics.update(neurobench_metrics(last_probe, _unwrap(model)))  # NeuroBench names
        with (batch_statistics_thresholds(_unwrap(model)) as has_adaptive,
              self.clock.phase(EVALUATION)):
            if has_adaptive:
                metrics["test_acc_batch_thresholds"] = self.evaluate(model, splits.test)[1]
                # Why the running buffer matters (C5's companion): batch statistics depend on the
                # test batch size, the running buffer does not.
                for size in BATCH_STATISTICS_SIZES:
                    metrics[f"test_acc_batch_thresholds_bs{size}"] = self.evaluate(
                        model, splits.test, batch_size=size)[1]
        if self.dist.is_main:
            self.writer.write_history(state.history)
            self.writer.write_probes(pd.concat([p.layers for p in state.probes]),
                                     pd.concat([p.timesteps for p in state.probes]),
                                     last_probe.hist_counts, HIST_EDGES, last_probe.layer_names)
            self.writer.write_model({"config": self.cfg.to_dict(), "T": self.T,
                                     "model_name": self.model_name, "code": code_hash(),
                                     "state_dict": _unwrap(model).state_dict()})
            metrics.update(self.clock.record())  # the rest of teardown is timed from outside
            metrics = self.writer.finish(metrics)
            from mpdsnn.tracking import final_metrics
            tracker.log_metrics(final_metrics(metrics), step=self.cfg.epochs)
            tracker.log_files(self.writer.files(), self.out)
            tracker.finish("FINISHED")
            # The finished run lives in the run folder (model.pt). A leftover resume checkpoint
            # would let a rerun after a code change "resume" at its last epoch and never train.
            self.ckpt_path.unlink(missing_ok=True)
            if not self.cfg.checkpoint_dir:  # the default one, inside the run folder
                with contextlib.suppress(OSError):
                    self.ckpt_path.parent.rmdir()
            log.info("finished: best test %.2f%% (epoch %d), last %.2f%%  -> %s", metrics["best_test_acc"],
                     metrics["best_epoch"], metrics["last_test_acc"], self.out)
        return metrics

    def _open_tracker(self, env: dict[str, Any]):
        """The MLflow run, tagged from the provenance this run already recorded (env.json)."""
        from mpdsnn.tracking import open_tracker
        c = self.cfg
        name = c.run_name or f"{c.dataset}/{c.method}/seed{c.seed}"
        tags = {"method": c.method, "dataset": c.dataset, "model": self.model_name, "seed": str(c.seed),
                "T": str(self.T), "data_fingerprint": env["data_fingerprint"],
                "git_commit": env["git_commit"],
                "dvc_stage": os.environ.get("MPDSNN_DVC_STAGE", ""), "run_folder": str(self.out.resolve())}
        return open_tracker(name, c.experiment, tags, enabled=c.tracking and self.dist.is_main,
                            uri=c.tracking_uri)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM (what schedulers send before a kill) stops at the next batch boundary; the
        epoch checkpoint already on disk is what --resume continues from."""
        def handler(signum: int, _frame: Any) -> None:
            self._stop_signal = signum

        if not _is_main_thread():
            yield
            return
        previous = signal.signal(signal.SIGTERM, handler)
        # Under `dvc repro`, a killed dvc leaves its stage's trainer running: stop with it.
        watchdog = stop_with_parent("dvc", handler) if os.environ.get("MPDSNN_DVC_STAGE") else None
        try:
            yield
        finally:
            if watchdog is not None:
                watchdog.set()
            signal.signal(signal.SIGTERM, previous)


def _is_main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _probe_to_plain(p: ProbeResult) -> dict[str, Any]:
    return {"layers": p.layers.to_dict("list"), "timesteps": p.timesteps.to_dict("list"),
            "hist": torch.from_numpy(p.hist_counts), "layer_names": p.layer_names,
            "sops": p.sops_per_sample, "enc": p.encoding_macs_per_sample, "energy": p.energy_uj_per_sample}


def _probe_from_plain(d: dict[str, Any]) -> ProbeResult:
    return ProbeResult(layers=pd.DataFrame(d["layers"]), timesteps=pd.DataFrame(d["timesteps"]),
                       hist_counts=d["hist"].numpy(), layer_names=list(d["layer_names"]),
                       sops_per_sample=d["sops"], encoding_macs_per_sample=d["enc"],
                       energy_uj_per_sample=d["energy"])


def train(config: TrainConfig, out: Path, resume: str | bool | None = None,
          stage_key: str | None = None) -> dict[str, Any]:
    """Train one run into ``out`` (a run folder); returns its final metrics. ``stage_key``: the
    pipeline stage it answers (recorded in recipe.json, see :mod:`mpdsnn.batch`)."""
    return Trainer(config, out, resume, stage_key).run()



