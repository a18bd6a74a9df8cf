"""Property-based tests (hypothesis) over config files, params.yaml files and flags (issue 13):
any input either trains or exits 2 with one line (``error: ...``) and no traceback.

Most inputs go through the real CLI (``main``) with the training loop replaced by everything
``train`` checks before its first batch (:func:`_up_to_the_first_batch`: method, dataset, T,
device, model built from the options), so hundreds of inputs run in seconds; the last test
trains a sample of accepted flag sets for real. Each test prints how many inputs it generated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import string
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpdsnn import train as train_module
from mpdsnn.cli import main
from mpdsnn.config import TrainConfig
from mpdsnn.memory import check_memory
from mpdsnn.methods import list_methods
from mpdsnn.models import list_models
from mpdsnn.train import Trainer, select_device

FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**4, 10**4),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
option_keys = st.sampled_from(["fc", "min_theta", "tau", "momentum", "tgo_rule", "threshold",
                               "eval_source", "learnable_decay", "vth", "lam", "phi", "bogus"])
# Mostly valid values, so that many inputs get as far as building the model.
PLAUSIBLE: dict[str, st.SearchStrategy] = {
    "method": st.sampled_from(list_methods() * 3 + ["nope", ""]),
    "dataset": st.sampled_from(["digits", "digits-dvs", "cifar10"] * 2 + ["nope"]),
    "model": st.sampled_from(list_models() + [None] * 4 + ["nope"]),
    "T": st.integers(-2, 40),
    "epochs": st.integers(-1, 20),
    "batch_size": st.integers(-1, 128),
    "lr": st.sampled_from([0.1, 0.01, 1e-3, 0.5, 2.0, float("nan"), float("inf"), 0.0, -1.0]),
    "method_options": st.just({}) | st.dictionaries(option_keys, values, max_size=3),
    "model_options": st.just({}) | st.dictionaries(
        st.sampled_from(["width", "hidden", "input_size", "bogus"]), scalars, max_size=2),
    "device": st.sampled_from(["auto", "cpu", "cpu", "auto", "cuda", "cuda:x", "tpu", ""]),
}
config_keys = st.sampled_from(FIELDS) | st.text(min_size=1, max_size=10)
plausible_maps = st.fixed_dictionaries({}, optional=PLAUSIBLE)
config_maps = plausible_maps | st.dictionaries(config_keys, values, max_size=4).flatmap(
    lambda extra: plausible_maps.map(lambda good: {**extra, **good}))
YAML_CHARS = string.ascii_letters[:6] + string.digits[:3] + "[]{}:,-?!&*#|>'\"%@` \n\t.="
raw_texts = st.text(alphabet=YAML_CHARS, max_size=80) | st.binary(max_size=80).map(
    lambda b: b.decode("latin-1"))


def _up_to_the_first_batch(config: TrainConfig, out: Path, resume: Any = None,
                           stage_key: str | None = None) -> dict[str, float]:
    """What ``train`` does before its first batch that can refuse an input, without the data:
    method, dataset, T, device, the model built and run once by ``check_memory`` (the trainer's
    check before training; batch 2 here, so no input is refused for its size)."""
    trainer = Trainer(config, out, resume)
    select_device(config.device)
    shape = trainer.info.input_shape
    sample = torch.zeros(shape) if trainer.info.kind == "static" else torch.zeros(trainer.T, *shape)
    check_memory(trainer.build_model(sample), sample, trainer.T, 2, torch.device("cpu"))
    return {"best_test_acc": 0.0, "last_test_acc": 0.0, "train_seconds": 0.0}


def _outcome(argv: list[str]) -> str:
    """Run ``mpdsnn ARGV``: "ok" (exit 0) or "refused" (exit 2, one error line, no traceback);
    anything else fails the test with what was printed."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    text = err.getvalue()
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in text, (argv, text)
    if code == 0:
        return "ok"
    assert code == 2 and len(errors) == 1 and text.strip().endswith(errors[0]), (argv, code, text)
    return "refused"


@pytest.fixture
def dry(monkeypatch, tmp_path):
    monkeypatch.setattr(train_module, "train", _up_to_the_first_batch)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _report(kind: str, seen: Counter) -> None:
    print(f"\n{kind}: {sum(seen.values())} generated inputs, {seen['ok']} accepted, "
          f"{seen['refused']} refused with one line, 0 tracebacks")


def test_config_files_train_or_give_one_line(dry):
    seen: Counter = Counter()

    @settings(max_examples=300, **SETTINGS)
    @given(st.one_of(config_maps.map(lambda m: yaml.safe_dump(m, allow_unicode=True)), raw_texts))
    def check(text: str) -> None:
        path = dry / "config.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        seen[_outcome(["train", "--config", str(path), "--no-tracking", "--out", str(dry / "run")])] += 1

    check()
    _report("config files", seen)
    assert sum(seen.values()) >= 300 and seen["ok"] >= 30 and seen["refused"] >= 100


DEFAULT_PARAMS = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
# The default params.yaml with some sections replaced by generated ones (valid-looking or junk).
params_files = st.fixed_dictionaries({}, optional={
    "train": config_maps | values,
    "datasets": st.fixed_dictionaries({"digits": plausible_maps.map(
        lambda m: {k: v for k, v in m.items() if k not in ("dataset", "method")})}, optional={
        "digits-dvs": config_maps | values, "a b": values, "x;y": values}) | values,
    "method_options": st.dictionaries(st.sampled_from(list_methods() + ["v;echo"]),
                                      PLAUSIBLE["method_options"] | values, max_size=3) | values,
    "methods": st.lists(st.sampled_from(list_methods() * 2 + ["vanilla;echo INJECTED >F;#", "a'b"]),
                        max_size=3) | values,
    "datasets_run": st.lists(st.sampled_from(["digits", "digits", "$(touch x)"]), max_size=2) | values,
    "seeds": st.lists(st.integers(0, 3), max_size=2) | values,
}).map(lambda changed: {**DEFAULT_PARAMS, **changed})


def test_params_files_train_or_give_one_line(dry):
    seen: Counter = Counter()

    @settings(max_examples=300, **SETTINGS)
    @given(params_files, st.sampled_from(["digits", "digits", "digits-dvs", "nope"]),
           st.sampled_from(list_methods() + ["nope"]))
    def check(params: dict, dataset: str, method: str) -> None:
        path = dry / "params.yaml"
        path.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
        seen[_outcome(["train", "--params", str(path), "--dataset", dataset, "--method", method,
                       "--seed", "0", "--no-tracking", "--out", str(dry / "run")])] += 1

    check()
    _report("params.yaml files", seen)
    assert sum(seen.values()) >= 300 and seen["ok"] >= 10 and seen["refused"] >= 100


numbers_as_text = st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1", "3", "0.5", "1e309",
                                   "1e-3", "2.5", "true", "null", "[1", "{a: 1}", "abc", ""])
flag_value = numbers_as_text | st.text(max_size=8)
set_pairs = st.tuples(config_keys, numbers_as_text | st.text(max_size=8)).map(lambda kv: f"{kv[0]}={kv[1]}")
option_pairs = st.tuples(option_keys, numbers_as_text).map(lambda kv: f"{kv[0]}={kv[1]}")
flags = st.lists(st.one_of(
    st.tuples(st.sampled_from(["--method"]), PLAUSIBLE["method"].map(str)),
    st.tuples(st.sampled_from(["--dataset"]), st.sampled_from(["digits", "digits-dvs", "nope"])),
    st.tuples(st.sampled_from(["--model"]), st.sampled_from(list_models() + ["nope"])),
    st.tuples(st.sampled_from(["--seed", "--epochs", "--T", "--lr", "--batch-size", "--device",
                               "--limit-batches"]), flag_value),
    st.tuples(st.just("--set"), set_pairs),
    st.tuples(st.just("--method-option"), option_pairs),
), max_size=5).map(lambda pairs: [word for pair in pairs for word in pair])


def test_flags_train_or_give_one_line(dry):
    seen: Counter = Counter()

    @settings(max_examples=400, **SETTINGS)
    @given(flags)
    def check(argv: list[str]) -> None:
        seen[_outcome(["train", *argv, "--no-tracking", "--out", str(dry / "run")])] += 1

    check()
    _report("flags", seen)
    assert sum(seen.values()) >= 400 and seen["ok"] >= 10 and seen["refused"] >= 100


def test_accepted_flags_really_train(monkeypatch, tmp_path):
    """A sample of flag sets on digits, trained for one batch: each finishes or is refused."""
    monkeypatch.chdir(tmp_path)
    seen: Counter = Counter()
    runs = iter(range(10**6))

    @settings(max_examples=30, **SETTINGS)
    @given(st.lists(st.one_of(
        st.tuples(st.just("--method"), st.sampled_from(list_methods())),
        st.tuples(st.just("--T"), st.sampled_from(["1", "2", "3", "0", "nan"])),
        st.tuples(st.just("--lr"), st.sampled_from(["0.1", "1e-3", "nan", "-1", "inf"])),
        st.tuples(st.just("--batch-size"), st.sampled_from(["1", "7", "32", "0"])),
        st.tuples(st.just("--set"), st.sampled_from(["weight_decay=0", "grad_clip=1.0",
                                                     "label_smoothing=0.1", "optimizer=adamw",
                                                     "schedule=constant", "seed=-1", "seed=3"])),
        st.tuples(st.just("--method-option"), option_pairs),
    ), max_size=4).map(lambda pairs: [word for pair in pairs for word in pair]))
    def check(argv: list[str]) -> None:
        out = tmp_path / f"run{next(runs)}"
        seen[_outcome(["train", "--dataset", "digits", "--epochs", "1", "--limit-batches", "1",
                       "--set", "probe_samples=8", "--set", "train_subset=64",
                       "--set", "test_subset=32", *argv, "--device", "cpu", "--no-tracking",
                       "--out", str(out)])] += 1

    check()
    _report("trained flag sets", seen)
    assert sum(seen.values()) >= 30 and seen["ok"] >= 5
